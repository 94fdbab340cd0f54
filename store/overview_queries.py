"""The dashboard overview's reads: four scans of the event log where there were nine queries.

Active users per day and per week and the weekday-hour heatmap come from one grouped scan of the
period by (user, UTC hour); the rolling DAU/WAU/MAU from one scan of the last 30 days with three
conditional distinct counts (both read only the (ts, user_id) index); the period's messages,
unanswered messages and intents from the (kind, ts) index's ranges; the retention cohorts from
the distinct (user, UTC day) pairs. Buckets are read as text (`YYYY-MM-DD HH`), which both
backends produce without date arithmetic per row; the caller does the calendar work on a few
thousand grouped rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.orm import Session

from store.analytics_queries import PeriodCounts
from store.models import Event, User
from store.vocabulary import MESSAGE_KINDS, EventKind

__all__ = ["period_messages", "rolling_active_users", "user_days", "user_hours"]


def _hour_text(dialect: str, ts: Any) -> ColumnElement[str]:
    """`YYYY-MM-DD HH` of a timestamp, UTC (SQLite stores naive UTC text of that shape)."""
    if dialect == "sqlite":
        return func.substr(ts, 1, 13)
    return func.to_char(func.timezone("UTC", ts), "YYYY-MM-DD HH24")


def _day_text(dialect: str, ts: Any) -> ColumnElement[str]:
    """`YYYY-MM-DD` of a timestamp, UTC."""
    if dialect == "sqlite":
        return func.substr(ts, 1, 10)
    return func.to_char(func.timezone("UTC", ts), "YYYY-MM-DD")


def user_hours(session: Session, *, since: datetime, until: datetime) -> list[tuple[int, datetime, int]]:
    """Events per (user, UTC hour) in [since, until): `(user_id, hour start, events)`.

    User and time are both in the (ts, user_id) index, so the scan reads only the index.
    """
    e = Event.__table__
    hour = _hour_text(session.get_bind().dialect.name, e.c.ts).label("hour")
    query = (
        select(e.c.user_id, hour, func.count())
        .where(e.c.user_id.is_not(None), e.c.ts >= since, e.c.ts < until)
        .group_by(e.c.user_id, hour)
    )
    starts: dict[str, datetime] = {}  # a few hundred distinct hours: parse each once
    found = []
    for user_id, text, n in session.execute(query):
        start = starts.get(text)
        if start is None:
            start = starts[text] = datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=UTC)
        found.append((int(user_id), start, int(n)))
    return found


def rolling_active_users(session: Session, *, until: datetime, days: tuple[int, ...]) -> tuple[int, ...]:
    """Distinct users with an event in [until - d, until) for each d of `days`, in one index scan."""
    e = Event.__table__
    counts = [
        func.count(distinct(case((e.c.ts >= until - timedelta(days=d), e.c.user_id), else_=None)))
        for d in days
    ]
    window = and_(e.c.user_id.is_not(None), e.c.ts >= until - timedelta(days=max(days)), e.c.ts < until)
    row = session.execute(select(*counts).where(window)).one()
    return tuple(int(n or 0) for n in row)


def period_messages(session: Session, *, since: datetime, until: datetime, top: int) -> PeriodCounts:
    """`analytics_queries.period_counts` in two statements: the message kinds grouped once by intent.

    The messages (channel posts too), the unanswered ones and the top intents all come from the
    (kind, ts) index's ranges for `message` and `fallback`; new users from the users table.
    """
    e = Event.__table__
    u = User.__table__
    grouped = session.execute(
        select(e.c.kind, e.c.intent, func.count())
        .where(e.c.kind.in_(MESSAGE_KINDS), e.c.ts >= since, e.c.ts < until)
        .group_by(e.c.kind, e.c.intent)
    ).all()
    new_users = session.execute(
        select(func.count()).where(u.c.first_seen >= since, u.c.first_seen < until)
    ).scalar()
    intents: dict[str, int] = {}
    for kind, intent, n in grouped:
        if kind == EventKind.MESSAGE and intent is not None:
            intents[str(intent)] = intents.get(str(intent), 0) + int(n)
    ranked = sorted(intents.items(), key=lambda item: (-item[1], item[0]))[:top]
    return PeriodCounts(
        messages=sum(int(n) for _, _, n in grouped),
        unanswered=sum(int(n) for kind, _, n in grouped if kind == EventKind.FALLBACK),
        new_users=int(new_users or 0),
        top_intents=tuple(ranked),
    )


def user_days(session: Session, *, until: datetime) -> list[tuple[int, date]]:
    """Every (user, UTC day) with an event before `until`: what retention cohorts are made of."""
    e = Event.__table__
    day = _day_text(session.get_bind().dialect.name, e.c.ts).label("day")
    query = (
        select(e.c.user_id, day).where(e.c.user_id.is_not(None), e.c.ts < until).group_by(e.c.user_id, day)
    )
    dates: dict[str, date] = {}
    found = []
    for user_id, text in session.execute(query):
        parsed = dates.get(text)
        if parsed is None:
            parsed = dates[text] = date.fromisoformat(text)
        found.append((int(user_id), parsed))
    return found
