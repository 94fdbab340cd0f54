"""`rapport broadcast --segment S --text T [--at TIME]` and `list|report|pause|resume|cancel ID`.

With `--variant TEXT` given two to eight times the broadcast is an experiment (see
`scheduler.experiments`): `--control-share`, `--test-share` with `--pick-winner-after`,
`--default-variant`, `--goal`, `--goal-window-hours` and `--button` shape it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from sqlalchemy import Engine

from cli.common import engine_scope, fail, get_settings
from cli.jobs import send_due
from scheduler import (
    ExperimentDraft,
    SchedulerError,
    VariantDraft,
    campaign_report,
    cancel_campaign,
    create_broadcast,
    create_experiment_broadcast,
    experiment_report,
    pause_campaign,
    recent_reports,
    resume_campaign,
)
from scheduler.best_time import SEND_AT_BEST, SEND_AT_SPLIT, SendTimeConfig
from scheduler.engine import EngineConfig
from scheduler.experiments import VARIANT_KEYS
from store import Settings
from store.conversions import UnknownGoalError, goal_event_name, known_product_events, parse_goal
from store.db import unit_of_work
from store.experiments import VariantButton

app = typer.Typer(
    help="Segment broadcasts (or experiments with --variant): create, list, report, pause, resume, cancel.",
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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`--pick-winner-after`: `90m`, `6h`, `1d`, `1h30m` (a number with s, m, h or d, repeated).

    Raises:
        typer.BadParameter: anything else, or zero.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise typer.BadParameter(f"{text!r}: expected a duration such as 90m, 6h, 1d or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r}: the duration must be positive")
    return timedelta(seconds=seconds)


def parse_button(text: str) -> tuple[str | None, VariantButton]:
    """`--button`: `[V:]LABEL` (a tracked callback button) or `[V:]LABEL|URL` (a link, not tracked).

    The optional `V:` prefix (a variant key, A to H) puts the button on that variant only.

    Raises:
        typer.BadParameter: an empty label.
    """
    key = None
    if len(text) > 2 and text[1] == ":" and text[0].upper() in VARIANT_KEYS:
        key, text = text[0].upper(), text[2:]
    label, sep, url = text.partition("|")
    if not label.strip() or (sep and not url.strip()):
        raise typer.BadParameter(f"{text!r}: expected LABEL or LABEL|URL, optionally after A: to H:")
    return key, VariantButton(label.strip(), url.strip() if sep else None)


def experiment_draft(
    variants: list[str],
    buttons: list[str],
    *,
    control_share: float,
    test_share: float | None,
    pick_winner_after: str | None,
    default_variant: str,
    goal: str,
    window_hours: float,
) -> ExperimentDraft:
    """The experiment the options describe (checked further by the scheduler)."""
    parsed = [parse_button(b) for b in buttons]
    keys = VARIANT_KEYS[: len(variants)]
    unknown = sorted({k for k, _ in parsed if k is not None and k not in keys})
    if unknown:
        raise typer.BadParameter(
            f"--button for variant {', '.join(unknown)}, but only {', '.join(keys)} exist"
        )
    drafts = tuple(
        VariantDraft(text, tuple(b for k, b in parsed if k in (None, key)))
        for key, text in zip(keys, variants, strict=False)
    )
    return ExperimentDraft(
        drafts,
        control_share=control_share,
        test_share=test_share,
        pick_winner_after=parse_duration(pick_winner_after) if pick_winner_after is not None else None,
        default_variant=default_variant,
        goal=goal,
        window_hours=window_hours,
    )


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
    variant: list[str] = typer.Option(
        [],
        "--variant",
        "-v",
        help="A variant's text; give 2 to 8 for an experiment (keys A, B, ... in order).",
    ),
    button: list[str] = typer.Option(
        [],
        "--button",
        help="Button: LABEL (press tracked) or LABEL|URL (link, untracked); prefix A: for one variant.",
    ),
    control_share: float = typer.Option(
        0.0, "--control-share", help="Share that gets nothing (control arm)."
    ),
    test_share: float | None = typer.Option(
        None, "--test-share", help="Send the variants to this share first, then the winner to the rest."
    ),
    pick_winner_after: str | None = typer.Option(
        None, "--pick-winner-after", help="With --test-share: when to pick the winner (e.g. 6h, 90m, 1d)."
    ),
    default_variant: str = typer.Option(
        "A", "--default-variant", help="Sent to the rest when no variant is significantly better."
    ),
    goal: str | None = typer.Option(
        None,
        "--goal",
        help="Conversion goal: return (any event), click (a tracked button; experiments only) or a "
        "product event (`upgrade` = `product:upgrade`).",
    ),
    goal_window_hours: float = typer.Option(
        48.0, "--goal-window-hours", "--window-hours", help="Hours after each send in which the goal counts."
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
    if segment is None or (text is None and not variant):
        fail("give --segment and --text (or --variant twice or more) to create a broadcast, or a sub-command")
    if text is not None and variant:
        fail("give either --text or --variant, not both (a variant is a text)")
    settings = get_settings(ctx)
    now = datetime.now(UTC)
    when = parse_at(at, now)
    # Send time: --best-time or --best-time-vs-fixed (not both).
    if best_time and best_time_vs_fixed:
        fail("give --best-time or --best-time-vs-fixed, not both")
    send_at = SEND_AT_SPLIT if best_time_vs_fixed else SEND_AT_BEST if best_time else None
    send_time = SendTimeConfig.from_settings(settings)
    if send_at is not None and variant:
        fail("--best-time and --best-time-vs-fixed cannot be combined with --variant yet")
    draft = None
    if variant:
        draft = experiment_draft(
            variant,
            button,
            control_share=control_share,
            test_share=test_share,
            pick_winner_after=pick_winner_after,
            default_variant=default_variant,
            goal=experiment_goal(goal),
            window_hours=goal_window_hours,
        )
    elif button or test_share is not None or pick_winner_after is not None or control_share:
        fail("--button, --control-share, --test-share and --pick-winner-after need --variant")
    with engine_scope(settings) as engine:
        experiment_id = None
        try:
            if draft is None:
                warn_unseen_goal(engine, goal)
                campaign_id = create_broadcast(
                    engine,
                    segment=segment,
                    text=text or "",
                    at=when,
                    now=now,
                    send_at=send_at,
                    send_time=send_time,
                    **goal_options(goal, goal_window_hours),
                )
            else:
                warn_unseen_goal(engine, None if goal == "click" else goal)
                campaign_id, experiment_id = create_experiment_broadcast(
                    engine,
                    segment=segment,
                    draft=draft,
                    at=when,
                    now=now,
                    holdout_share=settings.holdout_share,
                )
        except SchedulerError as exc:
            fail(str(exc))
        report = campaign_report(engine, campaign_id, now=now, rate_per_s=_rate(settings))
        out.print(*report.lines(), sep="\n")
        if experiment_id is not None:
            out.print(*experiment_report(engine, experiment_id).lines(), sep="\n")
        if send and when <= now:
            out.print(f"deliveries: {asyncio.run(send_due(settings, engine))}")
            report = campaign_report(engine, campaign_id, now=datetime.now(UTC), rate_per_s=_rate(settings))
            out.print(*report.lines(), sep="\n")


# --- Conversion goals (issue 16): `--goal upgrade` -------------------------------------------


def experiment_goal(goal: str | None) -> str:
    """An experiment's goal from `--goal`: `return` by default, `click`, or a product event."""
    if goal is None or goal.strip() == "click":
        return "return" if goal is None else "click"
    try:
        return parse_goal(goal)
    except UnknownGoalError as exc:
        fail(f"--goal: {exc} (experiments also take `click`)")


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
