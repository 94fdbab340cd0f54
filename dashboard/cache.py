"""A small time-limited cache for the few aggregates that have no stored analytics result."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TTLCache:
    """Values computed at most once per `ttl_s` per key (per process), thread-safe."""

    def __init__(self, ttl_s: float, *, max_entries: int = 64) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value of `key`, or `compute()` stored for the next `ttl_s` seconds."""
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            if len(self._values) >= self.max_entries:
                self._values.pop(next(iter(self._values)))
            self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget everything (after a manager action that changes what is shown)."""
        with self._lock:
            self._values.clear()
