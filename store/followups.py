"""Follow-up messages in the database: catalogue sync, response statistics, per-user history."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select, update

from store.campaigns import SENT
from store.db import unit_of_work
from store.models import Delivery, Event, FollowupMessage

_CHUNK = 2000


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


def sync_followups(engine: Engine, rows: Sequence[FollowupRow], *, now: datetime) -> int:
    """Make `followup_messages` match the catalogue: upsert its messages, deactivate the rest.

    Deactivated rather than deleted, so deliveries and statistics keep their message ids.
    Returns how many messages are active.
    """
    with unit_of_work(engine) as session:
        for row in rows:
            stored = session.get(FollowupMessage, row.id)
            if stored is None:
                stored = FollowupMessage(id=row.id)
                session.add(stored)
            stored.text_en, stored.text_zh = row.text_en, row.text_zh
            stored.targets, stored.segments = list(row.targets), list(row.segments)
            stored.cooldown_days, stored.is_default = row.cooldown_days, row.is_default
            stored.active, stored.updated_at = True, now
        ids = [row.id for row in rows]
        session.execute(
            update(FollowupMessage)
            .where(FollowupMessage.id.not_in(ids), FollowupMessage.active.is_(True))
            .values(active=False, updated_at=now)
        )
    return len(rows)


def active_followup_ids(engine: Engine) -> list[str]:
    """Ids of the active follow-up messages."""
    with unit_of_work(engine) as session:
        return list(session.scalars(select(FollowupMessage.id).where(FollowupMessage.active.is_(True))))


def response_stats(engine: Engine) -> dict[str, tuple[int, int]]:
    """Per follow-up message: (measured sends, of which the user returned within the window)."""
    with unit_of_work(engine) as session:
        rows = session.execute(
            select(
                Delivery.followup_id,
                func.count(),
                func.sum(case((Delivery.responded.is_(True), 1), else_=0)),
            )
            .where(
                Delivery.status == SENT, Delivery.followup_id.is_not(None), Delivery.responded.is_not(None)
            )
            .group_by(Delivery.followup_id)
        )
        return {str(fid): (int(n), int(r or 0)) for fid, n, r in rows}


def last_sends(engine: Engine, user_ids: Collection[int]) -> dict[int, dict[str, datetime]]:
    """For each user, when each follow-up message was last sent to them (for cooldowns)."""
    found: dict[int, dict[str, datetime]] = {}
    ids = sorted(user_ids)
    with unit_of_work(engine) as session:
        for start in range(0, len(ids), _CHUNK):
            rows = session.execute(
                select(Delivery.user_id, Delivery.followup_id, func.max(Delivery.sent_at))
                .where(
                    Delivery.user_id.in_(ids[start : start + _CHUNK]),
                    Delivery.status == SENT,
                    Delivery.followup_id.is_not(None),
                )
                .group_by(Delivery.user_id, Delivery.followup_id)
            )
            for user_id, followup_id, sent_at in rows:
                if sent_at is not None:
                    found.setdefault(int(user_id or 0), {})[str(followup_id)] = sent_at
    return found


def recent_events(
    engine: Engine, user_ids: Collection[int], *, since: datetime, limit: int = 50
) -> dict[int, list[tuple[str, str | None]]]:
    """Each user's latest `limit` events since `since` as (kind, intent), oldest first."""
    found: dict[int, deque[tuple[str, str | None]]] = {}
    ids = sorted(user_ids)
    with unit_of_work(engine) as session:
        for start in range(0, len(ids), _CHUNK):
            rows = session.execute(
                select(Event.user_id, Event.kind, Event.intent)
                .where(Event.user_id.in_(ids[start : start + _CHUNK]), Event.ts >= since)
                .order_by(Event.user_id, Event.ts, Event.id)
            )
            for user_id, kind, intent in rows:
                found.setdefault(int(user_id or 0), deque(maxlen=limit)).append((kind, intent))
    return {user_id: list(events) for user_id, events in found.items()}
