"""Follow-up messages in the database: catalogue sync, response statistics, per-user history.

Every function runs in the caller's session, so the re-engagement planner reads them all in one
snapshot and writes the catalogue in the same transaction as its campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, case, func, select, update
from sqlalchemy.orm import Session

from store.events import SEQUENCE_ORDER_DESC
from store.models import Delivery, Event, FollowupMessage
from store.vocabulary import DeliveryStatus, EventKind


@dataclass(frozen=True)
class FollowupRow:
    """A catalogue message as the store keeps it (the scheduler converts from the catalogue)."""

    id: str
    text_en: str
    text_zh: str
    targets: tuple[str, ...]
    segments: tuple[str, ...]
    cooldown_days: int
    is_default: bool


@dataclass(frozen=True)
class SendCounts:
    """How often one follow-up message was sent (and measured), and how often users returned after it."""

    sent: int
    responded: int


def sync_followups(session: Session, rows: Sequence[FollowupRow], *, now: datetime) -> int:
    """Make `followup_messages` match the catalogue: upsert its messages, deactivate the rest.

    Deactivated rather than deleted, so deliveries and statistics keep their message ids.
    Runs in the caller's transaction; returns how many messages are active.
    """
    ids = [row.id for row in rows]
    stored = {
        message.id: message
        for message in session.scalars(select(FollowupMessage).where(FollowupMessage.id.in_(ids)))
    }
    for row in rows:
        message = stored.get(row.id)
        if message is None:
            message = FollowupMessage(id=row.id)
            session.add(message)
        message.text_en, message.text_zh = row.text_en, row.text_zh
        message.targets, message.segments = list(row.targets), list(row.segments)
        message.cooldown_days, message.is_default = row.cooldown_days, row.is_default
        message.active, message.updated_at = True, now
    session.execute(
        update(FollowupMessage)
        .where(FollowupMessage.id.not_in(ids), FollowupMessage.active.is_(True))
        .values(active=False, updated_at=now)
    )
    return len(rows)


def active_followup_ids(session: Session) -> list[str]:
    """Ids of the active follow-up messages."""
    return list(session.scalars(select(FollowupMessage.id).where(FollowupMessage.active.is_(True))))


def response_stats(session: Session) -> dict[str, SendCounts]:
    """Per follow-up message: measured sends, and how many of those users returned within the window."""
    rows = session.execute(
        select(
            Delivery.followup_id,
            func.count(),
            func.sum(case((Delivery.responded.is_(True), 1), else_=0)),
        )
        .where(
            Delivery.status == DeliveryStatus.SENT,
            Delivery.followup_id.is_not(None),
            Delivery.responded.is_not(None),
        )
        .group_by(Delivery.followup_id)
    )
    return {str(fid): SendCounts(int(n), int(r or 0)) for fid, n, r in rows}


def last_sends(session: Session, users: Select[int]) -> dict[int, dict[str, datetime]]:
    """For each user of the `users` subquery, when each follow-up was last sent to them (cooldowns)."""
    rows = session.execute(
        select(Delivery.user_id, Delivery.followup_id, func.max(Delivery.sent_at))
        .where(
            Delivery.user_id.in_(users),
            Delivery.status == DeliveryStatus.SENT,
            Delivery.followup_id.is_not(None),
        )
        .group_by(Delivery.user_id, Delivery.followup_id)
    )
    found: dict[int, dict[str, datetime]] = {}
    for user_id, followup_id, sent_at in rows:
        if sent_at is not None:
            found.setdefault(int(user_id), {})[str(followup_id)] = sent_at
    return found


def recent_events(
    session: Session, users: Select[int], *, since: datetime, limit: int = 50
) -> dict[int, list[tuple[str, str | None, str | None]]]:
    """The latest `limit` events since `since` of each user of `users`, oldest first.

    Each is (kind, intent, product event name): the name (`attributes.event`) only for product
    events, so their token can be `product:<name>`.

    One statement for every user: a window function numbers each user's events from the newest,
    so only the last `limit` of each leave the database.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    newest_first = (
        func.row_number().over(partition_by=Event.user_id, order_by=SEQUENCE_ORDER_DESC).label("position")
    )
    numbered = (
        select(
            Event.id,
            Event.user_id,
            Event.ts,
            Event.update_id,
            Event.kind,
            Event.intent,
            case((Event.kind == EventKind.PRODUCT, Event.attributes["event"].as_string())).label("product"),
            newest_first,
        )
        .where(Event.user_id.in_(users), Event.ts >= since)
        .subquery()
    )
    rows = session.execute(
        select(numbered.c.user_id, numbered.c.kind, numbered.c.intent, numbered.c.product)
        .where(numbered.c.position <= limit)
        .order_by(numbered.c.user_id, numbered.c.ts, numbered.c.update_id.asc().nulls_first(), numbered.c.id)
    )
    found: dict[int, list[tuple[str, str | None, str | None]]] = {}
    for user_id, kind, intent, product in rows:
        found.setdefault(int(user_id), []).append((str(kind), intent, product))
    return found
