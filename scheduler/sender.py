"""The boundary between scheduling and Telegram: `bot/` implements `Sender`.

The scheduler decides who gets what and records every state change; the sender makes one
delivery attempt at Telegram's rate limits and classifies the outcome, so that retry policy
and bookkeeping stay in one place (the delivery engine) and the scheduler never imports
telegram.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class SendStatus(StrEnum):
    """How one attempt ended."""

    SENT = "sent"  # Telegram accepted it; `telegram_message_id` is set
    BLOCKED = "blocked"  # 403: the user blocked the bot or deleted their account; never retry
    REJECTED = "rejected"  # 400: the request itself is bad (chat not found, text too long); no retry
    RETRY = "retry"  # 429, 5xx, timeout or network error: try again later (`retry_after` if known)


@dataclass(frozen=True)
class Button:
    """An inline keyboard button: a label and its callback data (≤ 64 bytes)."""

    text: str
    callback_data: str


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one chat."""

    chat_id: int
    text: str
    buttons: tuple[Button, ...] = ()
    disable_notification: bool = False


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt."""

    status: SendStatus
    telegram_message_id: int | None = None
    error: str | None = None
    retry_after: float | None = None


@runtime_checkable
class Sender(Protocol):
    """Sends one message; implementations keep within Telegram's limits.

    Duties of an implementation:
    - at most the configured messages/s overall, 1/s per private chat, 20/min per group;
    - a 429 pauses *all* sends for `retry_after` and is reported as RETRY with it;
    - never raises for Telegram or network errors: classify them into a `SendResult`.
    """

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Make one attempt to deliver `message`."""
        ...
