"""Reads the dashboard's pages need that no other module offers; each one is an indexed lookup.

Campaign progress is grouped per campaign in one statement, users are found by id or username
prefix (indexed), a segment's members are paged through the (segment, user) index, and a user's
timeline reads the (user, ts) index newest first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, case, func, or_, select

from store.events import SEQUENCE_ORDER_DESC
from store.models import (
    AnalyticsRun,
    Campaign,
    Delivery,
    Event,
    FollowupMessage,
    Segment,
    SegmentMembership,
    User,
)
from store.vocabulary import CampaignKind, DeliveryStatus

MAX_PAGE = 200


@dataclass(frozen=True)
class ReachCounts:
    """How many users are stored, blocked the bot, opted out of pushes."""

    users: int
    blocked: int
    opted_out: int
    both: int = 0  # blocked and opted out

    @property
    def reachable(self) -> int:
        """Neither blocked nor opted out."""
        return self.users - self.blocked - self.opted_out + self.both


@dataclass(frozen=True)
class MemberRow:
    """A user as a list row."""

    user_id: int
    username: str | None
    first_name: str | None
    language: str | None
    last_seen: datetime
    opted_out: bool
    blocked: bool


@dataclass(frozen=True)
class TimelineEvent:
    """One event of a user's timeline."""

    ts: datetime
    kind: str
    intent: str | None
    confidence: float | None
    chat_id: int | None
    text: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True)
class UserDelivery:
    """A message a campaign planned or sent to a user, and why it was chosen."""

    campaign_id: int
    campaign_name: str
    campaign_kind: str
    status: str
    reason: str | None
    followup_id: str | None
    choice_reason: str | None
    score: float | None
    due_at: datetime
    sent_at: datetime | None
    responded: bool | None


@dataclass(frozen=True)
class SegmentHistoryRow:
    """Which segment a user was in at one analytics run."""

    run_id: int
    run_at: datetime
    segment_id: int
    segment_name: str
    is_current: bool


def reach_counts(engine: Engine) -> ReachCounts:
    """Users, blocked, opted out (one scan of the users table)."""
    u = User.__table__
    query = select(
        func.count(),
        func.sum(case((u.c.blocked, 1), else_=0)),
        func.sum(case((u.c.opted_out, 1), else_=0)),
        func.sum(case((and_(u.c.blocked, u.c.opted_out), 1), else_=0)),
    )
    with engine.connect() as connection:
        users, blocked, opted_out, both = connection.execute(query).one()
    return ReachCounts(int(users or 0), int(blocked or 0), int(opted_out or 0), int(both or 0))


