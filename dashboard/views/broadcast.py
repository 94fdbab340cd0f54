"""The broadcast composer: segment, text (plain or Telegram HTML), URL buttons and time; a preview;
a test to the manager's own chat; a confirmation showing who and when; then the campaign.

The campaign is created exactly as `rapport broadcast` creates it (`scheduler.create_broadcast`):
rows in the database that the running scheduler sends. The test goes the same way
(`scheduler.planning.create_test_send`: one delivery to the manager's chat, in a `test` campaign
that is not counted among the campaigns to users).

Timing and goal take the CLI's options (`--best-time`, `--best-time-vs-fixed`, `--goal`,
`--goal-window-hours`) to the same `create_broadcast` arguments, so a campaign made here is
stored, planned and reported exactly as one made in the terminal.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine

from analytics import current_segments
from dashboard.auth import config_of, manager, manager_with_csrf
from dashboard.sessions import Session
from dashboard.templating import render
from scheduler import BroadcastError, create_broadcast, segment_recipients
from scheduler.best_time import SEND_AT_BEST, SEND_AT_SPLIT, SendTimeConfig
from scheduler.markup import HTML, MessageFormat, check_html, parse_buttons
from scheduler.planning import best_time_rows, check_body, create_test_send
from store.audit import AuditAction, record_action
from store.campaign_reports import Recipient
from store.conversions import (
    DEFAULT_GOAL_WINDOW,
    UnknownGoalError,
    goal_event_name,
    known_product_events,
    parse_goal,
)
from store.dashboard_queries import users_by_ids
from store.db import read_snapshot

router = APIRouter()

SAMPLE = 10


def segment_name(choice: str, days: int | None) -> str:
    """The segment as the scheduler names it: `all`, `inactive:N` or a learned segment's id."""
    if choice == "inactive":
        return f"inactive:{days if days is not None else 0}"
    return choice


def parse_when(when: str, at: str, zone: ZoneInfo, now: datetime) -> datetime:
    """Now, or a local `YYYY-MM-DDTHH:MM` in the manager's zone (not in the past).

    Raises:
        BroadcastError: unparsable or past time.
    """
    if when != "at":
        return now
    try:
        local = datetime.fromisoformat(at.strip())
    except ValueError as exc:
        raise BroadcastError(f"the send time {at!r} is not a date and time") from exc
    moment = (local.replace(tzinfo=zone) if local.tzinfo is None else local).astimezone(now.tzinfo)
    if moment < now.replace(second=0, microsecond=0):
        raise BroadcastError(f"the send time {at} is in the past")
    return moment


FIXED_TIME = "fixed"
SEND_MODES = (FIXED_TIME, SEND_AT_BEST, SEND_AT_SPLIT)
"""The composer's timing choices: everyone at the time, each at their best hour, or half and half."""


def send_mode(choice: str) -> str | None:
    """`create_broadcast`'s `send_at` for the composer's timing choice (None: everyone at the time).

    Raises:
        BroadcastError: a choice the composer does not offer.
    """
    value = choice.strip() or FIXED_TIME
    if value not in SEND_MODES:
        raise BroadcastError(f"timing {choice!r}: choose {', '.join(SEND_MODES)}")
    return None if value == FIXED_TIME else value


def goal_options(goal: str, hours: str) -> dict[str, Any]:
    """`create_broadcast`'s goal arguments (none without a goal), as `rapport broadcast --goal` gives them.

    Raises:
        BroadcastError: not a goal, or a window that is not a positive number of hours.
    """
    if not goal.strip():
        return {}
    try:
        canonical = parse_goal(goal)
    except UnknownGoalError as exc:
        raise BroadcastError(str(exc)) from exc
    text = hours.strip()
    try:
        value = float(text) if text else DEFAULT_GOAL_WINDOW.total_seconds() / 3600.0
    except ValueError as exc:
        raise BroadcastError(f"the goal window {hours!r} is not a number of hours") from exc
    if not math.isfinite(value) or value <= 0:
        raise BroadcastError(f"the goal window must be a positive number of hours, got {hours}")
    return {"goal": canonical, "goal_window": timedelta(hours=value)}


def unseen_goal_event(engine: Engine, goal: str | None) -> str | None:
    """The product event a goal names when none is logged yet (the CLI warns too; not refused:
    the event may start later)."""
    name = goal_event_name(goal) if goal is not None else None
    if name is None:
        return None
    with read_snapshot(engine) as db:
        known = known_product_events(db, limit=1000)
    return None if name in known else name


