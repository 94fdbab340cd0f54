"""`rapport broadcast --segment S --text T [--at TIME]` and `list|report|pause|resume|cancel ID`."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from sqlalchemy import Engine

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
from scheduler.engine import EngineConfig
from store import Settings
from store.conversions import UnknownGoalError, goal_event_name, known_product_events, parse_goal
from store.db import unit_of_work

app = typer.Typer(
    help="Segment broadcasts: create one (--segment, --text, --at), list, report, pause, resume, cancel.",
    invoke_without_command=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
    goal: str | None = typer.Option(
        None,
        "--goal",
        help="Conversion goal: a product event name (`upgrade` = `product:upgrade`) or `return`.",
    ),
    goal_window_hours: float = typer.Option(
        48.0, "--goal-window-hours", help="Hours after each send in which the goal counts."
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
    with engine_scope(settings) as engine:
        try:
            warn_unseen_goal(engine, goal)
            campaign_id = create_broadcast(
                engine, segment=segment, text=text, at=when, now=now, **goal_options(goal, goal_window_hours)
            )
        except SchedulerError as exc:
            fail(str(exc))
        report = campaign_report(engine, campaign_id, now=now, rate_per_s=_rate(settings))
        out.print(*report.lines(), sep="\n")
        if send and when <= now:
            out.print(f"deliveries: {asyncio.run(send_due(settings, engine))}")
            report = campaign_report(engine, campaign_id, now=datetime.now(UTC), rate_per_s=_rate(settings))
            out.print(*report.lines(), sep="\n")


# --- Conversion goals (issue 16): `--goal upgrade` -------------------------------------------


def goal_options(goal: str | None, window_hours: float) -> dict[str, Any]:
    """`create_broadcast`'s goal arguments from the flags (none without `--goal`)."""
    if goal is None:
        return {}
    if not math.isfinite(window_hours) or window_hours <= 0:
        fail(f"--goal-window-hours must be a positive number of hours, got {window_hours}")
    return {"goal": goal, "goal_window": timedelta(hours=window_hours)}


def warn_unseen_goal(engine: Engine, goal: str | None) -> None:
    """Warn (not refuse: the event may start later) when a product goal names no logged event."""
    if goal is None:
        return
    try:
        name = goal_event_name(parse_goal(goal))
    except UnknownGoalError as exc:
        fail(str(exc))
    if name is None:
        return
    with unit_of_work(engine) as session:
        known = known_product_events(session)
    if name not in known:
        listed = ", ".join(known) if known else "none yet"
        err.print(f"warning: no product event {name!r} logged so far (logged: {listed})")


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
