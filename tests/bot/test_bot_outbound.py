"""The one outbound budget: pacing, the 429 pause, replies ahead of pushes, replies retried on 429."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from bot.outbound import OutboundLimiter, Priority, is_message_endpoint
from fakeapi import LocalBotAPI, RateLimits
from scheduler.clock import ManualClock
from tests.bot.conftest import BotHarness


async def test_the_limiter_paces_under_the_configured_rate() -> None:
    """(Moved from the engine's tests: the limiter owns the global rate now.)"""
    clock = ManualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    limiter = OutboundLimiter(rate_per_s=30.0, clock=clock.monotonic, sleep=clock.sleep)
    times: list[float] = []

    async def one(chat_id: int) -> None:
        ticket = await limiter.acquire(Priority.PUSH, chat_id)
        times.append(clock.monotonic())
        ticket.used = True
        limiter.release(ticket)

    await asyncio.gather(*(one(chat_id) for chat_id in range(1, 101)))
    await limiter.shutdown()
    # No one-second window ever holds more than 30 sends, and the rate stays above 95% of 30/s.
    assert len(times) == 100
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 30
    assert (len(times) - 1) / (times[-1] - times[0]) >= 0.95 * 30


async def test_calls_in_flight_count_against_the_one_second_window() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    limiter = OutboundLimiter(rate_per_s=3.0, rate_safety=1.0, clock=clock.monotonic, sleep=clock.sleep)
    held = [await limiter.acquire(Priority.PUSH, chat_id) for chat_id in (1, 2, 3)]
    started = clock.monotonic()
    waiting = asyncio.create_task(limiter.acquire(Priority.PUSH, 4))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # three in flight: a fourth would make four in one second
    for ticket in held:
        ticket.used = True
        limiter.release(ticket)
    fourth = await waiting
    assert clock.monotonic() - started >= 1.0
    limiter.release(fourth)
    await limiter.shutdown()


async def test_a_waiting_reply_is_granted_before_waiting_pushes() -> None:
    limiter = OutboundLimiter(rate_per_s=5.0, rate_safety=1.0)
    first = await limiter.acquire(Priority.PUSH, 1)  # the budget's next slot is 0.2 s away
    order: list[str] = []

    async def take(name: str, priority: Priority, chat_id: int) -> None:
        ticket = await limiter.acquire(priority, chat_id)
        order.append(name)
        limiter.release(ticket)

    tasks = [asyncio.create_task(take("push-a", Priority.PUSH, 2))]
    tasks.append(asyncio.create_task(take("push-b", Priority.PUSH, 3)))
    await asyncio.sleep(0.02)
    tasks.append(asyncio.create_task(take("reply", Priority.REPLY, 4)))
    await asyncio.gather(*tasks)
    limiter.release(first)
    await limiter.shutdown()
    assert order == ["reply", "push-a", "push-b"]


async def test_a_cancelled_wait_gives_its_place_back() -> None:
    limiter = OutboundLimiter(rate_per_s=2.0, rate_safety=1.0)
    first = await limiter.acquire(Priority.PUSH, 1)
    doomed = asyncio.create_task(limiter.acquire(Priority.PUSH, 2))
    await asyncio.sleep(0.01)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    started = time.monotonic()
    second = await limiter.acquire(Priority.PUSH, 3)
    assert time.monotonic() - started < 0.9  # the next slot, not one after the cancelled call
    for ticket in (first, second):
        limiter.release(ticket)
    await limiter.shutdown()


def test_only_message_methods_use_the_budget() -> None:
    assert is_message_endpoint("sendMessage") and is_message_endpoint("copyMessage")
    assert not is_message_endpoint("answerCallbackQuery")
    assert not is_message_endpoint("getMe")


async def test_pushes_are_spaced_per_chat_and_replies_are_not() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    limiter = OutboundLimiter(
        rate_per_s=1000.0, per_chat_rate_per_s=1.0, clock=clock.monotonic, sleep=clock.sleep
    )

    async def grant_times(priority: Priority, chat_id: int) -> list[float]:
        times = []
        for _ in range(3):
            ticket = await limiter.acquire(priority, chat_id)
            times.append(clock.monotonic())
            limiter.release(ticket)
        return times

    pushes = await grant_times(Priority.PUSH, 42)
    assert pushes[2] - pushes[0] >= 2.0  # 1/s to one chat
    replies = await grant_times(Priority.REPLY, 43)
    assert replies[2] - replies[0] < 0.1
    await limiter.shutdown()


async def test_a_reply_that_meets_a_429_is_retried_not_dropped(bot: BotHarness) -> None:
    alice = bot.user(8101)
    bot.api.faults.retry_after(1, method="sendMessage", times=2)
    started = time.monotonic()
    reply = await bot.command(alice, "help")
    assert reply.text is not None and reply.text.startswith("Just write your question")
    assert time.monotonic() - started >= 1.5  # waited retry_after twice
    limiter = bot.app.bot.rate_limiter
    assert isinstance(limiter, OutboundLimiter)
    assert limiter.retried_replies == 2


@pytest.mark.slow
async def test_a_burst_of_updates_gets_every_reply_within_telegram_limits(bot: BotHarness) -> None:
    api: LocalBotAPI = bot.api
    api.enforce_rate_limits(RateLimits())  # Telegram's: 30/s overall, 1/s per chat (bursts of 3)
    users = [bot.user(60_000 + i, f"U{i}") for i in range(120)]
    since = bot.mark()
    for user in users:
        api.user_command(user, "help")
    for user in users:
        await api.wait_for(lambda r, uid=user.id: r.chat_id == uid, 30.0, since=since)
    assert api.rate_limited_count == 0
    assert sorted(r.chat_id for r in api.sent[since:]) == sorted(u.id for u in users)
