"""Users: upsert on every update, opt-out, blocked, and forgetting everything about one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Text, and_, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from store.db import unit_of_work
from store.models import Campaign, Chat, Delivery, Event, SegmentMembership, User, utcnow
from store.product import forget_product_data
from store.records import MESSAGE_REFERENCE_ATTRIBUTES, USER_ID_ATTRIBUTES, ForgetReport, UserInfo, UserState
from store.rollups import forget_from_rollups
from store.sanitize import storable_text
from store.vocabulary import EventKind

_USERS: Any = User.__table__
_LENGTHS: dict[str, int] = {
    name: _USERS.c[name].type.length for name in ("username", "first_name", "language", "time_zone")
}
# Kinds whose `message_id` attribute is the id of the user's own message (a reaction's is not).
_OWN_MESSAGE_KINDS = frozenset(
    {EventKind.MESSAGE, EventKind.FALLBACK, EventKind.COMMAND, EventKind.FEEDBACK, EventKind.EDITED}
)


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


def _fit(value: str | None, column: str) -> str | None:
    return storable_text(value, limit=_LENGTHS[column])


def upsert_user(engine: Engine, info: UserInfo, *, seen_at: datetime | None = None) -> UserState:
    """Create the user or refresh their profile and `last_seen`."""
    now = seen_at or utcnow()
    with unit_of_work(engine) as session:
        user = session.get(User, info.id)
        if user is None:
            user = User(id=info.id, first_seen=now, last_seen=now)
            session.add(user)
        # The store boundary: a NUL, a lone surrogate or an over-long name from a client must
        # not make every later update of this user fail.
        user.username = _fit(info.username, "username") or user.username
        user.first_name = _fit(info.first_name, "first_name") or user.first_name
        user.language = _fit(info.language, "language") or user.language
        user.time_zone = _fit(info.time_zone, "time_zone") or user.time_zone
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


def _own_messages(session: Session, user_id: int) -> dict[int, set[int]]:
    """Chat id → ids of the user's own messages in chats other than their private one."""
    rows = session.execute(
        select(Event.chat_id, Event.kind, Event.attributes).where(
            Event.user_id == user_id, Event.chat_id.is_not(None), Event.chat_id != user_id
        )
    )
    messages: dict[int, set[int]] = {}
    for chat_id, kind, attributes in rows:
        message_id = (attributes or {}).get("message_id")
        if kind in _OWN_MESSAGE_KINDS and isinstance(message_id, int):
            messages.setdefault(chat_id, set()).add(message_id)
    return messages


def _scrubbed_attributes(
    kind: str, attributes: dict[str, Any], user_id: int, messages: set[int]
) -> dict[str, Any] | None:
    """Another user's event attributes with every reference to `user_id` nulled; None if none."""
    changed = dict(attributes)
    for key, value in attributes.items():
        is_user = key in USER_ID_ATTRIBUTES and value == user_id
        is_message = (
            key in MESSAGE_REFERENCE_ATTRIBUTES or (key == "message_id" and kind == EventKind.REACTION)
        ) and (value in messages)
        if is_user or is_message:
            changed[key] = None
    return changed if changed != attributes else None


def _scrub_references(session: Session, user_id: int) -> int:
    """Null the id (and references to the user's messages) inside other users' events.

    A group join records who added the member (`by`), a reply the message it answers, a
    reaction the message reacted to: forgetting the user must not leave those behind.
    Candidates are found by a text match on the JSON, then checked exactly here.
    """
    messages = _own_messages(session, user_id)
    text = cast(Event.attributes, Text)
    mentions = [text.like(f'%"{key}": {user_id}%') for key in sorted(USER_ID_ATTRIBUTES)]
    conditions = [or_(*mentions)]
    if messages:  # replies and reactions in the chats where they wrote
        references = [text.like(f'%"{key}": %') for key in sorted(MESSAGE_REFERENCE_ATTRIBUTES)]
        conditions.append(
            and_(Event.chat_id.in_(sorted(messages)), or_(Event.kind == EventKind.REACTION, *references))
        )
    candidates = session.execute(
        select(Event.id, Event.chat_id, Event.kind, Event.attributes).where(
            Event.attributes.is_not(None),
            or_(*conditions),
            or_(Event.user_id.is_(None), Event.user_id != user_id),
        )
    )
    changes: list[dict[str, Any]] = []
    for event_id, chat_id, kind, attributes in candidates:
        if not isinstance(attributes, dict):
            continue
        scrubbed = _scrubbed_attributes(kind, attributes, user_id, messages.get(chat_id, set()))
        if scrubbed is not None:
            changes.append({"event_id": event_id, "attributes": scrubbed})
    if changes:
        events: Any = Event.__table__
        session.connection().execute(
            update(events)
            .where(events.c.id == bindparam("event_id"))
            .values(attributes=bindparam("attributes")),
            changes,
        )
    return len(changes)


def _deletions(user_id: int) -> Iterable[tuple[str, Any]]:
    # A private chat's id is the user's id: events and deliveries there are theirs too.
    yield "events", delete(Event).where(or_(Event.user_id == user_id, Event.chat_id == user_id))
    yield "deliveries", delete(Delivery).where(or_(Delivery.user_id == user_id, Delivery.chat_id == user_id))
    yield "segment_memberships", delete(SegmentMembership).where(SegmentMembership.user_id == user_id)
    yield "chats", delete(Chat).where(Chat.id == user_id)
    yield "users", delete(User).where(User.id == user_id)


def forget_user(engine: Engine, user_id: int) -> ForgetReport:
    """Delete everything stored about one user and scrub their id from the rest, in one transaction.

    Deleted: their events and deliveries (also those of their private chat), segment
    memberships, chat and user rows. Scrubbed (set to null, the row kept): their id in other
    users' event attributes (`by` of a group join, and the like), replies and reactions
    pointing at their messages, and `created_by` of campaigns they made as a manager.
    """
    deleted: dict[str, int] = {}
    scrubbed: dict[str, int] = {}
    with unit_of_work(engine) as session:
        deleted.update(forget_product_data(session, user_id))
        scrubbed["event references"] = _scrub_references(session, user_id)
        scrubbed["campaigns"] = int(
            session.execute(
                update(Campaign).where(Campaign.created_by == user_id).values(created_by=None)
            ).rowcount  # type: ignore[attr-defined]
        )
        forget_from_rollups(session, user_id)  # before the events go: it reads what they counted
        for name, statement in _deletions(user_id):
            deleted[name] = int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
    return ForgetReport(user_id=user_id, deleted=deleted, scrubbed=scrubbed)
