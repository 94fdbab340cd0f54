"""Time as a dependency: the scheduler reads `now()` and sleeps through a `Clock`.

Tests and benchmarks pass a `ManualClock`, whose `sleep` advances time instead of waiting, so
quiet hours, back-off and 429 pauses are exercised without real waiting.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time (UTC-aware), monotonic seconds and an async sleep."""

    def now(self) -> datetime:
        """The current time, UTC-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for pacing)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (or, for a manual clock, pretend to)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, UTC-aware."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep`."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to, or when someone sleeps on it.

    Args:
        start: The initial time (UTC-aware).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware, got {start!r}")
        self._start = start.astimezone(UTC)
        self._offset = 0.0
        self.slept = 0.0

    def now(self) -> datetime:
        """The current (manual) time."""
        return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        """Seconds since `start`."""
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock back by {seconds}s")
        self._offset += seconds

    def set(self, when: datetime) -> None:
        """Jump to `when` (not earlier than now)."""
        self.advance((when - self.now()).total_seconds())

    async def sleep(self, seconds: float) -> None:
        """Advance by `seconds` at once, and yield to the event loop."""
        if seconds > 0:
            self._offset += seconds
            self.slept += seconds
        await asyncio.sleep(0)