def delivery_status_counts(engine: Engine, campaign_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """Deliveries per status for each campaign, in one grouped statement."""
    if not campaign_ids:
        return {}
    d = Delivery.__table__
    query = (
        select(d.c.campaign_id, d.c.status, func.count())
        .where(d.c.campaign_id.in_(list(campaign_ids)))
        .group_by(d.c.campaign_id, d.c.status)
    )
    found: dict[int, dict[str, int]] = {int(i): {} for i in campaign_ids}
    with engine.connect() as connection:
        for campaign_id, status, n in connection.execute(query):
            found[int(campaign_id)][str(status)] = int(n)
    return found


def last_goal_reference(engine: Engine, campaign_id: int) -> datetime | None:
    """The latest moment a campaign's goal window starts from, as far as it is known now.

    The goal counts from a sent row's send and a holdout row's due time
    (`store.conversions.goal_conversions`); a row still to send starts its window at its due
    time at the earliest. So the last window closes at this plus the goal's window (later still
    if a pending row goes out late); None when the campaign has no rows.
    """
    d = Delivery.__table__
    sent = and_(d.c.status == DeliveryStatus.SENT, d.c.sent_at.is_not(None))
    waiting = or_(
        d.c.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        and_(d.c.status == DeliveryStatus.SKIPPED, d.c.reason == "holdout"),
    )
    query = select(func.max(d.c.sent_at).filter(sent), func.max(d.c.due_at).filter(waiting)).where(
        d.c.campaign_id == campaign_id
    )
    with engine.connect() as connection:
        last_sent, last_due = connection.execute(query).one()
    found = [t for t in (last_sent, last_due) if t is not None]
    return max(found) if found else None


def count_campaigns(engine: Engine) -> int:
    """How many campaigns exist (a manager's test sends are not campaigns to users)."""
    query = select(func.count()).select_from(Campaign).where(Campaign.kind != CampaignKind.TEST)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def _member(row: Any) -> MemberRow:
    return MemberRow(
        user_id=int(row.id),
        username=row.username,
        first_name=row.first_name,
        language=row.language,
        last_seen=row.last_seen,
        opted_out=bool(row.opted_out),
        blocked=bool(row.blocked),
    )


def _username_match(query: str) -> Any:
    u = User.__table__
    wanted = query.strip().lstrip("@")
    escaped = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return u.c.username.like(f"{escaped}%", escape="\\")


def find_users(engine: Engine, query: str, *, limit: int = 20) -> list[MemberRow]:
    """Users whose id is `query` or whose username starts with it (`@` optional)."""
    u = User.__table__
    text = query.strip()
    if not text:
        return []
    condition = _username_match(text)
    if text.lstrip("-").isdigit():
        condition = or_(u.c.id == int(text), condition)
    statement = select(u).where(condition).order_by(u.c.id).limit(min(limit, MAX_PAGE))
    with engine.connect() as connection:
        return [_member(row) for row in connection.execute(statement)]


def segment_members_page(
    engine: Engine, segment_id: int, *, search: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[MemberRow], int]:
    """One page of a segment's members (by user id), optionally filtered by id or username; and the total."""
    u = User.__table__
    m = SegmentMembership.__table__
    base = select(u).join(m, m.c.user_id == u.c.id).where(m.c.segment_id == segment_id)
    text = search.strip()
    if text:
        condition = _username_match(text)
        if text.isdigit():
            condition = or_(u.c.id == int(text), condition)
        base = base.where(condition)
    total_query = select(func.count()).select_from(base.subquery())
    page = base.order_by(m.c.user_id).offset(max(0, offset)).limit(min(max(1, limit), MAX_PAGE))
    with engine.connect() as connection:
        total = int(connection.execute(total_query).scalar() or 0)
        return [_member(row) for row in connection.execute(page)], total


def user_timeline(engine: Engine, user_id: int, *, limit: int = 100) -> list[TimelineEvent]:
    """The user's latest events, newest first."""
    e = Event.__table__
    query = (
        select(e.c.ts, e.c.kind, e.c.intent, e.c.confidence, e.c.chat_id, e.c.text, e.c.attributes)
        .where(e.c.user_id == user_id)
        .order_by(*SEQUENCE_ORDER_DESC)
        .limit(min(limit, 1000))
    )
    with engine.connect() as connection:
        return [
            TimelineEvent(ts, kind, intent, confidence, chat, text, dict(attributes or {}))
            for ts, kind, intent, confidence, chat, text, attributes in connection.execute(query)
        ]


def user_deliveries(engine: Engine, user_id: int, *, limit: int = 50) -> list[UserDelivery]:
    """Messages campaigns planned or sent to the user, newest first, with the reason each was chosen."""
    d = Delivery.__table__
    c = Campaign.__table__
    query = (
        select(
            d.c.campaign_id,
            c.c.name,
            c.c.kind,
            d.c.status,
            d.c.reason,
            d.c.followup_id,
            d.c.choice_reason,
            d.c.score,
            d.c.due_at,
            d.c.sent_at,
            d.c.responded,
        )
        .join(c, c.c.id == d.c.campaign_id)
        .where(d.c.user_id == user_id)
        .order_by(d.c.due_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [UserDelivery(*row) for row in connection.execute(query)]


def user_segment_history(engine: Engine, user_id: int, *, limit: int = 10) -> list[SegmentHistoryRow]:
    """The user's segment in each of the latest analytics runs, newest first."""
    m = SegmentMembership.__table__
    s = Segment.__table__
    r = AnalyticsRun.__table__
    query = (
        select(r.c.id, r.c.created_at, s.c.id, s.c.name, r.c.is_current)
        .join_from(m, s, s.c.id == m.c.segment_id)
        .join(r, r.c.id == m.c.run_id)
        .where(m.c.user_id == user_id)
        .order_by(r.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            SegmentHistoryRow(int(run), at, int(seg), str(name), bool(current))
            for run, at, seg, name, current in connection.execute(query)
        ]


def users_by_ids(engine: Engine, user_ids: Collection[int]) -> dict[int, MemberRow]:
    """The stored users among `user_ids` (at most one page of them)."""
    u = User.__table__
    wanted = list(user_ids)[:MAX_PAGE]
    if not wanted:
        return {}
    with engine.connect() as connection:
        return {row.id: _member(row) for row in connection.execute(select(u).where(u.c.id.in_(wanted)))}


@dataclass(frozen=True)
class CatalogueRow:
    """A follow-up message of the catalogue."""

    id: str
    text_en: str
    text_zh: str
    targets: list[Any]
    segments: list[Any]
    cooldown_days: int
    active: bool


def followup_catalogue(engine: Engine) -> list[CatalogueRow]:
    """Every follow-up message, active first, by id."""
    f = FollowupMessage.__table__
    query = select(f).order_by(f.c.active.desc(), f.c.id)
    with engine.connect() as connection:
        return [
            CatalogueRow(
                row.id,
                row.text_en,
                row.text_zh,
                list(row.targets or []),
                list(row.segments or []),
                int(row.cooldown_days),
                bool(row.active),
            )
            for row in connection.execute(query)
        ]


def followup_sends(engine: Engine) -> dict[str, int]:
    """Messages sent per follow-up id (measured or not yet)."""
    d = Delivery.__table__
    query = (
        select(d.c.followup_id, func.count())
        .where(d.c.status == "sent", d.c.followup_id.is_not(None))
        .group_by(d.c.followup_id)
    )
    with engine.connect() as connection:
        return {str(fid): int(n) for fid, n in connection.execute(query)}
