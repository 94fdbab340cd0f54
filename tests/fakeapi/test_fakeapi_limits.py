"""Rate limits over a fake clock, and fault plans."""

from __future__ import annotations

import pytest

from fakeapi import FaultPlan, RateLimiter, RateLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_private_chat_allows_a_burst_then_one_per_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(private_burst=3), clock)
    assert [limiter.check(1, private=True) for _ in range(3)] == [None, None, None]
    assert limiter.check(1, private=True) == 1
    assert limiter.check(2, private=True) is None  # other chats are independent
    clock.now += 1.0
    assert limiter.check(1, private=True) is None
    assert limiter.check(1, private=True) == 1


def test_group_allows_twenty_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(), clock)
    for _ in range(20):
        assert limiter.check(-5, private=False) is None
        clock.now += 0.5
    retry = limiter.check(-5, private=False)
    assert retry is not None and 45 <= retry <= 50
    clock.now += retry
    assert limiter.check(-5, private=False) is None


def test_global_limit_and_raising_it() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(global_per_second=30), clock)
    allowed = sum(limiter.check(chat, private=True) is None for chat in range(1, 41))
    assert allowed == 30
    fast = RateLimiter(RateLimits(global_per_second=1000), clock)
    assert all(fast.check(chat, private=True) is None for chat in range(1, 1001))
    assert fast.check(5000, private=True) == 1


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimits(global_per_second=0)
    with pytest.raises(ValueError, match=">= 1"):
        RateLimits(private_burst=0)


def test_fault_plan_matches_method_chat_and_count() -> None:
    plan = FaultPlan()
    plan.forbidden(method="sendMessage", chat_ids=[7], times=2)
    plan.retry_after(9)
    assert plan.pending == 3
    first = plan.take("sendmessage", 7)
    assert first is not None and first.error is not None and first.error.error_code == 403
    other = plan.take("getMe", None)
    assert other is not None and other.error is not None and other.error.retry_after == 9
    assert plan.take("sendMessage", 8) is None
    assert plan.take("sendMessage", 7) is not None
    assert plan.take("sendMessage", 7) is None
    assert plan.pending == 0


def test_fault_plan_rejects_bad_arguments() -> None:
    plan = FaultPlan()
    with pytest.raises(ValueError, match="server error code"):
        plan.server_error(418)
    with pytest.raises(ValueError, match="delay"):
        plan.delay(-1)
    with pytest.raises(ValueError, match="times"):
        plan.retry_after(times=0)
