"""Aggregation SQL for analytics: per-user features, baskets and insight series.

Everything here groups in the database and returns compact tables, so that the
analytics package never loads the raw event log into Python. Each function runs in the caller's
session, so one report or feature computation reads one snapshot (`store.db.read_snapshot`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from store.models import AccountLink, Campaign, Delivery, Event, SegmentMembership, Trait, User
from store.vocabulary import MESSAGE_KINDS, CampaignKind, DeliveryStatus, EventKind

logger = logging.getLogger(__name__)

EPOCH_JULIAN_DAY = 2440587.5
# The only intents the store interprets: what is not a question, and what the NLU gives when it
# cannot place a message (nlu.FALLBACK_INTENT, nlu.OUT_OF_SCOPE_INTENT). Every other intent name
# comes from the NLU model; tests/store/test_analytics_queries.py checks these against its data.
SMALL_TALK_INTENTS = ("greet", "goodbye", "thanks")
FALLBACK_INTENTS = ("nlu_fallback", "out_of_scope")
NON_QUESTION_INTENTS = (*SMALL_TALK_INTENTS, *FALLBACK_INTENTS, "human_handoff")
DAYPARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))


@dataclass(frozen=True)
class Table:
    """A small query result: column names and row tuples, in a fixed order."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def _days(dialect: str, ts: Any) -> ColumnElement[float]:
    """Fractional days since the Unix epoch, UTC, on either backend."""
    if dialect == "sqlite":
        return cast(func.julianday(ts), Float) - literal(EPOCH_JULIAN_DAY, Float)
    return cast(cast(func.extract("epoch", ts), Float) / literal(86400.0, Float), Float)


def _day_number(dialect: str, ts: Any) -> ColumnElement[int]:
    """Whole UTC days since the epoch: the portable day bucket."""
    return cast(func.floor(_days(dialect, ts)), Integer)


def _hour(dialect: str, ts: Any) -> ColumnElement[int]:
    """UTC hour of day, 0-23."""
    if dialect == "sqlite":
        return cast(func.strftime("%H", ts), Integer)
    return cast(func.extract("hour", func.timezone("UTC", ts)), Integer)


def _weekday(dialect: str, ts: Any) -> ColumnElement[int]:
    """UTC weekday with 0 = Sunday (the convention both backends share)."""
    if dialect == "sqlite":
        return cast(func.strftime("%w", ts), Integer)
    return cast(func.extract("dow", func.timezone("UTC", ts)), Integer)


def to_epoch_days(moment: datetime) -> float:
    """The same day count `_days` computes in SQL, for a Python datetime."""
    return moment.timestamp() / 86400.0


def _community(column: ColumnElement[Any], exclude_users: Sequence[int]) -> ColumnElement[bool]:
    """Rows of community users: a user id is set and is not a staff account in `exclude_users`.

    Managers (`RAPPORT_ADMIN_IDS`) talk to the bot too; counted as users they would land in a
    segment ("Newcomers"), feed rules and inflate DAU. Every query here takes `exclude_users`.
    """
    condition: ColumnElement[bool] = column.is_not(None)
    if exclude_users:
        condition = and_(condition, column.not_in([int(u) for u in exclude_users]))
    return condition


def staff_with_events(session: Session, staff: Sequence[int], *, until: datetime) -> int:
    """How many of the `staff` accounts have events before `until`: what exclusion left out."""
    if not staff:
        return 0
    e = Event.__table__
    query = select(func.count(distinct(e.c.user_id))).where(
        e.c.user_id.in_([int(u) for u in staff]), e.c.ts < until
    )
    return int(session.execute(query).scalar() or 0)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def message_intents(
    session: Session, *, until: datetime | None = None, exclude_users: Sequence[int] = ()
) -> list[tuple[str, int]]:
    """Every intent of a message before `until` with its count, most used first."""
    e = Event.__table__
    query = (
        select(e.c.intent, func.count().label("n"))
        .where(e.c.kind.in_(MESSAGE_KINDS), e.c.intent.is_not(None))
        .group_by(e.c.intent)
        .order_by(func.count().desc(), e.c.intent)
    )
    if exclude_users:
        query = query.where(_community(e.c.user_id, exclude_users))
    if until is not None:
        query = query.where(e.c.ts < until)
    return [(str(intent), int(n)) for intent, n in session.execute(query)]


