"""Users: upsert on every update, opt-out, blocked, and forgetting everything about one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select, update

from store.db import unit_of_work
from store.models import Delivery, Event, SegmentMembership, User, utcnow
from store.product import forget_product_data
from store.records import ForgetReport, UserInfo, UserState


def _state(user: User) -> UserState:
    return UserState(
        id=user.id,
        username=user.username,
        language=user.language,
        time_zone=user.time_zone,
        first_seen=user.first_seen,
        last_seen=user.last_seen,
        opted_out=user.opted_out,
        blocked=user.blocked,
    )


def upsert_user(engine: Engine, info: UserInfo, *, seen_at: datetime | None = None) -> UserState:
    """Create the user or refresh their profile and `last_seen`."""
    now = seen_at or utcnow()
    with unit_of_work(engine) as session:
        user = session.get(User, info.id)
        if user is None:
            user = User(id=info.id, first_seen=now, last_seen=now)
            session.add(user)
        user.username = info.username or user.username
        user.first_name = info.first_name or user.first_name
        user.language = info.language or user.language
        user.time_zone = info.time_zone or user.time_zone
        if user.last_seen is None or now > user.last_seen:
            user.last_seen = now
        # Someone who writes to the bot has evidently not blocked it.
        user.blocked = False
        session.flush()
        return _state(user)


def get_user(engine: Engine, user_id: int) -> UserState | None:
    """The stored user, or None."""
    with unit_of_work(engine) as session:
        user = session.get(User, user_id)
        return _state(user) if user else None


def set_opted_out(engine: Engine, user_id: int, opted_out: bool) -> bool:
    """Switch pushes off (`/stop`) or on (`/start`); False when the user is unknown."""
    with unit_of_work(engine) as session:
        result = session.execute(update(User).where(User.id == user_id).values(opted_out=opted_out))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_blocked(engine: Engine, user_id: int) -> None:
    """The user blocked the bot (Telegram answered 403): never send to them again."""
    with unit_of_work(engine) as session:
        session.execute(update(User).where(User.id == user_id).values(blocked=True))


def count_users(engine: Engine) -> int:
    """How many users are stored."""
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def forget_user(engine: Engine, user_id: int) -> ForgetReport:
    """Delete everything stored about one user, in one transaction."""
    deleted: dict[str, int] = {}
    with unit_of_work(engine) as session:
        deleted.update(forget_product_data(session, user_id))
        for name, statement in (
            ("events", delete(Event).where(Event.user_id == user_id)),
            ("deliveries", delete(Delivery).where(Delivery.user_id == user_id)),
            (
                "segment_memberships",
                delete(SegmentMembership).where(SegmentMembership.user_id == user_id),
            ),
            ("users", delete(User).where(User.id == user_id)),
        ):
            deleted[name] = int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
    return ForgetReport(user_id=user_id, deleted=deleted)
