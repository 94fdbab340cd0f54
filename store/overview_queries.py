"""The dashboard overview's reads: the rollups (`store.rollups`), never a scan of the event log.

Whole UTC hours and days come from `event_hours` and `user_days`; only the partial hour or day
at each end of a window is read from the events, by the (ts, user_id) and (kind, ts) indexes over
that bounded range. Windows ending now (the rolling DAU/WAU/MAU, the charts' current day and
week) count users by their last event time (`user_last_events`) and add the users of the events
past the rollups' watermark, so they are current without the reader writing anything; so do
the messages, the heat map and the charts' whole days and weeks (they add the unfolded events,
found by id). Each figure equals the per-figure query on the log (`store.analytics_queries`) for
every event folded in; the charts' cut first day or week and the cohorts take in newer events at
the next refresh (a minute, by the scheduler's `rollups` job).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, and_, distinct, func, literal, select, union_all
from sqlalchemy.orm import Session

from store.analytics_queries import PeriodCounts
from store.models import CohortCount, Event, EventHour, PeriodUsers, RollupState, User, UserDay, UserLastEvent
from store.vocabulary import MESSAGE_KINDS, EventKind

__all__ = ["active_by", "cohort_rows", "hour_events", "period_messages", "rolling_active_users"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3600
DAY = 86400


def _split(
    since: datetime, until: datetime, unit: int
) -> tuple[int, int, list[tuple[datetime, datetime, int]]]:
    """[since, until) as whole units [lo, hi) (numbers since the epoch) and the partial units at its ends.

    Each edge `(start, end, unit number)` lies inside one unit, so its rows can be numbered by a constant.
    """
    a = (since - EPOCH).total_seconds()
    b = (until - EPOCH).total_seconds()
    first, last = int(a // unit), int(b // unit)
    if b <= a:
        return 0, 0, []
    if first == last:
        return 0, 0, [(since, until, first)]
    edges = []
    lo = first if a == first * unit else first + 1
    if lo != first:
        edges.append((since, EPOCH + timedelta(seconds=lo * unit), first))
    if b != last * unit:
        edges.append((EPOCH + timedelta(seconds=last * unit), until, last))
    return lo, last, edges


def _user_days(since: datetime, until: datetime) -> Any:
    """(user_id, day) rows of [since, until): whole days from the rollup, the ends from the log."""
    ud = UserDay.__table__
    e = Event.__table__
    lo, hi, edges = _split(since, until, DAY)
    parts: list[Select[Any]] = []
    if lo < hi:
        parts.append(select(ud.c.user_id, ud.c.day).where(ud.c.day >= lo, ud.c.day < hi))
    for start, end, number in edges:
        parts.append(
            select(e.c.user_id, literal(number, Integer).label("day"))
            .where(e.c.user_id.is_not(None), e.c.ts >= start, e.c.ts < end)
            .distinct()
        )
    if not parts:
        parts.append(select(ud.c.user_id, ud.c.day).where(ud.c.day < 0, ud.c.day > 0))  # empty, typed
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def _distinct(session: Session, since: datetime, until: datetime) -> int:
    """Distinct users with an event in [since, until), from their days (a window of a few days)."""
    rows = _user_days(since, until)
    return int(session.execute(select(func.count(distinct(rows.c.user_id)))).scalar() or 0)


def _watermark(session: Session) -> int:
    """The highest event id the rollups hold (read in the caller's snapshot, like the rollups)."""
    rs = RollupState.__table__
    return int(
        session.execute(select(func.max(rs.c.last_event_id)).where(rs.c.name == "events")).scalar() or 0
    )


def _tail(session: Session, start: datetime, end: datetime) -> Any:
    """Events in [start, end) past the rollups' watermark: what whole hours add until the next refresh."""
    e = Event.__table__
    return and_(e.c.id > _watermark(session), e.c.ts >= start, e.c.ts < end)


def _tail_users(session: Session, period_days: int, start: datetime, end: datetime) -> dict[int, int]:
    """Users per bucket that only the events past the watermark make active in it (read-only)."""
    e = Event.__table__
    ud = UserDay.__table__
    pairs: set[tuple[int, int]] = set()
    query = select(e.c.user_id, e.c.ts).where(_tail(session, start, end), e.c.user_id.is_not(None))
    for user_id, ts in session.execute(query):
        day = int((ts.astimezone(UTC) - EPOCH).total_seconds() // DAY)
        pairs.add((day // period_days, int(user_id)))
    added: dict[int, int] = {}
    for bucket, user_id in pairs:
        known = select(ud.c.day).where(
            ud.c.user_id == user_id,
            ud.c.day >= bucket * period_days,
            ud.c.day < (bucket + 1) * period_days,
        )
        if session.execute(known.limit(1)).first() is None:
            added[bucket] = added.get(bucket, 0) + 1
    return added


def _distinct_to_now(session: Session, since: datetime, until: datetime) -> int:
    """Distinct users with an event in [since, until), by last event time: exact anywhere, cheap near now.

    Users whose last folded event lies in the window are one range count on `user_last_events`.
    The rest who may belong: users whose last event is at or after `until` (a few seconds' worth
    when `until` is now) and users of the events not folded in yet (past the watermark: the
    last minute's, until the scheduler's `rollups` job runs). Each of those is checked against
    the log by the (user_id, ts) index. No write: the page reads what the job folded plus the tail.
    """
    ul = UserLastEvent.__table__
    e = Event.__table__
    inside = int(
        session.execute(select(func.count()).where(ul.c.last_ts >= since, ul.c.last_ts < until)).scalar() or 0
    )
    tail = select(e.c.user_id).where(
        e.c.id > _watermark(session), e.c.user_id.is_not(None), e.c.ts >= since, e.c.ts < until
    )
    rest = union_all(select(ul.c.user_id).where(ul.c.last_ts >= until), tail).subquery()
    counted = select(ul.c.user_id).where(
        ul.c.user_id == rest.c.user_id, ul.c.last_ts >= since, ul.c.last_ts < until
    )
    e2 = e.alias("e2")
    active = select(e2.c.id).where(e2.c.user_id == rest.c.user_id, e2.c.ts >= since, e2.c.ts < until)
    others = session.execute(
        select(func.count(distinct(rest.c.user_id))).where(~counted.exists(), active.exists())
    ).scalar()
    return inside + int(others or 0)


def active_by(
    session: Session, *, period_days: int, since: datetime, until: datetime
) -> list[tuple[int, int]]:
    """Distinct active users per bucket of `period_days` UTC days: `(first day number, users)`.

    Buckets the window covers whole come from `period_users`; the one or two it cuts are counted
    over their covered part (the last one by last event time, as it ends now).
    """
    pu = PeriodUsers.__table__
    first = int((since - EPOCH).total_seconds() // DAY) // period_days
    last = int(((until - EPOCH).total_seconds() - 1e-6) // DAY) // period_days
    found: dict[int, int] = {}
    whole = [
        b
        for b in range(first, last + 1)
        if EPOCH + timedelta(days=b * period_days) >= since
        and EPOCH + timedelta(days=(b + 1) * period_days) <= until
    ]
    if whole:
        query = select(pu.c.bucket, pu.c.users).where(
            pu.c.period_days == period_days, pu.c.bucket >= whole[0], pu.c.bucket <= whole[-1]
        )
        found.update((int(b), int(n)) for b, n in session.execute(query))
        start = EPOCH + timedelta(days=whole[0] * period_days)
        end = EPOCH + timedelta(days=(whole[-1] + 1) * period_days)
        for b, n in _tail_users(session, period_days, start, end).items():
            found[b] = found.get(b, 0) + n
    for b in sorted({first, last} - set(whole)):
        start = max(since, EPOCH + timedelta(days=b * period_days))
        end = min(until, EPOCH + timedelta(days=(b + 1) * period_days))
        count = _distinct_to_now if b == last and b != first else _distinct
        n = count(session, start, end)
        if n:
            found[b] = n
    return [(b * period_days, n) for b, n in sorted(found.items()) if n]


def rolling_active_users(session: Session, *, until: datetime, days: tuple[int, ...]) -> tuple[int, ...]:
    """Distinct users with an event in [until - d, until) for each d of `days`."""
    return tuple(_distinct_to_now(session, until - timedelta(days=d), until) for d in days)


def hour_events(session: Session, *, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """Events that have a user per UTC hour in [since, until): `(hour start, events)`, the heat map's."""
    eh = EventHour.__table__
    e = Event.__table__
    lo, hi, edges = _split(since, until, HOUR)
    totals: dict[int, int] = {}
    if lo < hi:
        query = (
            select(eh.c.hour, func.sum(eh.c.user_events))
            .where(eh.c.hour >= lo, eh.c.hour < hi)
            .group_by(eh.c.hour)
        )
        totals.update((int(h), int(n or 0)) for h, n in session.execute(query))
        # The events of those whole hours not folded in yet (past the watermark), from the log.
        start, end = EPOCH + timedelta(hours=lo), EPOCH + timedelta(hours=hi)
        tail = _tail(session, start, end)
        for ts in session.execute(select(e.c.ts).where(tail, e.c.user_id.is_not(None))).scalars():
            number = int((ts.astimezone(UTC) - EPOCH).total_seconds() // HOUR)
            totals[number] = totals.get(number, 0) + 1
    for start, end, number in edges:
        n = session.execute(
            select(func.count()).where(e.c.user_id.is_not(None), e.c.ts >= start, e.c.ts < end)
        ).scalar()
        totals[number] = totals.get(number, 0) + int(n or 0)
    return [(EPOCH + timedelta(hours=h), n) for h, n in sorted(totals.items()) if n]


def period_messages(session: Session, *, since: datetime, until: datetime, top: int) -> PeriodCounts:
    """`analytics_queries.period_counts` from `event_hours` (the ends of the period from the log)."""
    eh = EventHour.__table__
    e = Event.__table__
    u = User.__table__
    lo, hi, edges = _split(since, until, HOUR)
    grouped: list[tuple[str, str | None, int]] = []
    if lo < hi:
        query = (
            select(eh.c.kind, eh.c.intent, func.sum(eh.c.events))
            .where(eh.c.kind.in_(MESSAGE_KINDS), eh.c.hour >= lo, eh.c.hour < hi)
            .group_by(eh.c.kind, eh.c.intent)
        )
        grouped += [(kind, intent or None, int(n or 0)) for kind, intent, n in session.execute(query)]
        tail = _tail(session, EPOCH + timedelta(hours=lo), EPOCH + timedelta(hours=hi))
        query = (
            select(e.c.kind, e.c.intent, func.count())
            .where(tail, e.c.kind.in_(MESSAGE_KINDS))
            .group_by(e.c.kind, e.c.intent)
        )
        grouped += [(kind, intent, int(n)) for kind, intent, n in session.execute(query)]
    for start, end, _ in edges:
        query = (
            select(e.c.kind, e.c.intent, func.count())
            .where(e.c.kind.in_(MESSAGE_KINDS), e.c.ts >= start, e.c.ts < end)
            .group_by(e.c.kind, e.c.intent)
        )
        grouped += [(kind, intent, int(n)) for kind, intent, n in session.execute(query)]
    new_users = session.execute(
        select(func.count()).where(u.c.first_seen >= since, u.c.first_seen < until)
    ).scalar()
    intents: dict[str, int] = {}
    for kind, intent, n in grouped:
        if kind == EventKind.MESSAGE and intent is not None:
            intents[str(intent)] = intents.get(str(intent), 0) + n
    ranked = sorted(intents.items(), key=lambda item: (-item[1], item[0]))[:top]
    return PeriodCounts(
        messages=sum(n for _, _, n in grouped),
        unanswered=sum(n for kind, _, n in grouped if kind == EventKind.FALLBACK),
        new_users=int(new_users or 0),
        top_intents=tuple(ranked),
    )


def cohort_rows(session: Session) -> list[tuple[int, int, int]]:
    """Users per (first-activity week, weeks since), weeks numbered from the epoch: the triangle."""
    cc = CohortCount.__table__
    query = (
        select(cc.c.cohort, cc.c.week_offset, cc.c.users)
        .where(cc.c.users > 0)
        .order_by(cc.c.cohort, cc.c.week_offset)
    )
    return [(int(c), int(o), int(n)) for c, o, n in session.execute(query)]