def _json_number(dialect: str, column: Any, *path: str) -> ColumnElement[float]:
    """A JSON member as a float where it is a JSON number, else NULL (never a cast error).

    A product event's `properties.revenue` comes from the start-up's own code: a string there
    ("12.50 EUR") must leave that event's revenue unknown, not fail the run on PostgreSQL.
    """
    if dialect == "sqlite":
        json_path = "$." + ".".join(path)
        kind = func.json_type(column, json_path)
        return case((kind.in_(("integer", "real")), cast(func.json_extract(column, json_path), Float)))
    parent = column
    for part in path[:-1]:
        parent = parent.op("->")(part)
    leaf = parent.op("->")(path[-1])
    text = parent.op("->>")(path[-1])
    return case((func.json_typeof(leaf) == "number", cast(text, Float)))


def product_event_names(
    session: Session, *, until: datetime | None = None, exclude_users: Sequence[int] = ()
) -> list[tuple[str, int]]:
    """Every product event name (`attributes.event`) before `until` with its count, most used first."""
    e = Event.__table__
    name = e.c.attributes["event"].as_string()
    query = (
        select(name.label("name"), func.count().label("n"))
        .where(e.c.kind == EventKind.PRODUCT, name.is_not(None), _community(e.c.user_id, exclude_users))
        .group_by(name)
        .order_by(func.count().desc(), name)
    )
    if until is not None:
        query = query.where(e.c.ts < until)
    return [(str(n), int(c)) for n, c in session.execute(query)]


def linked_traits(session: Session, *, exclude_users: Sequence[int] = ()) -> Table:
    """Every trait of a linked account under its Telegram user: (user_id, name, type, value...).

    Traits of accounts without a link belong to nobody the analytics can see yet, so they stay out.
    """
    t = Trait.__table__
    link = AccountLink.__table__
    query = (
        select(link.c.user_id, t.c.name, t.c.value_type, t.c.number, t.c.category, t.c.date)
        .join_from(t, link, link.c.account_id == t.c.account_id)
        .where(_community(link.c.user_id, exclude_users))
        .order_by(link.c.user_id, t.c.name)
    )
    rows = [tuple(row) for row in session.execute(query)]
    return Table(columns=("user_id", "name", "value_type", "number", "category", "date"), rows=rows)


def user_feature_table(
    session: Session,
    *,
    as_of: datetime,
    window_start: datetime,
    intents: Sequence[str],
    recent_start: datetime | None = None,
    exclude_users: Sequence[int] = (),
) -> Table:
    """One row of raw per-user aggregates, grouped in SQL over the events before `as_of`.

    Column `intent_<i>` counts the messages with `intents[i]`: the share features and the
    intent part of each user's basket come from this one scan. `active_days` counts the
    distinct UTC days with an event since `window_start`, `recent_active_days` those since
    `recent_start` (default: `window_start`), the two halves of the activity trend.

    Product events are left out (`user_product_table` counts them).

    Counts, not ratios, come back; the analytics package turns them into rates, so that
    the division rules (empty denominators) live in one place. Day-based columns are
    fractional days since the epoch.
    """
    dialect = session.get_bind().dialect.name
    e = Event.__table__
    kind = e.c.kind
    is_message = kind.in_(MESSAGE_KINDS)
    days = _days(dialect, e.c.ts)
    hour = _hour(dialect, e.c.ts)
    rating = e.c.attributes["rating"].as_float()
    reply = e.c.attributes["reply"].as_boolean()
    columns: list[ColumnElement[Any]] = [
        e.c.user_id.label("user_id"),
        func.min(days).label("first_day"),
        func.max(days).label("last_day"),
        func.count().label("events"),
        func.count(distinct(case((e.c.ts >= window_start, _day_number(dialect, e.c.ts))))).label(
            "active_days"
        ),
        func.count(
            distinct(case((e.c.ts >= (recent_start or window_start), _day_number(dialect, e.c.ts))))
        ).label("recent_active_days"),
        _count_if(is_message).label("messages"),
        _count_if(and_(kind == EventKind.MESSAGE, e.c.intent.not_in(NON_QUESTION_INTENTS))).label(
            "questions"
        ),
        _count_if(kind == EventKind.FALLBACK).label("unanswered"),
        func.avg(case((kind == EventKind.FEEDBACK, rating))).label("mean_rating"),
        _count_if(kind == EventKind.FEEDBACK).label("feedbacks"),
        _count_if(kind == EventKind.REACTION).label("reactions"),
        _count_if(kind == EventKind.POLL_ANSWER).label("poll_answers"),
        _count_if(and_(kind == EventKind.MESSAGE, reply == true())).label("replies"),
        _count_if(and_(is_message, e.c.chat_id < 0)).label("group_messages"),
        _count_if(kind == EventKind.PUSH_RECEIVED).label("pushes"),
        _count_if(kind == EventKind.PUSH_RESPONSE).label("push_responses"),
    ]
    for index, intent in enumerate(intents):
        columns.append(_count_if(and_(is_message, e.c.intent == intent)).label(f"intent_{index}"))
    for name, start, stop in DAYPARTS:
        columns.append(_count_if(and_(hour >= start, hour < stop)).label(f"hours_{name}"))
    query = (
        select(*columns)
        .where(_community(e.c.user_id, exclude_users), e.c.ts < as_of, kind != EventKind.PRODUCT)
        .group_by(e.c.user_id)
        .order_by(e.c.user_id)
    )
    result = session.execute(query)
    names = tuple(result.keys())
    rows = [tuple(row) for row in result]
    logger.info("aggregated features of %d users in SQL", len(rows))
    return Table(columns=names, rows=rows)


