"""Plain-text reports for managers, shared by the Telegram commands and the CLI."""

from __future__ import annotations

from datetime import datetime

from analytics import ActivityStats, SegmentInfo
from scheduler import CampaignReport


def format_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `2 h 5 min` - how long a send will take, for humans."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def format_stats(stats: ActivityStats) -> str:
    """The /stats report."""
    days = max(1, round((stats.until - stats.since).total_seconds() / 86_400))
    answered = stats.messages - stats.unanswered
    lines = [
        f"Activity, last {days} day{'s' if days != 1 else ''} (until {_when(stats.until)})",
        f"DAU {stats.dau} · WAU {stats.wau} · MAU {stats.mau}",
        f"Active users: {stats.active_users}, new users: {stats.new_users}",
        f"Messages: {stats.messages} ({answered} answered, {stats.unanswered} unanswered, "
        f"fallback rate {stats.fallback_rate:.0%})",
    ]
    if stats.top_intents:
        lines.append("Top intents: " + ", ".join(f"{name} ({n})" for name, n in stats.top_intents))
    return "\n".join(lines)


def format_segments(segments: list[SegmentInfo]) -> str:
    """The /segments report."""
    if not segments:
        return "No segments yet: run `rapport analytics run` to segment the users."
    total = sum(s.size for s in segments) or 1
    lines = [f"{len(segments)} segments, {total} users"]
    for segment in segments:
        line = f"• {segment.name} – {segment.size} users ({segment.size / total:.0%})"
        lines.append(f"{line}: {segment.description}" if segment.description else line)
    return "\n".join(lines)


def format_insights(sentences: list[str]) -> str:
    """The /insights report: the strongest rules in plain words."""
    if not sentences:
        return "No insights yet: run `rapport analytics run` to mine behaviour rules."
    return "\n".join(["Top insights", *(f"{i}. {sentence}" for i, sentence in enumerate(sentences, 1))])


def format_campaigns(reports: list[CampaignReport]) -> str:
    """The /campaigns report: status and delivery counts of recent sends, newest first."""
    if not reports:
        return "No campaigns yet. /broadcast starts one."
    return "\n\n".join(["Recent campaigns", *("\n".join(report.lines()) for report in reports)])
