"""Plain frozen dataclasses that cross package boundaries (ORM objects stay in store/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class EventRecord:
    """One interaction to append to the log."""

    user_id: int | None
    ts: datetime
    kind: str
    chat_id: int | None = None
    intent: str | None = None
    confidence: float | None = None
    text: str | None = None
    attributes: dict[str, Any] | None = None

    def as_row(self, *, store_text: bool) -> dict[str, Any]:
        """The insert row; text is dropped unless storing text is switched on."""
        return {
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "ts": self.ts,
            "kind": self.kind,
            "intent": self.intent,
            "confidence": self.confidence,
            "text": self.text if store_text else None,
            "attributes": self.attributes,
        }


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
    """How many rows `forget_user` deleted, per table."""

    user_id: int
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All rows deleted."""
        return sum(self.deleted.values())