@dataclass(frozen=True)
class PlannedWindow:
    """When a best-time broadcast's rows would fall: the first and last due time, and how many wait."""

    first: datetime
    last: datetime
    later: int  # rows due after the planned time (the rest go at it)


def planned_window(
    engine: Engine, recipients: list[Recipient], *, at: datetime, mode: str, config: SendTimeConfig
) -> PlannedWindow | None:
    """The due times the scheduler's own planner gives these recipients now (nothing is written)."""
    if not recipients:
        return None
    rows = best_time_rows(engine, recipients, "", at=at, mode=mode, key="review", config=config)
    due = [row.due_at for row in rows]
    return PlannedWindow(min(due), max(due), sum(1 for d in due if d > at))


FORM_FIELDS = ("segment", "days", "text", "fmt", "buttons", "when", "at", "send_at", "goal", "goal_hours")


@dataclass(frozen=True)
class ComposeForm:
    """The composer's fields as posted: what the review, the confirmation and the test send read."""

    segment: str
    days: int | None = None
    text: str = ""
    fmt: str = "plain"
    buttons: str = ""
    when: str = "now"
    at: str = ""
    send_at: str = FIXED_TIME
    goal: str = ""
    goal_hours: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields for re-rendering the composer as it was."""
        return asdict(self)


def compose_form(segment_default: Any = ...) -> Callable[..., ComposeForm]:
    """A dependency reading the composer's form fields; `...` makes `segment` required."""

    def read(
        segment: str = Form(segment_default),
        days: int | None = Form(None),
        text: str = Form(""),
        fmt: str = Form("plain"),
        buttons: str = Form(""),
        when: str = Form("now"),
        at: str = Form(""),
        send_at: str = Form(FIXED_TIME),
        goal: str = Form(""),
        goal_hours: str = Form(""),
    ) -> ComposeForm:
        return ComposeForm(segment, days, text, fmt, buttons, when, at, send_at, goal, goal_hours)

    return read


def message_format(fmt: str, buttons: str) -> MessageFormat:
    """The composer's format choice (`plain` or `html`) and button lines, checked.

    Raises:
        BroadcastError: an unknown format, or a button line Telegram would refuse.
    """
    if fmt not in ("plain", "html"):
        raise BroadcastError(f"format {fmt!r}: choose plain text or HTML")
    return MessageFormat(parse_mode=HTML if fmt == "html" else None, buttons=parse_buttons(buttons))


def preview_html(text: str, fmt: MessageFormat) -> str:
    """The message as the preview shows it: whitelisted HTML rebuilt by the parser, or escaped text."""
    if fmt.parse_mode == HTML:
        return check_html(text.strip()).safe_html
    return html.escape(check_body(text, fmt))


def _compose(
    request: Request,
    session: Session,
    form: dict[str, Any],
    error: str | None,
    status: int = 200,
    notice: dict[str, Any] | None = None,
) -> Response:
    engine = config_of(request).engine
    segments = current_segments(engine)
    with read_snapshot(engine) as db:
        goal_events = known_product_events(db)
    return render(
        request,
        "broadcast.html",
        session=session,
        segments=segments,
        goal_events=goal_events,
        form=form,
        error=error,
        notice=notice,
        status_code=status,
    )


@router.get("/broadcast", response_class=HTMLResponse)
def compose_page(request: Request, segment: str = "all", session: Session = Depends(manager)) -> Response:
    """The composer, optionally with a segment chosen (from a segment's page)."""
    return _compose(request, session, ComposeForm(segment, days=7).as_dict(), None)


@router.get("/broadcast/recipients")
def recipients_count(
    request: Request, segment: str = Query(...), days: int | None = None, session: Session = Depends(manager)
) -> Response:
    """The live recipient count for the composer (reachable members right now)."""
    config = config_of(request)
    try:
        found = segment_recipients(config.engine, segment_name(segment, days), now=request.app.state.now())
    except BroadcastError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"count": len(found)})


