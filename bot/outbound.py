"""`OutboundLimiter`: the one budget for everything the bot sends, replies ahead of pushes.

Telegram's limits are per bot: about 30 messages a second overall, about one a second per
private chat (short bursts allowed) and 20 a minute per group; more answers 429 with
`retry_after`. Replies and scheduled pushes share that budget, so both go through this one
PTB rate limiter (installed on the application's `ExtBot`): it owns the global rate, the 429
pause and the per-chat and per-group spacing of pushes. A waiting reply is always granted
before a waiting push; a reply that still meets a 429 waits `retry_after` and is retried
(bounded), while a push's 429 goes back to the delivery engine, which requeues the row.
Replies are not spaced per chat here (see `acquire`): the bot bounds them per user and per
group before they are written.

Why not PTB's `AIORateLimiter`: it has no priorities (a 10,000-user broadcast would queue
every reply behind it) and no per-private-chat spacing.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from store import Settings

logger = logging.getLogger(__name__)

_EPSILON_S = 0.002
_MAX_CHATS = 10_000


class Priority(IntEnum):
    """Who waits first: lower values are granted first."""

    REPLY = 0
    """An answer to something a user just did (the default for every PTB call)."""
    PUSH = 1
    """A scheduled delivery (broadcast, re-engagement)."""


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

    def reserve(self, *, burst: int | None = None) -> float:
        """Take the next slot; the seconds to wait before using it (`burst` overrides the default)."""
        now = self._clock()
        tat = max(self._tat, now)
        allowed_at = tat - (max(1, burst or self.burst) - 1) * self.interval
        wait = max(0.0, allowed_at - now)
        self._tat = tat + self.interval
        return wait

    def idle(self) -> bool:
        """Whether the schedule is back at rest (can be forgotten)."""
        return self._tat <= self._clock()


def retry_after_seconds(exc: RetryAfter) -> float:
    """`retry_after` in seconds whatever PTB's time-period setting is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: int | float | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_message_endpoint(endpoint: str) -> bool:
    """Whether a Bot API method puts a message into a chat (what Telegram's limits count)."""
    return endpoint.startswith("send") or endpoint in (
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    )


@dataclass(eq=False)
class Ticket:
    """A granted send slot: held from the grant until the call it was granted for has answered."""

    priority: Priority
    chat_id: int | None
    used: bool = False
    released: bool = False


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)


