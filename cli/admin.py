"""`rapport stats|segments|insights|campaigns`: the managers' Telegram reports, in the terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console

from analytics import activity_stats, current_segments, top_rules
from bot.admin.formatting import format_campaigns, format_insights, format_segments, format_stats
from cli.common import engine_scope, fail, get_settings
from scheduler import recent_reports

out = Console(highlight=False, soft_wrap=True)


def stats(
    ctx: typer.Context,
    days: int = typer.Option(7, "--days", "-d", help="Length of the period, in days (1-366)."),
) -> None:
    """Activity: DAU/WAU/MAU, new users, questions, top intents and the fallback rate."""
    if not 1 <= days <= 366:
        fail(f"--days must lie in 1..366, got {days}")
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        until = datetime.now(UTC)
        report = activity_stats(engine, until - timedelta(days=days), until, exclude_users=settings.admin_ids)
        out.print(format_stats(report))


def segments(ctx: typer.Context) -> None:
    """Current user segments with sizes and one-line descriptions."""
    with engine_scope(get_settings(ctx)) as engine:
        out.print(format_segments(current_segments(engine)))


def insights(
    ctx: typer.Context,
    top: int = typer.Option(5, "--top", "-n", help="How many rules to show."),
) -> None:
    """The strongest behaviour rules in plain words."""
    if top < 1:
        fail(f"--top must be at least 1, got {top}")
    with engine_scope(get_settings(ctx)) as engine:
        out.print(format_insights(top_rules(engine, top)))


def campaigns(
    ctx: typer.Context,
    last: int = typer.Option(10, "--last", "-n", help="How many recent campaigns to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Status and delivery report of recent campaigns (ambiguous deliveries on their own line)."""
    if last < 1:
        fail(f"--last must be at least 1, got {last}")
    with engine_scope(get_settings(ctx)) as engine:
        settings = get_settings(ctx)
        reports = recent_reports(
            engine, now=datetime.now(UTC), rate_per_s=settings.send_rate_per_s, limit=last
        )
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
        return
    out.print(format_campaigns(reports))
