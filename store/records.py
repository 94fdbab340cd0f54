"""Plain frozen dataclasses that cross package boundaries (ORM objects stay in store/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One interaction to append to the log: what the bot, the scheduler and imports write.

    `ts` is UTC-aware. An attribute that holds another user's id goes under one of
    `USER_ID_ATTRIBUTES`, so that forgetting that user can scrub it from this event.
    """

    user_id: int | None
    ts: datetime
    kind: str
    chat_id: int | None = None
    intent: str | None = None
    confidence: float | None = None
    text: str | None = None
    attributes: dict[str, Any] | None = None
    # The Telegram update the event came from (None for pushes, imports, product events): it
    # orders one user's events that share a timestamp, e.g. handled by different replicas.
    update_id: int | None = None


USER_ID_ATTRIBUTES = frozenset({"by", "user_id", "from_user_id", "target_user_id", "created_by"})
"""Attribute keys whose value is a Telegram user id (e.g. `by`: who added someone to a group)."""

MESSAGE_REFERENCE_ATTRIBUTES = frozenset({"reply_to"})
"""Attribute keys whose value is the id of a message in the event's chat (another user's, maybe)."""


@dataclass(frozen=True)
class UserInfo:
    """What the bot knows of a Telegram user at an update."""

    id: int
    username: str | None = None
    first_name: str | None = None
    language: str | None = None
    time_zone: str | None = None


@dataclass(frozen=True)
class UserState:
    """A stored user's reachability and profile."""

    id: int
    username: str | None
    language: str | None
    time_zone: str | None
    first_seen: datetime
    last_seen: datetime
    opted_out: bool
    blocked: bool


@dataclass(frozen=True)
class ForgetReport:
    """What `forget_user` removed: rows deleted per table, references scrubbed per place."""

    user_id: int
    deleted: dict[str, int] = field(default_factory=dict)
    scrubbed: dict[str, int] = field(default_factory=dict)
    """Rows of *other* users changed to drop the id (e.g. "event references": `by` of a join)."""

    @property
    def total(self) -> int:
        """All rows deleted or changed."""
        return sum(self.deleted.values()) + sum(self.scrubbed.values())
