"""The delivery engine against a scripted sender: outcomes, retries, 429s, opt-out, crash recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from scheduler.clock import ManualClock, SystemClock
from scheduler.engine import DeliveryEngine, EngineConfig
from scheduler.planning import create_broadcast
from scheduler.sender import SendResult, SendStatus
from store import set_opted_out
from store.campaign_reports import campaign_counts
from store.campaigns import get_campaign
from store.db import unit_of_work
from store.deliveries import begin_send, claim_batch, recover_sending
from store.models import Delivery, Event, User
from store.vocabulary import DeliveryStatus, SendVerdict
from tests.scheduler.conftest import FakeSender, add_users


def _statuses(engine: Engine, campaign_id: int) -> dict[int, tuple[str, str | None]]:
    with unit_of_work(engine) as session:
        rows = session.execute(
            select(Delivery.user_id, Delivery.status, Delivery.reason).where(
                Delivery.campaign_id == campaign_id
            )
        )
        return {user_id: (status, reason) for user_id, status, reason in rows}


async def test_broadcast_delivers_each_recipient_once_and_logs_push_received(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, range(1, 21))
    campaign_id = create_broadcast(engine, segment="all", text="Hello", at=clock.now(), now=clock.now())
    delivery = DeliveryEngine(engine, sender, owner="t", clock=clock)
    stats = await delivery.drain()
    assert stats.outcomes["sent"] == 20
    assert dict(sender.delivered) == {user_id: 1 for user_id in range(1, 21)}
    assert set(_statuses(engine, campaign_id).values()) == {("sent", None)}
    info = get_campaign(engine, campaign_id)
    assert info is not None and info.status == "done"
    with unit_of_work(engine) as session:
        kinds = list(session.scalars(select(Event.kind).where(Event.kind == "push_received")))
    assert len(kinds) == 20


async def test_outcomes_blocked_rejected_retry_and_exhausted(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, [1, 2, 3, 4])
    sender.script = {
        1: [SendResult(SendStatus.BLOCKED, error="Forbidden")],
        2: [SendResult(SendStatus.REJECTED, error="chat not found")],
        3: [SendResult(SendStatus.RETRY, error="502"), SendResult(SendStatus.RETRY, error="502")],
        4: [SendResult(SendStatus.RETRY, error="timeout")] * 10,
    }
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    config = EngineConfig(max_retries=3, backoff_base_s=1.0)
    await DeliveryEngine(engine, sender, owner="t", clock=clock, config=config).drain()
    assert _statuses(engine, campaign_id) == {
        1: ("blocked", "blocked"),
        2: ("failed", "rejected"),
        3: ("sent", None),
        4: ("failed", "retries_exhausted"),
    }
    assert sum(1 for _, chat in sender.attempts if chat == 4) == 4  # first try + 3 retries
    with unit_of_work(engine) as session:
        user = session.get(User, 1)
        assert user is not None and user.blocked


async def test_429_pauses_all_sends_without_using_up_retries(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, [1, 2, 3])
    storm = [SendResult(SendStatus.RETRY, error="429", retry_after=5.0)] * 8
    sender.script = {1: list(storm)}
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    config = EngineConfig(max_retries=2, lanes=1)  # one lane: no other send is already under way
    await DeliveryEngine(engine, sender, owner="t", clock=clock, config=config).drain()
    assert _statuses(engine, campaign_id)[1] == ("sent", None)  # 8 x 429 > 2 retries, still sent
    # After each 429 nothing at all is attempted for 5 seconds.
    first_429 = sender.attempts[0][0]
    assert all(t >= first_429 + 5.0 for t, _ in sender.attempts[1:])


async def test_opt_out_between_scheduling_and_sending_skips(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, [1, 2])
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    set_opted_out(engine, 2, True)
    await DeliveryEngine(engine, sender, owner="t", clock=clock).drain()
    assert _statuses(engine, campaign_id) == {1: ("sent", None), 2: ("skipped", "opted_out")}
    assert 2 not in sender.delivered


async def test_crash_recovery_marks_the_in_flight_row_ambiguous(engine: Engine, clock: ManualClock) -> None:
    add_users(engine, [1, 2, 3])
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    from store.campaigns import start_due_campaigns

    start_due_campaigns(engine, now=clock.now())
    tasks = claim_batch(engine, owner="dead", now=clock.now(), limit=10)
    assert begin_send(engine, tasks[0].id, owner="dead", now=clock.now()) is SendVerdict.SEND
    # ... the process dies here, with one row `sending` and two claimed rows pending.
    ambiguous = recover_sending(engine)
    assert [(a.user_id, a.claimed_by) for a in ambiguous] == [(tasks[0].user_id, "dead")]
    sender = FakeSender(clock)
    await DeliveryEngine(engine, sender, owner="new", clock=clock).drain()
    statuses = _statuses(engine, campaign_id)
    assert statuses[tasks[0].user_id] == ("ambiguous", "ambiguous")
    assert sorted(sender.delivered) == sorted(u for u in (1, 2, 3) if u != tasks[0].user_id)
    counts = campaign_counts(engine, campaign_id, now=clock.now())
    assert counts.failed_by_reason == {}
    assert counts.ambiguous == 1
    assert counts.done == 3


async def test_lease_fencing_stops_a_sender_without_the_lease(engine: Engine, clock: ManualClock) -> None:
    from scheduler.errors import LeaseLostError
    from store.leases import acquire_lease

    add_users(engine, [1])
    create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    assert acquire_lease(engine, "scheduler", "other", ttl=timedelta(seconds=30), now=clock.now())
    sender = FakeSender(clock)
    delivery = DeliveryEngine(engine, sender, owner="me", clock=clock, lease=("scheduler", "me"))
    with pytest.raises(LeaseLostError):
        await delivery.drain()
    assert sender.attempts == []


async def test_an_automated_push_held_up_past_its_day_is_skipped_for_quiet_hours(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    from scheduler.reengagement import ReengagementConfig, plan_reengagement

    add_users(engine, [1, 2, 3], seen_at=clock.now() - timedelta(days=30), time_zone="UTC")
    plan = plan_reengagement(
        engine, ReengagementConfig(holdout_share=0.0), now=clock.now(), use_active_model=False
    )
    clock.set(clock.now() + timedelta(hours=13))  # 01:00 UTC: quiet, and 13 h after the rows were due
    await DeliveryEngine(engine, sender, owner="t", clock=clock).drain(max_idle_wait_s=0)
    assert set(_statuses(engine, plan.campaign_id).values()) == {("skipped", "quiet_hours")}
    assert sender.attempts == []


async def test_an_error_after_the_request_was_written_is_ambiguous_and_never_resent(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, [1, 2])
    sender.script = {1: [SendResult(SendStatus.AMBIGUOUS, error="httpx.ReadError")]}
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    stats = await DeliveryEngine(engine, sender, owner="t", clock=clock).drain()
    assert _statuses(engine, campaign_id) == {1: ("ambiguous", "ambiguous"), 2: ("sent", None)}
    assert sum(1 for _, chat in sender.attempts if chat == 1) == 1  # one attempt, no retry
    assert stats.outcomes[DeliveryStatus.AMBIGUOUS] == 1
    info = get_campaign(engine, campaign_id)
    assert info is not None and info.status == "done"


async def test_a_sender_that_raises_leaves_the_row_ambiguous(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, [1])

    def explode(_message: object) -> None:
        raise OSError("connection reset after the request was written")

    sender.hook = explode
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    await DeliveryEngine(engine, sender, owner="t", clock=clock).drain()
    assert _statuses(engine, campaign_id) == {1: ("ambiguous", "ambiguous")}


async def test_the_slot_is_taken_before_the_row_is_marked_sending(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, [1, 2, 3])
    create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    seen: list[tuple[int, list[str]]] = []

    def look(message: object) -> None:
        with unit_of_work(engine) as session:
            sending = list(session.scalars(select(Delivery.status).where(Delivery.status == "sending")))
        seen.append((sender.in_slot, sending))

    sender.hook = look
    await DeliveryEngine(engine, sender, owner="t", clock=clock, config=EngineConfig(lanes=1)).drain()
    assert sender.slots == 3
    assert seen == [(1, ["sending"])] * 3


async def test_lanes_keep_enough_sends_in_flight_at_a_slow_round_trip(engine: Engine) -> None:
    clock = SystemClock()  # a manual clock would run the lanes' sleeps one after another
    sender = FakeSender(clock, latency_s=0.05)  # type: ignore[arg-type]
    add_users(engine, range(1, 81))
    create_broadcast(engine, segment="all", text="Hi", at=clock.now(), now=clock.now())
    config = EngineConfig()  # the default lanes
    most = 0

    def count(_message: object) -> None:
        nonlocal most
        most = max(most, sender.in_slot)

    sender.hook = count
    await DeliveryEngine(engine, sender, owner="t", clock=clock, config=config).drain()
    assert sum(sender.delivered.values()) == 80
    # Every lane has a send in flight while the round trip lasts, and never more: a crash
    # leaves at most `lanes` rows ambiguous. 16 lanes carry 30/s up to ~0.5 s round trips.
    assert most == config.lanes == 16
    assert config.reachable_rate(0.3) == pytest.approx(0.99 * 30)
    assert EngineConfig(lanes=1).reachable_rate(0.08) < 13  # the single lane of issue 14