def user_product_table(
    session: Session, *, as_of: datetime, products: Sequence[str], exclude_users: Sequence[int] = ()
) -> Table:
    """Per user with product events before `as_of`: `product_<i>` counts of `products[i]` and `revenue`.

    `revenue` sums the numeric `properties.revenue` of their product events (Segment's
    e-commerce spec), null when none has one. Apart from `user_feature_table`, whose
    behaviour columns (recency, active days, day parts) are the user's Telegram life: a
    product used daily must not make a user silent in the bot look active.
    """
    dialect = session.get_bind().dialect.name
    e = Event.__table__
    name = e.c.attributes["event"].as_string()
    columns: list[ColumnElement[Any]] = [e.c.user_id.label("user_id")]
    for index, product in enumerate(products):
        columns.append(_count_if(name == product).label(f"product_{index}"))
    columns.append(func.sum(_json_number(dialect, e.c.attributes, "properties", "revenue")).label("revenue"))
    query = (
        select(*columns)
        .where(_community(e.c.user_id, exclude_users), e.c.ts < as_of, e.c.kind == EventKind.PRODUCT)
        .group_by(e.c.user_id)
        .order_by(e.c.user_id)
    )
    result = session.execute(query)
    return Table(columns=tuple(result.keys()), rows=[tuple(row) for row in result])


def sent_deliveries(
    session: Session, *, as_of: datetime, exclude_users: Sequence[int] = ()
) -> dict[int, int]:
    """Pushes actually sent per user: the push-rate denominator when no push events were logged."""
    d = Delivery.__table__
    c = Campaign.__table__
    query = (
        select(d.c.user_id, func.count())
        .join(c, c.c.id == d.c.campaign_id)
        .where(
            d.c.status == DeliveryStatus.SENT,
            d.c.sent_at < as_of,
            c.c.kind != CampaignKind.TEST,  # a manager's test to themselves is no push
            _community(d.c.user_id, exclude_users),
        )
        .group_by(d.c.user_id)
    )
    return {int(user): int(n) for user, n in session.execute(query)}


