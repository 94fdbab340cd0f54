"""Re-engagement planning: eligibility, holdout, cap, quiet-hour deferral, measured returns and uplift."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select

from scheduler.clock import ManualClock
from scheduler.engine import DeliveryEngine
from scheduler.policy import QuietHours, in_holdout
from scheduler.reengagement import ReengagementConfig, plan_reengagement
from scheduler.reports import campaign_report, reengagement_uplift
from store import EventRecord, append_events, mark_blocked, set_opted_out
from store.campaign_reports import campaign_counts, measure_responses
from store.db import unit_of_work
from store.followups import response_stats
from store.models import Delivery, Event
from tests.scheduler.conftest import START, FakeSender, add_users

CONFIG = ReengagementConfig(seed=1, quiet_hours=QuietHours(22, 8))


def _rows(engine: Engine, campaign_id: int) -> dict[int, Delivery]:
    with unit_of_work(engine) as session:
        return {
            d.user_id: d for d in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
        }


def _population(engine: Engine) -> None:
    add_users(engine, range(1, 61), seen_at=START - timedelta(days=10))
    add_users(engine, range(61, 71), seen_at=START - timedelta(days=1))  # active: not due
    add_users(engine, [71, 72], seen_at=START - timedelta(days=10), time_zone="Pacific/Auckland")
    set_opted_out(engine, 5, True)
    mark_blocked(engine, 6)


async def test_plan_targets_inactive_reachable_users_with_holdout_and_choice(engine: Engine) -> None:
    _population(engine)
    plan = plan_reengagement(engine, CONFIG, now=START, use_active_model=False)
    rows = _rows(engine, plan.campaign_id)
    due = {u for u in [*range(1, 61), 71, 72] if u not in (5, 6)}
    assert set(rows) == due
    holdout = {u for u in due if in_holdout(u, 0.1)}
    assert holdout  # the fixed ids put a few users in the holdout
    assert {u for u, d in rows.items() if d.status == "skipped"} == holdout
    assert all(rows[u].reason == "holdout" for u in holdout)
    pushed = [d for u, d in rows.items() if u not in holdout]
    assert all(
        d.status == "pending" and d.followup_id and d.choice_reason and d.score is not None for d in pushed
    )
    assert plan.candidates == len(due) and plan.pending == len(pushed)
    # 01:00 in Auckland (NZDT, UTC+13): deferred to 08:00 local, 19:00 UTC.
    for user_id in (71, 72):
        if user_id not in holdout:
            assert rows[user_id].due_at == START.replace(hour=19)


async def test_frequency_cap_across_automated_campaigns(engine: Engine, clock: ManualClock) -> None:
    _population(engine)
    first = plan_reengagement(engine, CONFIG, now=START, use_active_model=False)
    await DeliveryEngine(engine, FakeSender(clock), owner="t", clock=clock).drain()
    second = plan_reengagement(engine, CONFIG, now=START + timedelta(days=1), use_active_model=False)
    assert second.pending == 0
    assert second.skipped["capped"] == first.pending
    third = plan_reengagement(engine, CONFIG, now=START + timedelta(days=8), use_active_model=False)
    pushed_first = {u for u, d in _rows(engine, first.campaign_id).items() if d.status == "sent"}
    pending_third = {u for u, d in _rows(engine, third.campaign_id).items() if d.status == "pending"}
    assert pushed_first <= pending_third  # the cap (7 days) has passed
    assert "capped" not in third.skipped


async def test_quiet_hours_deferral_is_respected_by_the_engine(engine: Engine, clock: ManualClock) -> None:
    add_users(engine, range(1, 30), seen_at=START - timedelta(days=10), time_zone="Pacific/Auckland")
    plan = plan_reengagement(engine, CONFIG, now=START, use_active_model=False)
    sender = FakeSender(clock)
    await DeliveryEngine(engine, sender, owner="t", clock=clock).drain()
    assert sender.attempts
    first_send = min(t for t, _ in sender.attempts)
    assert START + timedelta(seconds=first_send) >= START.replace(hour=19)  # 08:00 in Auckland
    assert sum(sender.delivered.values()) == plan.pending


async def test_returns_are_measured_and_give_the_uplift(engine: Engine, clock: ManualClock) -> None:
    _population(engine)
    plan = plan_reengagement(engine, CONFIG, now=START, use_active_model=False)
    await DeliveryEngine(engine, FakeSender(clock), owner="t", clock=clock).drain()
    rows = _rows(engine, plan.campaign_id)
    sent = sorted(u for u, d in rows.items() if d.status == "sent")
    holdout = sorted(u for u, d in rows.items() if d.reason == "holdout")
    returners = sent[: len(sent) // 2] + holdout[:1]
    append_events(
        engine,
        [
            EventRecord(user_id=u, ts=START + timedelta(hours=30), kind="message", intent="pricing")
            for u in returners
        ],
    )
    late = sent[-1]  # returns after the 48 h window: not a response
    append_events(engine, [EventRecord(user_id=late, ts=START + timedelta(hours=60), kind="message")])
    clock.set(START + timedelta(hours=70))
    assert measure_responses(engine, now=clock.now()) == len(sent) + len(holdout)
    assert measure_responses(engine, now=clock.now()) == 0  # measured once
    with unit_of_work(engine) as session:
        responses = session.scalar(select(func.count()).where(Event.kind == "push_response"))
    assert responses == len(sent) // 2
    uplift = reengagement_uplift(engine)
    assert (uplift.pushed, uplift.pushed_returned) == (len(sent), len(sent) // 2)
    assert (uplift.holdout, uplift.holdout_returned) == (len(holdout), 1)
    assert uplift.interval is not None and uplift.interval[0] < uplift.difference < uplift.interval[1]  # type: ignore[operator]
    report = campaign_report(engine, plan.campaign_id, now=clock.now(), rate_per_s=30)
    assert report.counts.returned == len(sent) // 2
    assert report.counts.skipped_by_reason["holdout"] == len(holdout)
    assert any("uplift" in line for line in report.lines())
    with unit_of_work(engine) as session:
        stats = response_stats(session)
    assert sum(counts.sent for counts in stats.values()) == len(sent)


async def test_open_windows_count_pushed_and_holdout_alike(engine: Engine, clock: ManualClock) -> None:
    # While the 48 h windows are still open, both groups count every row with the returns seen
    # so far; counting only holdout users who already returned would show them at 100%.
    _population(engine)
    plan = plan_reengagement(engine, CONFIG, now=START, use_active_model=False)
    await DeliveryEngine(engine, FakeSender(clock), owner="t", clock=clock).drain()
    rows = _rows(engine, plan.campaign_id)
    sent = sorted(u for u, d in rows.items() if d.status == "sent")
    holdout = sorted(u for u, d in rows.items() if d.reason == "holdout")
    assert len(holdout) >= 2
    returners = [sent[0], holdout[0]]
    append_events(
        engine, [EventRecord(user_id=u, ts=START + timedelta(hours=2), kind="message") for u in returners]
    )
    counts = campaign_counts(engine, plan.campaign_id, now=START + timedelta(hours=3))
    assert (counts.returned, counts.holdout, counts.holdout_returned) == (1, len(holdout), 1)
