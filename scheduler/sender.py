"""The boundary between scheduling and Telegram: `bot/` implements `Sender`.

The scheduler decides who gets what and records every state change; the sender makes one
delivery attempt within Telegram's limits and classifies the outcome, so that retry policy
and bookkeeping stay in one place (the delivery engine) and the scheduler never imports
telegram.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class SendStatus(StrEnum):
    """How one attempt ended."""

    SENT = "sent"  # Telegram accepted it; `telegram_message_id` is set
    BLOCKED = "blocked"  # 403: the user blocked the bot or deleted their account; never retry
    REJECTED = "rejected"  # 400: the request itself is bad (chat not found, text too long); no retry
    RETRY = "retry"  # 429, 5xx, or the request never left (connect error): try again later
    AMBIGUOUS = "ambiguous"  # the request was written but no answer came back: never resent


@dataclass(frozen=True)
class Button:
    """An inline keyboard button: a label and one of callback data, a URL, or a push click to sign.

    `push_click` is what a press of a push's button must report (`delivery.experiment.variant.index`):
    the sender signs it into callback data (the scheduler holds no key), and the bot logs the press
    as a `push_click` event. A URL button opens the link without telling the bot: not trackable.
    """

    text: str
    callback_data: str | None = None
    url: str | None = None
    push_click: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.callback_data, self.url, self.push_click) if v is not None]
        if len(given) != 1:
            raise ValueError(f"button {self.text!r} needs exactly one of callback_data, url or push_click")


@dataclass(frozen=True)
class UrlButton:
    """An inline keyboard button that opens a link (https, http or tg://)."""

    text: str
    url: str


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one chat.

    `buttons` are one callback button per row; `url_buttons` are rows of link buttons, shown
    below them. `parse_mode` is Telegram's (`"HTML"`), None for plain text.
    """

    chat_id: int
    text: str
    buttons: tuple[Button, ...] = ()
    disable_notification: bool = False
    parse_mode: str | None = None
    url_buttons: tuple[tuple[UrlButton, ...], ...] = ()


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt."""

    status: SendStatus
    telegram_message_id: int | None = None
    error: str | None = None
    retry_after: float | None = None


@runtime_checkable
class Sender(Protocol):
    """Sends one message; the one owner of pacing for everything the bot sends.

    Who owns what (one owner per duty):
    - **The sender owns the global rate and the 429 pause.** Its budget is shared with every
      other message the bot sends (replies too: `bot.outbound.OutboundLimiter` is the bot's PTB
      rate limiter, and `bot.delivery.TelegramSender` draws its slots from it), replies are
      served first, and a 429 holds *every* message until `retry_after` has passed; the
      attempt that met it is reported as RETRY with `retry_after`.
    - **The sender owns the per-chat and per-group spacing of pushes** (1/s per private chat,
      20/min per group). Replies are bounded per chat before they are written (the bot's flood
      guard per user, its group reply budget of 15/min per group), and one that still meets a
      429 waits `retry_after` and is retried by the same limiter.
    - **The delivery engine owns none of the pacing.** It owns concurrency (how many sends are
      in flight, hence the crash bound), retries with back-off, quiet hours and bookkeeping.
      It enters `slot(chat_id)` *before* marking a row `sending`, so a row is only `sending`
      while its request can actually go out, and calls `send` inside that block.

    Duties of an implementation:
    - `slot(chat_id)` waits until a send to that chat fits the budget and holds that slot for
      the one `send` made inside the block; leaving the block without sending gives it back;
    - never raises for Telegram or network errors: classify them into a `SendResult`, with
      AMBIGUOUS for an error raised after the request was written (read error, read timeout,
      connection dropped mid-answer), which must never be retried blindly, and RETRY for one
      raised before anything was sent (connect error or timeout, closed client).
    """

    def slot(self, chat_id: int) -> AbstractAsyncContextManager[None]:
        """Wait for a send slot to `chat_id`; hold it for the `send` made inside the block."""
        ...

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Make one attempt to deliver `message`."""
        ...