def active_users_by(
    session: Session,
    *,
    period_days: int,
    since: datetime,
    until: datetime,
    exclude_users: Sequence[int] = (),
) -> Table:
    """Distinct active users per bucket of `period_days` days (1: DAU, 7: WAU, 28/30: MAU)."""
    dialect = session.get_bind().dialect.name
    e = Event.__table__
    bucket = (_day_number(dialect, e.c.ts) // period_days).label("bucket")
    query = (
        select(bucket, func.count(distinct(e.c.user_id)))
        .where(_community(e.c.user_id, exclude_users), e.c.ts >= since, e.c.ts < until)
        .group_by(bucket)
        .order_by(bucket)
    )
    rows = [(int(b) * period_days, int(n)) for b, n in session.execute(query)]
    return Table(columns=("day", "users"), rows=rows)


def distinct_users_between(
    session: Session, *, since: datetime, until: datetime, exclude_users: Sequence[int] = ()
) -> int:
    """How many users had any event in [since, until)."""
    e = Event.__table__
    query = select(func.count(distinct(e.c.user_id))).where(
        _community(e.c.user_id, exclude_users), e.c.ts >= since, e.c.ts < until
    )
    return int(session.execute(query).scalar() or 0)


@dataclass(frozen=True)
class PeriodCounts:
    """New users, messages, unanswered messages and the top intents of one period."""

    messages: int
    unanswered: int
    new_users: int
    top_intents: tuple[tuple[str, int], ...]


def period_counts(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    top: int = 5,
    exclude_users: Sequence[int] = (),
) -> PeriodCounts:
    """New users, messages, unanswered messages and top intents in [since, until).

    Events without a user (channel posts) still count as messages; staff events do not.
    """
    e = Event.__table__
    u = User.__table__
    window = and_(e.c.ts >= since, e.c.ts < until)
    if exclude_users:
        window = and_(window, or_(e.c.user_id.is_(None), _community(e.c.user_id, exclude_users)))
    messages, unanswered = session.execute(
        select(_count_if(e.c.kind.in_(MESSAGE_KINDS)), _count_if(e.c.kind == EventKind.FALLBACK)).where(
            window
        )
    ).one()
    new_users = session.execute(
        select(func.count()).where(
            u.c.first_seen >= since, u.c.first_seen < until, _community(u.c.id, exclude_users)
        )
    ).scalar()
    intents = session.execute(
        select(e.c.intent, func.count())
        .where(window, e.c.kind == EventKind.MESSAGE, e.c.intent.is_not(None))
        .group_by(e.c.intent)
        .order_by(func.count().desc(), e.c.intent)
        .limit(top)
    ).all()
    return PeriodCounts(
        messages=int(messages or 0),
        unanswered=int(unanswered or 0),
        new_users=int(new_users or 0),
        top_intents=tuple((str(i), int(n)) for i, n in intents),
    )


def retention_cohorts(session: Session, *, until: datetime, exclude_users: Sequence[int] = ()) -> Table:
    """Users per (first-activity week, weeks since) pair: the weekly retention triangle."""
    dialect = session.get_bind().dialect.name
    e = Event.__table__
    week = _day_number(dialect, e.c.ts) // 7
    active = (
        select(e.c.user_id.label("user_id"), week.label("week"))
        .where(_community(e.c.user_id, exclude_users), e.c.ts < until)
        .distinct()
        .subquery()
    )
    first = (
        select(active.c.user_id, func.min(active.c.week).label("cohort"))
        .group_by(active.c.user_id)
        .subquery()
    )
    offset = (active.c.week - first.c.cohort).label("offset")
    query = (
        select(first.c.cohort, offset, func.count())
        .join_from(active, first, active.c.user_id == first.c.user_id)
        .group_by(first.c.cohort, offset)
        .order_by(first.c.cohort, offset)
    )
    rows = [(int(c), int(o), int(n)) for c, o, n in session.execute(query)]
    return Table(columns=("cohort_week", "week_offset", "users"), rows=rows)


def activity_heatmap(
    session: Session, *, since: datetime, until: datetime, exclude_users: Sequence[int] = ()
) -> Table:
    """Events per (weekday, hour), UTC, weekday 0 = Sunday."""
    dialect = session.get_bind().dialect.name
    e = Event.__table__
    weekday = _weekday(dialect, e.c.ts).label("weekday")
    hour = _hour(dialect, e.c.ts).label("hour")
    query = (
        select(weekday, hour, func.count())
        .where(_community(e.c.user_id, exclude_users), e.c.ts >= since, e.c.ts < until)
        .group_by(weekday, hour)
    )
    rows = [(int(w), int(h), int(n)) for w, h, n in session.execute(query)]
    return Table(columns=("weekday", "hour", "events"), rows=rows)


def unanswered_texts(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    limit: int = 20,
    exclude_users: Sequence[int] = (),
) -> Table:
    """Unanswered message texts grouped case-insensitively, most frequent first."""
    e = Event.__table__
    normalised = func.lower(func.trim(e.c.text)).label("text")
    unanswered = or_(e.c.kind == EventKind.FALLBACK, e.c.intent.in_(FALLBACK_INTENTS))
    query = (
        select(normalised, func.count().label("n"), func.count(distinct(e.c.user_id)))
        .where(unanswered, e.c.text.is_not(None), e.c.ts >= since, e.c.ts < until)
        .group_by(normalised)
        .order_by(func.count().desc(), normalised)
        .limit(limit)
    )
    if exclude_users:
        query = query.where(or_(e.c.user_id.is_(None), _community(e.c.user_id, exclude_users)))
    rows = [(str(t), int(n), int(u)) for t, n, u in session.execute(query)]
    return Table(columns=("text", "count", "users"), rows=rows)


def intents_by_segment(session: Session, *, run_id: int, as_of: datetime, limit: int = 5) -> Table:
    """Message counts per (segment, intent) of one run, the top `limit` per segment."""
    e = Event.__table__
    m = SegmentMembership.__table__
    query = (
        select(m.c.segment_id, e.c.intent, func.count().label("n"))
        .join_from(e, m, and_(m.c.user_id == e.c.user_id, m.c.run_id == run_id))
        .where(e.c.kind == EventKind.MESSAGE, e.c.intent.is_not(None), e.c.ts < as_of)
        .group_by(m.c.segment_id, e.c.intent)
        .order_by(m.c.segment_id, func.count().desc(), e.c.intent)
    )
    kept: list[tuple[Any, ...]] = []
    per_segment: dict[int, int] = {}
    for segment_id, intent, n in session.execute(query):
        if per_segment.get(segment_id, 0) < limit:
            per_segment[segment_id] = per_segment.get(segment_id, 0) + 1
            kept.append((int(segment_id), str(intent), int(n)))
    return Table(columns=("segment_id", "intent", "messages"), rows=kept)
