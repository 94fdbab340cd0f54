"""Activity by local hour of the week, for send-time optimisation, aggregated in SQL.

The database counts events per user (or per time zone and segment) and quarter-hour of UTC time;
Python then maps each bucket to the local hour of the week in the user's zone. Doing the zone
arithmetic here rather than in SQL keeps one query for SQLite (no time zones at all) and
PostgreSQL (whose `AT TIME ZONE` fails on a zone name it does not know), still handles DST
exactly (each bucket is converted at its own instant), and quarter-hours keep half-hour and
45-minute zones exact. The rows that cross the wire are at most one per user and active
quarter-hour, never one per event, and they are streamed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, select
from sqlalchemy.orm import Session

from store.campaign_reports import PUSH_KINDS, first_returns
from store.models import AnalyticsRun, Delivery, Event, Segment, SegmentMembership, User
from store.vocabulary import DeliveryStatus

__all__ = [
    "HOURS_PER_WEEK",
    "GroupActivity",
    "VariantOutcome",
    "group_hour_counts",
    "user_hour_counts",
    "variant_outcomes",
]

logger = logging.getLogger(__name__)

HOURS_PER_WEEK = 168
BUCKET_S = 900
"""Quarter-hours: every real zone's offset is a whole number of them."""
_STREAM_ROWS = 5000


def _bucket(dialect: str, seconds: int) -> ColumnElement[Any]:
    """The event's UTC time as a whole number of `seconds`-long buckets since the epoch."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", Event.ts) / seconds), BigInteger)
    # SQLite keeps naive UTC text; strftime('%s') reads it as UTC.
    return cast(func.strftime("%s", Event.ts), BigInteger) // seconds


def _resolver(default_timezone: str) -> Callable[[str | None], ZoneInfo]:
    fallback = ZoneInfo(default_timezone)

    @lru_cache(maxsize=1024)
    def resolve(name: str | None) -> ZoneInfo:
        if not name:
            return fallback
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("unknown time zone %r: counting activity in %s", name, default_timezone)
            return fallback

    return resolve


def _hour_mapper(default_timezone: str, seconds: int) -> Callable[[str | None, int], int]:
    """(zone name, bucket) → local hour of the week (0 = Monday 00:00), cached per pair."""
    resolve = _resolver(default_timezone)

    @lru_cache(maxsize=65536)
    def hour(name: str | None, bucket: int) -> int:
        local = datetime.fromtimestamp(bucket * seconds, UTC).astimezone(resolve(name))
        return local.weekday() * 24 + local.hour

    return hour


def _own_events(since: datetime) -> tuple[ColumnElement[bool], ...]:
    return (Event.user_id.is_not(None), Event.kind.not_in(PUSH_KINDS), Event.ts >= since)


def user_hour_counts(
    session: Session,
    users: Select[Any] | Sequence[int] | None,
    *,
    since: datetime,
    default_timezone: str = "UTC",
) -> dict[int, list[int]]:
    """Each user's own events since `since` by local hour of the week (168 counts) in their zone.

    Push receipts and the push-response markers do not count: they are Rapport's doing, not the
    user's rhythm. Users without events in the window are absent.

    Args:
        users: A subquery of user ids to restrict to, or the ids (None: everyone).
        default_timezone: The zone of users whose zone is unknown or invalid.
    """
    bucket = _bucket(session.get_bind().dialect.name, BUCKET_S).label("bucket")
    query = (
        select(Event.user_id, User.time_zone, bucket, func.count())
        .join(User, User.id == Event.user_id)
        .where(*_own_events(since))
        .group_by(Event.user_id, User.time_zone, bucket)
    )
    if users is not None:
        query = query.where(Event.user_id.in_(users))
    hour = _hour_mapper(default_timezone, BUCKET_S)
    counts: dict[int, list[int]] = {}
    for user_id, zone_name, slot, n in session.execute(query).yield_per(_STREAM_ROWS):
        row = counts.setdefault(int(user_id or 0), [0] * HOURS_PER_WEEK)
        row[hour(zone_name, int(slot))] += int(n)
    return counts


@dataclass(frozen=True)
class GroupActivity:
    """The community's and each current segment's events by local hour of the week."""

    community: list[int]
    by_segment: dict[str, list[int]]


def group_hour_counts(session: Session, *, since: datetime, default_timezone: str = "UTC") -> GroupActivity:
    """Everyone's own events since `since` by local hour of the week, in total and per current segment.

    Aggregated in SQL by (segment, zone, UTC hour): the rows grow with zones and segments, not
    with users or events. Hours (not quarter-hours) are fine for a prior over many users.
    """
    m = SegmentMembership.__table__
    current = (
        select(AnalyticsRun.id)
        .where(AnalyticsRun.is_current)
        .order_by(AnalyticsRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    bucket = _bucket(session.get_bind().dialect.name, 3600).label("bucket")
    query = (
        select(Segment.name, User.time_zone, bucket, func.count())
        .select_from(Event)
        .join(User, User.id == Event.user_id)
        .outerjoin(m, (m.c.user_id == Event.user_id) & (m.c.run_id == current))
        .outerjoin(Segment, Segment.id == m.c.segment_id)
        .where(*_own_events(since))
        .group_by(Segment.name, User.time_zone, bucket)
    )
    hour = _hour_mapper(default_timezone, 3600)
    community = [0] * HOURS_PER_WEEK
    by_segment: dict[str, list[int]] = {}
    for name, zone_name, slot, n in session.execute(query).yield_per(_STREAM_ROWS):
        index = hour(zone_name, int(slot))
        community[index] += int(n)
        if name is not None:
            by_segment.setdefault(str(name), [0] * HOURS_PER_WEEK)[index] += int(n)
    return GroupActivity(community, by_segment)


@dataclass(frozen=True)
class VariantOutcome:
    """One arm of a campaign: sends whose window has closed, how many converted, how many still open."""

    variant: str
    sends: int
    conversions: int
    open: int


def variant_outcomes(
    session: Session, campaign_id: int, *, now: datetime, window: timedelta
) -> dict[str, VariantOutcome]:
    """Per `deliveries.variant` of a campaign: sent rows, conversions (any own event within `window`).

    Only sends whose window has closed are measured, so an arm that sends later (best time
    against a fixed time) is not counted before its users had the same time to answer; the
    others are counted as `open`.
    """
    rows = [
        (int(key), int(user), sent, str(variant))
        for key, user, sent, variant in session.execute(
            select(Delivery.id, Delivery.user_id, Delivery.sent_at, Delivery.variant).where(
                Delivery.campaign_id == campaign_id,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.variant.is_not(None),
            )
        )
        if sent is not None
    ]
    closed = [(key, user, sent) for key, user, sent, _ in rows if sent + window <= now]
    hits = first_returns(session, closed, window)
    tallies: dict[str, list[int]] = {}
    for key, _, sent, variant in rows:
        tally = tallies.setdefault(variant, [0, 0, 0])
        if sent + window > now:
            tally[2] += 1
            continue
        tally[0] += 1
        tally[1] += hits.get(key) is not None
    return {name: VariantOutcome(name, s, c, o) for name, (s, c, o) in sorted(tallies.items())}
