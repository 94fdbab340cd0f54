"""Per-user flood control: a sliding window of recent messages per user."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum


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

    def _prune(self, now: float) -> None:
        idle = [uid for uid, window in self._seen.items() if not window or window[-1] <= now - self.window_s]
        for uid in idle:
            del self._seen[uid]
            self._warned.discard(uid)
