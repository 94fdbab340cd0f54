"""Telegram's broadcast limits, enforced on demand.

Telegram documents (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about one message per second per chat ("we may allow short bursts"), no more than
20 messages per minute in a group, and about 30 messages per second overall. A
violation answers 429 with ``retry_after``. Off by default; benchmarks can raise the
limits instead of disabling them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "RateLimits"]


@dataclass(frozen=True)
class RateLimits:
    """The limits to enforce.

    Attributes:
        global_per_second: Messages per second across all chats.
        private_per_second: Sustained messages per second in one private chat.
        private_burst: Messages a private chat may take at once before the per-second rate applies.
        group_per_minute: Messages per minute in one group, supergroup or channel.
    """

    global_per_second: float = 30.0
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: int = 20

    def __post_init__(self) -> None:
        if self.global_per_second <= 0 or self.private_per_second <= 0:
            raise ValueError(f"rates must be positive, got {self}")
        if self.private_burst < 1 or self.group_per_minute < 1:
            raise ValueError(f"burst and per-minute limits must be >= 1, got {self}")


class RateLimiter:
    """Sliding windows (global, group) and token buckets (private chats) over a clock.

    Args:
        limits: The limits to enforce.
        clock: Monotonic seconds; injectable so tests need no sleeping.
    """

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._global: deque[float] = deque()
        self._groups: dict[int, deque[float]] = defaultdict(deque)
        self._buckets: dict[int, tuple[float, float]] = {}

    def check(self, chat_id: int, private: bool) -> int | None:
        """Count one message to ``chat_id`` if allowed; else return retry_after seconds.

        A refused message is not counted, as Telegram does not deliver it.
        """
        with self._lock:
            now = self._clock()
            waits: list[float] = []
            window = self._global
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= self.limits.global_per_second:
                waits.append(window[0] + 1.0 - now)
            if private:
                tokens, stamp = self._buckets.get(chat_id, (float(self.limits.private_burst), now))
                tokens = min(
                    float(self.limits.private_burst),
                    tokens + (now - stamp) * self.limits.private_per_second,
                )
                if tokens < 1.0:
                    waits.append((1.0 - tokens) / self.limits.private_per_second)
            else:
                group = self._groups[chat_id]
                while group and group[0] <= now - 60.0:
                    group.popleft()
                if len(group) >= self.limits.group_per_minute:
                    waits.append(group[0] + 60.0 - now)
            if waits:
                return max(1, math.ceil(max(waits)))
            window.append(now)
            if private:
                self._buckets[chat_id] = (tokens - 1.0, now)
            else:
                self._groups[chat_id].append(now)
            return None
