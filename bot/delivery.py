"""`TelegramSender`: the scheduler's `Sender`, one paced attempt per call over the Bot API.

Telegram allows about 30 messages a second overall, one a second per private chat and
20 a minute per group; more answers 429 with `retry_after`, and a bot that keeps pushing
gets longer bans. So every send waits for a slot in three schedules (global, per chat)
and a 429 pauses *every* send until `retry_after` has passed. Errors are classified,
never raised: the delivery engine in `scheduler/` owns retries and bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from scheduler.sender import OutgoingMessage, SendResult, SendStatus

logger = logging.getLogger(__name__)

_MAX_PAUSE_CHECKS = 100


class Pacer:
    """A generic cell-rate schedule: at most `rate` per second, bursts of up to `burst`.

    `reserve()` hands out the next free slot and returns how long to wait for it; callers
    sleep outside any lock, so many senders queue without blocking each other.
    """

    def __init__(self, rate_per_s: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic):
        if rate_per_s <= 0:
            raise ValueError(f"rate_per_s={rate_per_s} must be positive")
        self.interval = 1.0 / rate_per_s
        self.burst = max(1, burst)
        self._clock = clock
        self._tat = 0.0  # theoretical arrival time of the next message

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait before using it."""
        now = self._clock()
        tat = max(self._tat, now)
        allowed_at = tat - (self.burst - 1) * self.interval
        wait = max(0.0, allowed_at - now)
        self._tat = tat + self.interval
        return wait

    def idle(self) -> bool:
        """Whether the schedule is back at rest (can be forgotten)."""
        return self._tat <= self._clock()


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def retry_after_seconds(exc: RetryAfter) -> float:
    """`retry_after` in seconds whatever PTB's time-period setting is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _seconds(exc.retry_after)


class TelegramSender:
    """Sends `OutgoingMessage`s through a PTB `Bot`, within Telegram's limits.

    Args:
        bot: An initialised PTB bot (the application's).
        rate_per_s: Messages per second across all chats.
        per_chat_rate_per_s: Messages per second to one private chat.
        group_rate_per_min: Messages per minute to one group or channel.
        clock: Monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        rate_per_s: float = 30.0,
        per_chat_rate_per_s: float = 1.0,
        group_rate_per_min: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._clock = clock
        self._per_chat_rate = per_chat_rate_per_s
        self._group_rate = group_rate_per_min / 60.0
        self._global = Pacer(rate_per_s, clock=clock)
        self._chats: dict[int, Pacer] = {}
        self._paused_until = 0.0
        self.sent = 0
        self.rate_limited = 0

    @property
    def paused_for(self) -> float:
        """Seconds left of a 429 pause (0 when sending freely)."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` (Telegram's `retry_after`)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _chat_pacer(self, chat_id: int) -> Pacer:
        pacer = self._chats.get(chat_id)
        if pacer is None:
            if len(self._chats) > 10_000:
                self._chats = {cid: p for cid, p in self._chats.items() if not p.idle()}
            rate = self._per_chat_rate if chat_id > 0 else self._group_rate
            pacer = self._chats[chat_id] = Pacer(rate, clock=self._clock)
        return pacer

    async def _sleep_out_pause(self) -> None:
        # A pause can be extended while we sleep (another 429), so look again after waking.
        for _ in range(_MAX_PAUSE_CHECKS):
            pause = self.paused_for
            if pause <= 0:
                return
            await asyncio.sleep(pause)

    async def _wait_turn(self, chat_id: int) -> None:
        await self._sleep_out_pause()
        await asyncio.sleep(self._chat_pacer(chat_id).reserve())
        await asyncio.sleep(self._global.reserve())
        await self._sleep_out_pause()  # a 429 may have arrived while we queued

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Make one attempt to deliver `message`; never raises for Telegram errors."""
        markup = None
        if message.buttons:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.text, callback_data=b.callback_data)] for b in message.buttons]
            )
        await self._wait_turn(message.chat_id)
        try:
            sent = await self._bot.send_message(
                chat_id=message.chat_id,
                text=message.text,
                reply_markup=markup,
                disable_notification=message.disable_notification,
            )
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            self.pause(seconds)
            self.rate_limited += 1
            logger.warning("Telegram asked to slow down: pausing all sends for %.0fs", seconds)
            return SendResult(SendStatus.RETRY, error=str(exc), retry_after=seconds)
        except Forbidden as exc:
            logger.info("chat %d blocked the bot: %s", message.chat_id, exc.message)
            return SendResult(SendStatus.BLOCKED, error=exc.message)
        except ChatMigrated as exc:
            return SendResult(SendStatus.REJECTED, error=f"chat migrated to {exc.new_chat_id}")
        except BadRequest as exc:
            logger.info("chat %d rejected a message: %s", message.chat_id, exc.message)
            return SendResult(SendStatus.REJECTED, error=exc.message)
        except TelegramError as exc:  # NetworkError, TimedOut, 5xx, anything transient
            logger.info("send to chat %d failed, will retry: %s", message.chat_id, exc.message)
            return SendResult(SendStatus.RETRY, error=exc.message or type(exc).__name__)
        except (TimeoutError, OSError) as exc:
            return SendResult(SendStatus.RETRY, error=f"{type(exc).__name__}: {exc}")
        self.sent += 1
        return SendResult(SendStatus.SENT, telegram_message_id=sent.message_id)
