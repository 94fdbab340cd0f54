"""The broadcast composer: segment, text and time; a confirmation showing who and when; then the campaign.

The campaign is created exactly as `rapport broadcast` creates it (`scheduler.create_broadcast`):
rows in the database that the running scheduler sends.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from analytics import current_segments
from dashboard.auth import config_of, manager, manager_with_csrf
from dashboard.sessions import Session
from dashboard.templating import render
from scheduler import BroadcastError, create_broadcast, segment_recipients
from scheduler.planning import check_text
from store.audit import AuditAction, record_action
from store.dashboard_queries import users_by_ids

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


def _form(segment: str, days: int | None, text: str, when: str, at: str) -> dict[str, Any]:
    return {"segment": segment, "days": days, "text": text, "when": when, "at": at}


def _compose(
    request: Request, session: Session, form: dict[str, Any], error: str | None, status: int = 200
) -> Response:
    segments = current_segments(config_of(request).engine)
    return render(
        request,
        "broadcast.html",
        session=session,
        segments=segments,
        form=form,
        error=error,
        status_code=status,
    )


@router.get("/broadcast", response_class=HTMLResponse)
def compose_page(request: Request, segment: str = "all", session: Session = Depends(manager)) -> Response:
    """The composer, optionally with a segment chosen (from a segment's page)."""
    return _compose(request, session, _form(segment, 7, "", "now", ""), None)


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
    segment: str = Form(...),
    days: int | None = Form(None),
    text: str = Form(""),
    when: str = Form("now"),
    at: str = Form(""),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """The confirmation step: exactly who (count and first recipients), when, and how long it takes."""
    config = config_of(request)
    now = request.app.state.now()
    form = _form(segment, days, text, when, at)
    try:
        body = check_text(text)
        moment = parse_when(when, at, config.zone, now)
        name = segment_name(segment, days)
        found = segment_recipients(config.engine, name, now=now)
    except BroadcastError as exc:
        return _compose(request, session, form, str(exc), status=400)
    sample_ids = [r.user_id for r in found[:SAMPLE]]
    sample = users_by_ids(config.engine, sample_ids)
    seconds = math.ceil(len(found) / config.send_rate_per_s) if config.send_rate_per_s > 0 else 0
    return render(
        request,
        "broadcast_confirm.html",
        session=session,
        form=form,
        body=body,
        name=name,
        count=len(found),
        sample=[sample.get(i) for i in sample_ids],
        sample_ids=sample_ids,
        moment=moment,
        is_now=when != "at",
        duration=timedelta(seconds=seconds),
        rate=config.send_rate_per_s,
    )


@router.post("/broadcast/confirm")
def confirm(
    request: Request,
    segment: str = Form(...),
    days: int | None = Form(None),
    text: str = Form(""),
    when: str = Form("now"),
    at: str = Form(""),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """Create the broadcast (recipients resolved again now) and show its campaign page."""
    config = config_of(request)
    now = request.app.state.now()
    form = _form(segment, days, text, when, at)
    try:
        moment = parse_when(when, at, config.zone, now)
        name = segment_name(segment, days)
        campaign_id = create_broadcast(
            config.engine, segment=name, text=text, at=moment, now=now, created_by=session.user_id
        )
    except BroadcastError as exc:
        return _compose(request, session, form, str(exc), status=400)
    record_action(
        config.engine,
        actor_id=session.user_id,
        action=AuditAction.BROADCAST_CREATED,
        target=f"campaign #{campaign_id}",
        now=now,
        details={"segment": name, "at": moment.isoformat(), "chars": len(text.strip())},
    )
    request.app.state.cache.clear()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
