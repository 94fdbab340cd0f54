"""`TelegramSender`: the scheduler's `Sender`, one attempt per call over the Bot API.

Pacing is not done here but by the bot's one `OutboundLimiter` (the `ExtBot`'s PTB rate
limiter), whose slots the sender takes at push priority, so broadcasts and replies share one
budget and replies go first. What the sender adds is the classification the delivery engine
needs: sent, blocked (403), rejected (400), retry (429, 5xx, or never sent: a connect error)
and ambiguous (the request was written but the answer was lost: a read error or timeout, a
dropped connection), which must never be retried blindly. Errors are classified, never
raised: the delivery engine in `scheduler/` owns retries and bookkeeping.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot.callbacks import CallbackCodec, secret_for_token
from bot.outbound import OutboundLimiter, Pacer, Priority, Ticket, retry_after_seconds
from bot.transport import BotApiRequest
from scheduler.sender import OutgoingMessage, SendResult, SendStatus
from store import Settings

__all__ = ["Pacer", "TelegramSender", "is_ambiguous", "retry_after_seconds"]

logger = logging.getLogger(__name__)

# Errors raised before any byte of the request left: safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
SEND_POOL_SIZE = 40  # a standalone sender's connections: at least the limiter's calls in flight

_slot: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("rapport_send_slot", default=None)


def is_ambiguous(exc: BaseException) -> bool:
    """Whether a failed call may have reached Telegram (the request was written, the answer lost).

    PTB wraps httpx's errors (`TimedOut`, `NetworkError`) with the original as `__cause__`:
    a connect error or a pool timeout means nothing was sent; anything else at the transport
    level (read error or timeout, write error, a connection dropped mid-answer) may have been
    accepted by Telegram. A `RuntimeError` from a closed client was raised before sending.
    """
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, _NOT_SENT) or isinstance(exc, RuntimeError):
        return False
    return isinstance(cause, httpx.TransportError | TimeoutError | OSError)


class TelegramSender:
    """Sends `OutgoingMessage`s through a PTB `ExtBot` whose rate limiter is an `OutboundLimiter`.

    Build it with `from_settings`: with the application's bot (`rapport run`) or, without one,
    with a bot of its own (`rapport broadcast`, benchmarks), which `async with sender:` opens
    and closes.

    Args:
        bot: An `ExtBot` built with an `OutboundLimiter` as its rate limiter.
        owns_bot: Whether `async with` initialises and shuts the bot down.
        codec: Signs the callback data of push buttons (`push_click`); by default the bot's own
            codec, keyed by its token, so the bot that receives the press verifies it.
    """

    def __init__(
        self, bot: ExtBot[Any], *, owns_bot: bool = False, codec: CallbackCodec | None = None
    ) -> None:
        limiter = bot.rate_limiter
        if not isinstance(limiter, OutboundLimiter):
            raise ValueError(
                f"TelegramSender needs a bot whose rate limiter is an OutboundLimiter, got {limiter!r}"
            )
        self._bot = bot
        self.limiter: OutboundLimiter = limiter
        self._owns_bot = owns_bot
        self._codec = codec or CallbackCodec(secret_for_token(bot.token))
        self.sent = 0
        self.rate_limited = 0
        self.ambiguous = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, bot: Bot | None = None) -> TelegramSender:
        """The sender for these settings: on `bot` (the application's), or on a bot of its own."""
        if bot is not None:
            if not isinstance(bot, ExtBot):
                raise ValueError(f"the application's bot must be an ExtBot with a rate limiter, got {bot!r}")
            return cls(bot)
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        own: ExtBot[Any] = ExtBot(
            settings.telegram_bot_token,
            base_url=settings.telegram_api_base_url,
            base_file_url=settings.telegram_api_file_url,
            request=BotApiRequest(connection_pool_size=SEND_POOL_SIZE),
            rate_limiter=OutboundLimiter.from_settings(settings),
        )
        return cls(own, owns_bot=True)

    async def __aenter__(self) -> TelegramSender:
        if self._owns_bot:
            await self._bot.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._owns_bot:
            await self._bot.shutdown()

    @property
    def bot(self) -> ExtBot[Any]:
        """The bot the sender sends through."""
        return self._bot

    @property
    def paused_for(self) -> float:
        """Seconds left of a 429 pause (0 when sending freely)."""
        return self.limiter.paused_for

    @asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator[None]:
        """Hold a push slot to `chat_id` from the shared budget for the `send` in the block."""
        ticket = await self.limiter.acquire(Priority.PUSH, chat_id)
        token = _slot.set(ticket)
        try:
            yield
        finally:
            _slot.reset(token)
            self.limiter.release(ticket)

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Make one attempt to deliver `message`; never raises for Telegram or network errors."""
        try:
            markup = self._markup(message)
        except ValueError as exc:  # callback data too long: the row is bad, not the network
            return SendResult(SendStatus.REJECTED, error=str(exc))
        ticket = _slot.get()
        try:
            sent = await self._bot.send_message(
                chat_id=message.chat_id,
                text=message.text,
                reply_markup=markup,
                parse_mode=message.parse_mode,  # None: plain text (the bot sets no Defaults)
                disable_notification=message.disable_notification,
                rate_limit_args=ticket if ticket is not None and not ticket.used else Priority.PUSH,
            )
        except RetryAfter as exc:
            self.rate_limited += 1
            return SendResult(SendStatus.RETRY, error=str(exc), retry_after=retry_after_seconds(exc))
        except Forbidden as exc:
            logger.info("chat %d blocked the bot: %s", message.chat_id, exc.message)
            return SendResult(SendStatus.BLOCKED, error=exc.message)
        except ChatMigrated as exc:
            return SendResult(SendStatus.REJECTED, error=f"chat migrated to {exc.new_chat_id}")
        except BadRequest as exc:
            logger.info("chat %d rejected a message: %s", message.chat_id, exc.message)
            return SendResult(SendStatus.REJECTED, error=exc.message)
        except (TelegramError, TimeoutError, OSError, RuntimeError) as exc:
            return self._transport_failure(message, exc)
        self.sent += 1
        return SendResult(SendStatus.SENT, telegram_message_id=sent.message_id)

    def _markup(self, message: OutgoingMessage) -> InlineKeyboardMarkup | None:
        """Variant buttons one per row (links open, push buttons carry signed data), then link rows."""
        if not message.buttons and not message.url_buttons:
            return None
        rows = []
        for b in message.buttons:
            if b.url is not None:
                rows.append([InlineKeyboardButton(b.text, url=b.url)])
                continue
            data = b.callback_data
            if b.push_click is not None:  # bound to the recipient: a forwarded copy cannot be pressed
                data = self._codec.encode("push", b.push_click, user_id=max(0, message.chat_id))
            rows.append([InlineKeyboardButton(b.text, callback_data=data)])
        # The composer's link rows (several buttons a row) come after any variant buttons.
        rows += [[InlineKeyboardButton(b.text, url=b.url) for b in row] for row in message.url_buttons]
        return InlineKeyboardMarkup(rows)

    def _transport_failure(self, message: OutgoingMessage, exc: BaseException) -> SendResult:
        text = exc.message if isinstance(exc, TelegramError) else f"{type(exc).__name__}: {exc}"
        if is_ambiguous(exc):
            self.ambiguous += 1
            logger.warning(
                "send to chat %d may have arrived (%s after the request was written): not resending",
                message.chat_id,
                type(exc.__cause__ or exc).__name__,
            )
            return SendResult(SendStatus.AMBIGUOUS, error=text or type(exc).__name__)
        logger.info("send to chat %d failed before it left, will retry: %s", message.chat_id, text)
        return SendResult(SendStatus.RETRY, error=text or type(exc).__name__)
