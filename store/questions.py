"""Unanswered questions for the dashboard: the most recent ones of a period, and a cheap version stamp.

The dashboard groups them by meaning in memory; these queries only bound what it reads (the most
recent `limit` by the `(kind, ts)` index) and tell it when the grouping must be computed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from store.analytics_queries import FALLBACK_INTENTS
from store.models import Event
from store.vocabulary import EventKind


@dataclass(frozen=True)
class AskedQuestion:
    """One unanswered message: its text (trimmed), who asked and when."""

    text: str
    user_id: int | None
    ts: datetime


def _unanswered(since: datetime, until: datetime) -> ColumnElement[bool]:
    e = Event.__table__
    return and_(
        or_(e.c.kind == EventKind.FALLBACK, e.c.intent.in_(FALLBACK_INTENTS)),
        e.c.text.is_not(None),
        e.c.ts >= since,
        e.c.ts < until,
    )


def recent_unanswered(
    session: Session, *, since: datetime, until: datetime, limit: int
) -> list[AskedQuestion]:
    """The `limit` most recent unanswered messages with a text in [since, until), newest first."""
    e = Event.__table__
    query = (
        select(e.c.text, e.c.user_id, e.c.ts)
        .where(_unanswered(since, until))
        .order_by(e.c.ts.desc(), e.c.id.desc())
        .limit(limit)
    )
    found = []
    for text, user_id, ts in session.execute(query):
        cleaned = " ".join(str(text).split())
        if cleaned:
            found.append(AskedQuestion(cleaned, None if user_id is None else int(user_id), ts))
    return found


def unanswered_version(session: Session, *, since: datetime, until: datetime) -> tuple[int, int]:
    """(how many, highest event id) of the period's unanswered texts: changes when one is added or
    leaves the period, so a grouping cached under it is never stale."""
    e = Event.__table__
    count, top = session.execute(
        select(func.count(), func.max(e.c.id)).where(_unanswered(since, until))
    ).one()
    return int(count or 0), int(top or 0)
