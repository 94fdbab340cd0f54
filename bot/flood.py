"""Flood control: a sliding window of recent messages per user (or per group for the bot's replies).

`FloodGuard` keeps the windows in memory, which is right for one process. Webhook replicas
behind a load balancer share them in the database instead (`SharedFloodGuard`, on
`store.flood`), so a user's limit holds however their messages are spread over replicas.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from sqlalchemy import Engine

from store.flood import count_message, prune_flood_counters

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0
"""A shared guard deletes its old windows at most this often."""


class FloodVerdict(StrEnum):
    """What to do with one incoming message."""

    OK = "ok"  # handle it
    WARN = "warn"  # first message over the limit: tell the user once, don't handle
    DROP = "drop"  # over the limit and already told: log only


class FloodGuard:
    """At most `max_messages` per user within `window_s`; excess is throttled, not handled.

    The user is warned once per burst, so a flood of 50 messages gets one reply rather than
    50. Memory stays bounded: idle users are pruned.
    """

    def __init__(
        self,
        max_messages: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        self.max_messages = max_messages
        self.window_s = window_s
        self._clock = clock
        self._max_users = max_users
        self._seen: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, user_id: int) -> FloodVerdict:
        """Count one message of `user_id` and say whether to handle it."""
        now = self._clock()
        window = self._seen.get(user_id)
        if window is None:
            if len(self._seen) >= self._max_users:
                self._prune(now)
            window = self._seen[user_id] = deque()
        while window and window[0] <= now - self.window_s:
            window.popleft()
        if len(window) < self.max_messages:
            window.append(now)
            self._warned.discard(user_id)
            return FloodVerdict.OK
        if user_id in self._warned:
            return FloodVerdict.DROP
        self._warned.add(user_id)
        return FloodVerdict.WARN

    async def acheck(self, key: int) -> FloodVerdict:
        """`check`, for callers that may as well hold a `SharedFloodGuard`."""
        return self.check(key)

    def _prune(self, now: float) -> None:
        idle = [uid for uid, window in self._seen.items() if not window or window[-1] <= now - self.window_s]
        for uid in idle:
            del self._seen[uid]
            self._warned.discard(uid)


class SharedFloodGuard:
    """The same limit as `FloodGuard`, counted in the database for every replica at once.

    One upsert and one read per message in a worker thread. When the database cannot be
    reached the replica falls back to its own in-memory window (and says so once a minute):
    a flood limit must never stop the bot from answering.

    Args:
        engine: The shared database.
        scope: The limit's name in `flood_counters` (`user`, `group`).
        max_messages: Messages allowed within `window_s`.
        window_s: The sliding window.
        clock: Unix time source.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        scope: str,
        max_messages: int,
        window_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_messages = max_messages
        self.window_s = window_s
        self.scope = scope
        self._engine = engine
        self._clock = clock
        self._local = FloodGuard(max_messages, window_s)
        self._next_prune = 0.0
        self._next_warning = 0.0

    async def acheck(self, key: int) -> FloodVerdict:
        """Count one message of `key` across replicas and say whether to handle it."""
        now = self._clock()
        try:
            counted = await asyncio.to_thread(
                count_message,
                self._engine,
                self.scope,
                key,
                now_s=now,
                window_s=self.window_s,
                limit=self.max_messages,
            )
        except Exception as exc:
            if now >= self._next_warning:
                self._next_warning = now + 60.0
                logger.warning(
                    "shared %s flood counters unavailable (%s): this replica counts alone", self.scope, exc
                )
            return self._local.check(key)
        await self._maybe_prune(now)
        if counted.estimate <= self.max_messages:
            return FloodVerdict.OK
        return FloodVerdict.WARN if counted.first_over else FloodVerdict.DROP

    async def _maybe_prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_S
        try:
            await asyncio.to_thread(
                prune_flood_counters, self._engine, now_s=now, window_s=self.window_s, scope=self.scope
            )
        except Exception as exc:
            logger.warning("could not prune old %s flood counters: %s", self.scope, exc)