async def _event_sleep(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds` or until `event` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


class OutboundLimiter(BaseRateLimiter[Any]):
    """Paces every message the bot sends within Telegram's limits; a PTB `BaseRateLimiter`.

    Args:
        rate_per_s: Messages per second across all chats (Telegram: 30).
        rate_safety: Share of `rate_per_s` aimed at, so network jitter never packs more than
            the limit into one second at the server.
        per_chat_rate_per_s: Messages per second to one private chat.
        group_rate_per_min: Messages per minute to one group or channel.
        max_reply_retries: How often a reply that meets a 429 is retried after `retry_after`.
        clock: Monotonic seconds; injectable for tests.
        sleep: How the dispatcher waits for the next slot (default: a real sleep that wakes
            early when a call completes); tests pass a manual clock's sleep.

    Invariants: at most `floor(rate_per_s)` calls are in flight or answered within any one
    second (starting a call at least a second after the `limit`-th latest answer can never put
    more than `limit` messages into one second at the server, whatever the jitter), and no
    message call starts while a 429 pause lasts.
    """

    def __init__(
        self,
        *,
        rate_per_s: float = 30.0,
        rate_safety: float = 0.99,
        per_chat_rate_per_s: float = 1.0,
        group_rate_per_min: float = 20.0,
        max_reply_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if rate_per_s <= 0 or not 0 < rate_safety <= 1:
            raise ValueError(f"need rate_per_s > 0 and 0 < rate_safety <= 1, got {rate_per_s}, {rate_safety}")
        if per_chat_rate_per_s <= 0 or group_rate_per_min <= 0 or max_reply_retries < 0:
            raise ValueError("per-chat and group rates must be positive and max_reply_retries >= 0")
        self.rate_per_s = rate_per_s
        self.interval_s = 1.0 / (rate_per_s * rate_safety)
        self.window_limit = max(1, math.floor(rate_per_s))
        self.max_reply_retries = max_reply_retries
        self._per_chat_rate = per_chat_rate_per_s
        self._group_rate = group_rate_per_min / 60.0
        self._clock = clock
        self._custom_sleep = sleep
        self._chats: dict[int, Pacer] = {}
        self._recent: deque[float] = deque()
        self._in_flight = 0
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._heap: list[_Waiter] = []
        self._seq = itertools.count()
        self._kick: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.granted = {Priority.REPLY: 0, Priority.PUSH: 0}
        self.rate_limited = 0
        self.retried_replies = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundLimiter:
        """The limiter the settings describe (`send_rate_per_s`, per-chat and group rates)."""
        return cls(
            rate_per_s=settings.send_rate_per_s,
            per_chat_rate_per_s=settings.per_chat_rate_per_s,
            group_rate_per_min=settings.group_rate_per_min,
        )

    # ---- PTB's BaseRateLimiter ---------------------------------------------------------
    async def initialize(self) -> None:
        """Nothing to set up: the dispatcher starts with the first call, in its event loop."""

    async def shutdown(self) -> None:
        """Stop the dispatcher; waiting calls are cancelled."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._dispatcher
            self._dispatcher = None
        for waiter in self._heap:
            waiter.future.cancel()
        self._heap.clear()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Any,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Run one Bot API call within the budget (see the class docstring)."""
        if isinstance(rate_limit_args, Ticket):  # a slot the delivery engine already holds
            return await self._with_ticket(rate_limit_args, callback, args, kwargs)
        priority = rate_limit_args if isinstance(rate_limit_args, Priority) else Priority.REPLY
        chat_id = _chat_id(data)
        limited = is_message_endpoint(endpoint)
        attempt = 0
        while True:
            try:
                if not limited:
                    return await callback(*args, **kwargs)
                ticket = await self.acquire(priority, chat_id)
                return await self._with_ticket(ticket, callback, args, kwargs)
            except RetryAfter as exc:
                seconds = retry_after_seconds(exc)
                if priority is Priority.PUSH or attempt >= self.max_reply_retries:
                    raise
                attempt += 1
                self.retried_replies += 1
                logger.warning(
                    "%s to chat %s got 429: retrying in %.1fs (%d of %d)",
                    endpoint, chat_id, seconds, attempt, self.max_reply_retries,
                )  # fmt: skip
                if not limited:  # message calls wait in acquire(), where the pause is set
                    await asyncio.sleep(seconds)

    # ---- slots -------------------------------------------------------------------------
    @property
    def paused_for(self) -> float:
        """Seconds left of a 429 pause (0 when sending freely)."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every message call for `seconds` (Telegram's `retry_after`)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._wake()

    async def acquire(self, priority: Priority, chat_id: int | None) -> Ticket:
        """Wait for a slot to `chat_id` (a push: per-chat spacing first), then the global budget.

        The slot is held until released. Replies skip the per-chat spacing: a waiting reply
        holds one of the few concurrent update handlers, so spacing one talkative chat would
        stall everyone else's answers; replies in one chat are bounded before they are written
        instead (the flood guard per user, the group reply budget of 15/min per group), and a
        reply that still meets a 429 waits `retry_after` and is retried.
        """
        if chat_id is not None and priority is Priority.PUSH:
            wait = self._chat_pacer(chat_id).reserve()
            if wait > 0:
                await self._sleep_plain(wait)
        self._ensure_dispatcher()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(int(priority), next(self._seq), loop.create_future())
        heapq.heappush(self._heap, waiter)
        self._wake()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._finish(attempted=False)  # granted just as we were cancelled: give it back
            raise
        self.granted[priority] += 1
        return Ticket(priority, chat_id)

    def release(self, ticket: Ticket) -> None:
        """Give a slot back: unused, it costs nothing; used, it counts as one answered call."""
        if ticket.released:
            return
        ticket.released = True
        self._finish(attempted=ticket.used)

    async def _with_ticket(
        self,
        ticket: Ticket,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if ticket.used or ticket.released:
            raise RuntimeError("a send slot serves exactly one call")
        ticket.used = True
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            self.rate_limited += 1
            seconds = retry_after_seconds(exc)
            self.pause(seconds)
            logger.warning("Telegram asked to slow down: pausing every message for %.1fs", seconds)
            raise
        finally:
            self.release(ticket)

    def _chat_pacer(self, chat_id: int) -> Pacer:
        pacer = self._chats.get(chat_id)
        if pacer is None:
            if len(self._chats) > _MAX_CHATS:
                self._chats = {cid: p for cid, p in self._chats.items() if not p.idle()}
            rate = self._per_chat_rate if chat_id > 0 else self._group_rate
            pacer = self._chats[chat_id] = Pacer(rate, clock=self._clock)
        return pacer

    def _finish(self, *, attempted: bool) -> None:
        self._in_flight -= 1
        if attempted:
            self._recent.append(self._clock())
        self._wake()

    # ---- the dispatcher ----------------------------------------------------------------
    def _wake(self) -> None:
        if self._kick is not None:
            self._kick.set()

    def _ensure_dispatcher(self) -> None:
        loop = asyncio.get_running_loop()
        if self._dispatcher is not None and not self._dispatcher.done() and self._loop is loop:
            return
        self._loop = loop
        self._kick = asyncio.Event()
        self._dispatcher = loop.create_task(self._dispatch(), name="outbound-limiter")

    def _slot_wait(self) -> float:
        """Seconds until the next grant may happen (0: now)."""
        now = self._clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        ready = max(self._next_slot, self._paused_until)
        if len(self._recent) + self._in_flight >= self.window_limit:
            ready = max(ready, self._recent[0] + 1.0 + _EPSILON_S if self._recent else now + 1.0)
        return ready - now

    async def _sleep_plain(self, seconds: float) -> None:
        if self._custom_sleep is not None:
            await self._custom_sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def _dispatch(self) -> None:
        assert self._kick is not None
        kick = self._kick
        while True:
            while self._heap and self._heap[0].future.done():  # cancelled while waiting
                heapq.heappop(self._heap)
            if not self._heap:
                kick.clear()
                await kick.wait()
                continue
            wait = self._slot_wait()
            if wait > 0:
                kick.clear()
                if self._custom_sleep is not None:
                    await self._custom_sleep(wait)
                else:
                    await _event_sleep(kick, wait)
                continue
            waiter = heapq.heappop(self._heap)
            # The next slot is one interval on; a dispatcher that woke a little late (event-loop
            # lag) may catch up half an interval, never more, so calls never bunch up.
            self._next_slot = max(self._next_slot, self._clock() - self.interval_s / 2) + self.interval_s
            self._in_flight += 1
            waiter.future.set_result(None)
            await asyncio.sleep(0)


def _chat_id(data: dict[str, Any]) -> int | None:
    raw = data.get("chat_id")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):  # @channelusername: spaced like a group
        return -1
