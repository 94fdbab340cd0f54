"""Scheduler test helpers: a scripted in-process Sender, users, and a manual clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from scheduler.clock import ManualClock
from scheduler.sender import OutgoingMessage, SendResult, SendStatus
from store import UserInfo, upsert_user

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon UTC


class FakeSender:
    """Records every message; `script` maps a chat id to the results of its next attempts.

    `hook` runs before each attempt (e.g. to change the database between scheduling and sending).
    As the `Sender` protocol asks, a scripted 429 (RETRY with `retry_after`) pauses every later
    `slot()` until it has passed; `slots` counts the slots taken.
    """

    def __init__(self, clock: ManualClock, *, latency_s: float = 0.0) -> None:
        self.clock = clock
        self.latency_s = latency_s
        self.script: dict[int, list[SendResult]] = {}
        self.attempts: list[tuple[float, int]] = []
        self.delivered: Counter[int] = Counter()
        self.hook: Callable[[OutgoingMessage], None] | None = None
        self.slots = 0
        self.in_slot = 0
        self._paused_until = 0.0
        self._next_id = 1

    @asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator[None]:
        wait = self._paused_until - self.clock.monotonic()
        if wait > 0:
            await self.clock.sleep(wait)
        self.slots += 1
        self.in_slot += 1
        try:
            yield
        finally:
            self.in_slot -= 1

    async def send(self, message: OutgoingMessage) -> SendResult:
        if self.hook is not None:
            self.hook(message)
        self.attempts.append((self.clock.monotonic(), message.chat_id))
        if self.latency_s:
            await self.clock.sleep(self.latency_s)
        queue = self.script.get(message.chat_id)
        if queue:
            result = queue.pop(0)
            if result.retry_after is not None:
                self._paused_until = max(self._paused_until, self.clock.monotonic() + result.retry_after)
            if result.status is not SendStatus.SENT:
                return result
        self.delivered[message.chat_id] += 1
        self._next_id += 1
        return SendResult(SendStatus.SENT, telegram_message_id=self._next_id)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sender(clock: ManualClock) -> FakeSender:
    return FakeSender(clock)


def add_users(
    engine: Engine, ids: Iterable[int], *, seen_at: datetime = START, time_zone: str | None = None
) -> list[int]:
    """Create users last seen at `seen_at`."""
    created = []
    for user_id in ids:
        upsert_user(engine, UserInfo(id=user_id, time_zone=time_zone), seen_at=seen_at)
        created.append(user_id)
    return created
