"""Segments: sizes, descriptions and profiles; one segment's members, intents, rules and movement; rename."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from analytics import UnknownSegmentError, pin_segment
from dashboard.auth import config_of, manager, manager_with_csrf
from dashboard.sessions import Session
from dashboard.templating import render
from dashboard.views.rules import mentions_segment
from store.analytics_queries import intents_by_segment
from store.analytics_results import (
    TOP_INTENTS,
    RunInfo,
    SegmentInfo,
    get_run,
    get_segment,
    previous_done_run,
    run_rules,
    run_segments,
    segment_overlap,
    segment_top_intents,
)
from store.audit import AuditAction, record_action
from store.dashboard_queries import segment_members_page
from store.db import read_snapshot

logger = logging.getLogger(__name__)
router = APIRouter()

PAGE = 50
MAX_NAME = 128
PROFILE_FIELDS = (
    "active_days",
    "recency_days",
    "tenure_days",
    "messages",
    "questions",
    "fallback_rate",
    "community_actions",
    "mean_rating",
    "push_response_rate",
    "rfm_score",
)


@dataclass(frozen=True)
class Movement:
    """Where a segment's users came from and went to since the previous run."""

    previous_run: int
    matched: SegmentInfo | None  # the previous run's segment this one continues, if any
    stayed: int
    came_from: list[tuple[str, int]]  # (previous segment or "not in the previous run", users)
    went_to: list[tuple[str, int]]  # (current segment or "no longer segmented", users)

    @property
    def moved_in(self) -> int:
        """Users now here who were elsewhere (or nowhere) in the previous run."""
        return sum(n for _, n in self.came_from)

    @property
    def moved_out(self) -> int:
        """Users of the matched previous segment now elsewhere (or gone)."""
        return sum(n for _, n in self.went_to)


def _movement(engine: Engine, run: RunInfo, segment: SegmentInfo) -> Movement | None:
    previous = previous_done_run(engine, run.id)
    if previous is None:
        return None
    old = {s.id: s for s in run_segments(engine, previous.id)}
    new = {s.id: s for s in run_segments(engine, run.id)}
    matched_id = run.metrics.get("matched_segments", {}).get(str(segment.label))
    matched = old.get(int(matched_id)) if matched_id is not None else None
    overlap = segment_overlap(engine, previous.id, run.id)
    stayed = sum(n for a, b, n in overlap if b == segment.id and matched is not None and a == matched.id)
    came = [
        (old[a].name, n) for a, b, n in overlap if b == segment.id and (matched is None or a != matched.id)
    ]
    came_total = sum(n for _, n in came)
    if segment.size - stayed - came_total > 0:
        came.append(("not in the previous run", segment.size - stayed - came_total))
    went: list[tuple[str, int]] = []
    if matched is not None:
        went = [(new[b].name, n) for a, b, n in overlap if a == matched.id and b != segment.id]
        gone = matched.size - stayed - sum(n for _, n in went)
        if gone > 0:
            went.append(("no longer segmented (left or forgotten)", gone))
    return Movement(
        previous.id, matched, stayed, sorted(came, key=lambda x: -x[1]), sorted(went, key=lambda x: -x[1])
    )


def _top_intents(request: Request, run: RunInfo) -> dict[int, list[tuple[str, int]]]:
    """Top intents per segment of a run, as the analytics run stored them when it completed.

    Runs stored before runs kept them are counted from the events once per process (their
    events end at the run's as_of); the next analytics run stores them.
    """
    stored = segment_top_intents(run)
    if stored is not None:
        return stored
    engine = config_of(request).engine

    def compute() -> dict[int, list[tuple[str, int]]]:
        logger.info("run %d has no stored top intents: counting them from the events", run.id)
        as_of = datetime.fromisoformat(run.params["as_of"]) if "as_of" in run.params else datetime.now(UTC)
        found: dict[int, list[tuple[str, int]]] = {}
        with read_snapshot(engine) as db:
            table = intents_by_segment(db, run_id=run.id, as_of=as_of, limit=TOP_INTENTS)
        for segment_id, intent, n in table.rows:
            found.setdefault(int(segment_id), []).append((str(intent), int(n)))
        return found

    result: dict[int, list[tuple[str, int]]] = request.app.state.run_cache.get(("intents", run.id), compute)
    return result


@router.get("/segments", response_class=HTMLResponse)
def segments_page(request: Request, session: Session = Depends(manager)) -> Response:
    """The current run's segments, largest first."""
    engine = config_of(request).engine
    run = get_run(engine)
    segments = [] if run is None else run_segments(engine, run.id)
    return render(
        request, "segments.html", session=session, run=run, segments=segments, fields=PROFILE_FIELDS
    )


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(
    request: Request,
    segment_id: int,
    q: str = "",
    page: int = Query(0, ge=0),
    session: Session = Depends(manager),
) -> Response:
    """One segment: members (paged, searchable), top intents, its rules, movement since the previous run."""
    engine = config_of(request).engine
    segment = get_segment(engine, segment_id)
    if segment is None:
        raise HTTPException(404)
    run = get_run(engine, segment.run_id)
    assert run is not None
    members, total = segment_members_page(engine, segment_id, search=q, offset=page * PAGE, limit=PAGE)
    rules = [r for r in run_rules(engine, run.id) if mentions_segment(r, segment.name)][:20]
    return render(
        request,
        "segment.html",
        session=session,
        segment=segment,
        run=run,
        members=members,
        total=total,
        q=q,
        page=page,
        has_next=(page + 1) * PAGE < total,
        intents=_top_intents(request, run).get(segment.id, []),
        rules=rules,
        movement=_movement(engine, run, segment),
        fields=PROFILE_FIELDS,
    )


@router.post("/segments/{segment_id}/rename")
def rename(
    request: Request, segment_id: int, name: str = Form(""), session: Session = Depends(manager_with_csrf)
) -> Response:
    """Rename a segment and pin the name, so later runs keep it for the matching segment."""
    config = config_of(request)
    before = get_segment(config.engine, segment_id)
    if before is None:
        raise HTTPException(404)
    new_name = name.strip()[:MAX_NAME]
    try:
        after = pin_segment(config.engine, segment_id, new_name)
    except UnknownSegmentError as exc:
        raise HTTPException(400, str(exc)) from exc
    record_action(
        config.engine,
        actor_id=session.user_id,
        action=AuditAction.SEGMENT_RENAMED,
        target=f"segment #{segment_id}",
        now=request.app.state.now(),
        details={"from": before.name, "to": after.name},
    )
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)
