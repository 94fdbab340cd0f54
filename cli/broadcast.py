"""`rapport broadcast --segment S --text T [--at TIME]` and `list|report|pause|resume|cancel ID`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import typer
from rich.console import Console

from cli.common import engine_scope, fail, get_settings
from cli.jobs import send_due
from scheduler import (
    SchedulerError,
    campaign_report,
    cancel_campaign,
    create_broadcast,
    pause_campaign,
    recent_reports,
    resume_campaign,
)
from scheduler.best_time import SEND_AT_BEST, SEND_AT_SPLIT, SendTimeConfig
from scheduler.engine import EngineConfig
from store import Settings

app = typer.Typer(
    help="Segment broadcasts: create one (--segment, --text, --at), list, report, pause, resume, cancel.",
    invoke_without_command=True,
)
out = Console(highlight=False, soft_wrap=True)


def parse_at(text: str | None, now: datetime) -> datetime:
    """`--at`: `YYYY-MM-DD HH:MM` (UTC) or ISO 8601 with an offset; now when absent.

    Raises:
        typer.BadParameter: unparsable, or in the past.
    """
    if text is None or text.strip().lower() == "now":
        return now
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: expected 'YYYY-MM-DD HH:MM' (UTC) or ISO 8601") from exc
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at < now.replace(second=0, microsecond=0):
        raise typer.BadParameter(f"{text!r} is in the past")
    return at


def _rate(settings: Settings) -> float:
    return EngineConfig.from_settings(settings).effective_rate_per_s


@app.callback()
def broadcast(
    ctx: typer.Context,
    segment: str | None = typer.Option(
        None, "--segment", "-s", help="`all`, `inactive:N` or a segment name/id from `rapport segments`."
    ),
    text: str | None = typer.Option(
        None, "--text", "-t", help="The message (Telegram's 4096 characters at most)."
    ),
    at: str | None = typer.Option(
        None, "--at", help="When: 'YYYY-MM-DD HH:MM' UTC or ISO 8601 (default: now)."
    ),
    send: bool = typer.Option(
        True, "--send/--no-send", help="If due now and no scheduler runs, send from this process."
    ),
    # Send time (issue 17): kept in its own block.
    best_time: bool = typer.Option(
        False, "--best-time", help="Each user at their best hour within 24 h of --at, outside quiet hours."
    ),
    best_time_vs_fixed: bool = typer.Option(
        False,
        "--best-time-vs-fixed",
        help="Half the users (by stable hash) at --at, half at their best time; `report ID` compares them.",
    ),
) -> None:
    """Create a broadcast to a segment (or run one of the sub-commands)."""
    if ctx.invoked_subcommand is not None:
        return
    if segment is None or text is None:
        fail("give --segment and --text to create a broadcast, or a sub-command (see --help)")
    settings = get_settings(ctx)
    now = datetime.now(UTC)
    when = parse_at(at, now)
    # Send time: --best-time or --best-time-vs-fixed (not both).
    if best_time and best_time_vs_fixed:
        fail("give --best-time or --best-time-vs-fixed, not both")
    send_at = SEND_AT_SPLIT if best_time_vs_fixed else SEND_AT_BEST if best_time else None
    send_time = SendTimeConfig.from_settings(settings)
    with engine_scope(settings) as engine:
        try:
            campaign_id = create_broadcast(
                engine, segment=segment, text=text, at=when, now=now, send_at=send_at, send_time=send_time
            )
        except SchedulerError as exc:
            fail(str(exc))
        report = campaign_report(engine, campaign_id, now=now, rate_per_s=_rate(settings))
        out.print(*report.lines(), sep="\n")
        if send and when <= now:
            out.print(f"deliveries: {asyncio.run(send_due(settings, engine))}")
            report = campaign_report(engine, campaign_id, now=datetime.now(UTC), rate_per_s=_rate(settings))
            out.print(*report.lines(), sep="\n")


@app.command("list")
def list_campaigns(
    ctx: typer.Context,
    last: int = typer.Option(10, "--last", "-n", help="How many recent campaigns."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Recent campaigns (broadcasts and re-engagement) with progress and outcomes."""
    if last < 1:
        fail(f"--last must be at least 1, got {last}")
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        reports = recent_reports(engine, now=datetime.now(UTC), rate_per_s=_rate(settings), limit=last)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
        return
    if not reports:
        out.print("No campaigns yet.")
    for report in reports:
        out.print(*report.lines(), sep="\n")
        out.print()


@app.command("report")
def report(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(..., help="Campaign id."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """One campaign: targeted, sent, failed, ambiguous, blocked, skipped by reason, returns, uplift."""
    settings = get_settings(ctx)
    with engine_scope(settings) as engine:
        try:
            result = campaign_report(engine, campaign_id, now=datetime.now(UTC), rate_per_s=_rate(settings))
        except SchedulerError as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    out.print(*result.lines(), sep="\n")


def _control(ctx: typer.Context, campaign_id: int, action: str) -> None:
    actions = {"pause": pause_campaign, "resume": resume_campaign, "cancel": cancel_campaign}
    with engine_scope(get_settings(ctx)) as engine:
        try:
            actions[action](engine, campaign_id, now=datetime.now(UTC))
        except SchedulerError as exc:
            fail(str(exc))
    out.print(f"campaign #{campaign_id}: {action}d")


@app.command("pause")
def pause(ctx: typer.Context, campaign_id: int = typer.Argument(..., help="Campaign id.")) -> None:
    """Pause sending (pending deliveries wait)."""
    _control(ctx, campaign_id, "pause")


@app.command("resume")
def resume(ctx: typer.Context, campaign_id: int = typer.Argument(..., help="Campaign id.")) -> None:
    """Resume a paused campaign."""
    _control(ctx, campaign_id, "resume")


@app.command("cancel")
def cancel(ctx: typer.Context, campaign_id: int = typer.Argument(..., help="Campaign id.")) -> None:
    """Cancel: every pending delivery is skipped."""
    _control(ctx, campaign_id, "cancel")
