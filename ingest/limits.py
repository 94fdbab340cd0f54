"""Per-write-key rate limit: a token bucket per key, safe across the server's worker threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class KeyRateLimiter:
    """`rate` calls per second per key, with bursts up to `burst` calls.

    Args:
        rate: Tokens added per second.
        burst: Bucket size (default: one second's worth, at least 1).
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 when allowed, else the seconds until one is free."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else float("inf")