@router.post("/broadcast/review", response_class=HTMLResponse)
def review(
    request: Request,
    posted: ComposeForm = Depends(compose_form()),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """The confirmation step: exactly who (count and first recipients), when, and how long it takes."""
    config = config_of(request)
    now = request.app.state.now()
    form = posted.as_dict()
    try:
        checked = message_format(posted.fmt, posted.buttons)
        body = preview_html(posted.text, checked)
        moment = parse_when(posted.when, posted.at, config.zone, now)
        mode = send_mode(posted.send_at)
        goal = goal_options(posted.goal, posted.goal_hours)
        name = segment_name(posted.segment, posted.days)
        found = segment_recipients(config.engine, name, now=now)
    except BroadcastError as exc:
        return _compose(request, session, form, str(exc), status=400)
    unseen_goal = unseen_goal_event(config.engine, goal.get("goal"))
    window = (
        None
        if mode is None
        else planned_window(config.engine, found, at=moment, mode=mode, config=config.send_time)
    )
    sample_ids = [r.user_id for r in found[:SAMPLE]]
    sample = users_by_ids(config.engine, sample_ids)
    seconds = math.ceil(len(found) / config.send_rate_per_s) if config.send_rate_per_s > 0 else 0
    return render(
        request,
        "broadcast_confirm.html",
        session=session,
        form=form,
        body=body,
        url_buttons=checked.buttons,
        fields=FORM_FIELDS,
        name=name,
        count=len(found),
        sample=[sample.get(i) for i in sample_ids],
        sample_ids=sample_ids,
        moment=moment,
        is_now=posted.when != "at",
        duration=timedelta(seconds=seconds),
        rate=config.send_rate_per_s,
        mode=mode or FIXED_TIME,
        window=window,
        within_hours=config.send_time.within.total_seconds() / 3600.0,
        quiet=config.send_time.quiet_hours,
        goal=goal.get("goal"),
        unseen_goal=unseen_goal,
        goal_hours=goal["goal_window"].total_seconds() / 3600.0 if goal else None,
    )


@router.post("/broadcast/confirm")
def confirm(
    request: Request,
    posted: ComposeForm = Depends(compose_form()),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """Create the broadcast (recipients resolved again now) and show its campaign page."""
    config = config_of(request)
    now = request.app.state.now()
    form = posted.as_dict()
    try:
        checked = message_format(posted.fmt, posted.buttons)
        moment = parse_when(posted.when, posted.at, config.zone, now)
        mode = send_mode(posted.send_at)
        goal = goal_options(posted.goal, posted.goal_hours)
        name = segment_name(posted.segment, posted.days)
        campaign_id = create_broadcast(
            config.engine,
            segment=name,
            text=posted.text,
            at=moment,
            now=now,
            created_by=session.user_id,
            fmt=checked,
            send_at=mode,
            send_time=config.send_time,
            **goal,
        )
    except BroadcastError as exc:
        return _compose(request, session, form, str(exc), status=400)
    record_action(
        config.engine,
        actor_id=session.user_id,
        action=AuditAction.BROADCAST_CREATED,
        target=f"campaign #{campaign_id}",
        now=now,
        details={
            "segment": name,
            "at": moment.isoformat(),
            "chars": len(posted.text.strip()),
            "format": posted.fmt,
            "buttons": sum(len(row) for row in checked.buttons),
            "send_at": mode or FIXED_TIME,
            "goal": goal.get("goal"),
            "goal_window_hours": goal["goal_window"].total_seconds() / 3600.0 if goal else None,
        },
    )
    request.app.state.cache.clear()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/broadcast/preview")
def preview(
    request: Request,
    text: str = Form(""),
    fmt: str = Form("plain"),
    buttons: str = Form(""),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """The message as Telegram will show it (safe HTML and button rows), or why Telegram would refuse it."""
    try:
        checked = message_format(fmt, buttons)
        rows = [[{"text": b.text, "url": b.url} for b in row] for row in checked.buttons]
        if not text.strip():
            return JSONResponse({"html": "", "buttons": rows, "chars": 0})
        body = preview_html(text, checked)
    except BroadcastError as exc:
        # An answer about the draft, not a failed request (200: no console error while typing).
        return JSONResponse({"error": str(exc)})
    visible = check_html(text.strip()).visible if checked.parse_mode == HTML else text.strip()
    return JSONResponse({"html": body, "buttons": rows, "chars": len(visible)})


@router.post("/broadcast/test", response_class=HTMLResponse)
def send_test(
    request: Request,
    posted: ComposeForm = Depends(compose_form("all")),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """Queue the composed message once to the manager's own chat; the composer comes back as it was."""
    config = config_of(request)
    now = request.app.state.now()
    form = posted.as_dict()
    try:
        checked = message_format(posted.fmt, posted.buttons)
        test_id = create_test_send(
            config.engine, chat_id=session.user_id, text=posted.text, now=now, fmt=checked
        )
    except BroadcastError as exc:
        return _compose(request, session, form, str(exc), status=400)
    record_action(
        config.engine,
        actor_id=session.user_id,
        action=AuditAction.BROADCAST_TESTED,
        target=f"test #{test_id}",
        now=now,
        details={"chat_id": session.user_id, "format": posted.fmt, "chars": len(posted.text.strip())},
    )
    return _compose(request, session, form, None, notice={"id": test_id, "chat": session.user_id})
