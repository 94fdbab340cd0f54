"""Questions: what the bot could not answer, grouped by text, with counts and how many users asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from store.analytics_queries import period_counts, unanswered_texts
from store.db import read_snapshot

router = APIRouter()

RANGES = (7, 30, 90)
GROUPS = 50


@dataclass(frozen=True)
class Unanswered:
    """The unanswered questions of a period (cached with the overview's figures)."""

    computed_at: datetime
    messages: int
    unanswered: int
    groups: list[tuple[str, int, int]]  # (text, times asked, users)


@router.get("/questions", response_class=HTMLResponse)
def questions_page(
    request: Request, days: int = Query(30, ge=1, le=366), session: Session = Depends(manager)
) -> Response:
    """Unanswered and fallback questions of the last `days` days, most asked first."""
    engine = config_of(request).engine

    def compute() -> Unanswered:
        until = request.app.state.now()
        since = until - timedelta(days=days)
        with read_snapshot(engine) as db:
            counts = period_counts(db, since=since, until=until, top=0)
            table = unanswered_texts(db, since=since, until=until, limit=GROUPS)
        return Unanswered(until, counts.messages, counts.unanswered, list(table.rows))

    data: Unanswered = request.app.state.cache.get(("questions", days), compute)
    return render(request, "questions.html", session=session, data=data, days=days, ranges=RANGES)
