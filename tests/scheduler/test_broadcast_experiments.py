"""Broadcast experiments: stable assignment, holdout and control, conversions, the phased winner step."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from scheduler.clock import ManualClock
from scheduler.control import cancel_campaign
from scheduler.engine import DeliveryEngine
from scheduler.errors import ExperimentError
from scheduler.experiments import (
    ExperimentDraft,
    VariantDraft,
    arm_of,
    create_experiment_broadcast,
    decide_due_experiments,
    decide_experiment,
    in_test_phase,
)
from scheduler.policy import in_holdout
from scheduler.sender import OutgoingMessage
from store import EventRecord, append_events
from store.campaigns import get_campaign
from store.db import unit_of_work
from store.experiments import VariantButton, arm_counts, get_experiment
from store.models import Campaign, Delivery, Experiment
from store.vocabulary import EventKind, ExperimentStatus
from tests.scheduler.conftest import FakeSender, add_users

HOLDOUT_SHARE = 0.1


def _rows(engine: Engine, campaign_id: int) -> dict[int, Delivery]:
    with unit_of_work(engine) as session:
        rows = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
        return {row.user_id: row for row in rows}


def _draft(**changes: object) -> ExperimentDraft:
    values: dict[str, object] = {"variants": (VariantDraft("Hello A"), VariantDraft("Hello B"))}
    values.update(changes)
    return ExperimentDraft(**values)  # type: ignore[arg-type]


def _create(engine: Engine, clock: ManualClock, draft: ExperimentDraft, **kw: object) -> tuple[int, int]:
    return create_experiment_broadcast(
        engine,
        segment="all",
        draft=draft,
        at=clock.now(),
        now=clock.now(),
        holdout_share=float(kw.get("holdout_share", HOLDOUT_SHARE)),  # type: ignore[arg-type]
    )


def test_assignment_is_stable_across_processes_and_matches_the_stored_rows(
    sqlite_engine: Engine, clock: ManualClock
) -> None:
    add_users(sqlite_engine, range(1, 301))
    campaign_id, experiment_id = _create(sqlite_engine, clock, _draft(control_share=0.2))
    stored = {
        u: row.variant for u, row in _rows(sqlite_engine, campaign_id).items() if row.reason != "holdout"
    }
    here = {u: arm_of(experiment_id, u, ["A", "B"], 0.2) for u in stored}
    assert stored == here
    code = (
        "import json; from scheduler.experiments import arm_of; "
        f"print(json.dumps({{u: arm_of({experiment_id}, u, ['A', 'B'], 0.2) for u in {sorted(stored)}}}))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert {int(k): v for k, v in json.loads(other.stdout).items()} == here
    # Another experiment splits users independently: not the same partition.
    assert {u: arm_of(experiment_id + 1, u, ["A", "B"], 0.2) for u in stored} != here


def test_holdout_stays_outside_and_control_is_recorded_as_skipped(
    sqlite_engine: Engine, clock: ManualClock
) -> None:
    users = add_users(sqlite_engine, range(1, 1001))
    campaign_id, _ = _create(sqlite_engine, clock, _draft(control_share=0.25), holdout_share=0.2)
    rows = _rows(sqlite_engine, campaign_id)
    assert sorted(rows) == users
    held = {u for u in users if in_holdout(u, 0.2)}
    for user, row in rows.items():
        if user in held:
            assert (row.status, row.reason, row.variant) == ("skipped", "holdout", None)
        elif row.variant == "control":
            assert (row.status, row.reason) == ("skipped", "control")
        else:
            assert (row.status, row.reason, row.text) == ("pending", None, f"Hello {row.variant}")
    arms = [row.variant for u, row in rows.items() if u not in held]
    assert 0.19 < arms.count("control") / len(arms) < 0.31
    assert abs(arms.count("A") - arms.count("B")) < 0.12 * len(arms)


async def test_conversions_are_attributed_to_the_right_variant(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(engine, range(1, 61))
    buttons = (VariantButton("Try it"), VariantButton("Docs", url="https://example.com/docs"))
    draft = ExperimentDraft(
        (VariantDraft("Hello A", buttons), VariantDraft("Hello B", buttons)),
        control_share=0.2,
        goal="click",
        window_hours=24,
    )
    campaign_id, experiment_id = _create(engine, clock, draft, holdout_share=0.0)
    seen: list[OutgoingMessage] = []
    sender.hook = seen.append
    await DeliveryEngine(engine, sender, owner="t", clock=clock).drain()
    rows = _rows(engine, campaign_id)
    by_arm: dict[str, list[Delivery]] = {}
    for row in rows.values():
        by_arm.setdefault(row.variant or "", []).append(row)
    a, b, control = by_arm["A"], by_arm["B"], by_arm["control"]
    # Every sent message carries the variant's buttons: a signed-later push click and a URL.
    assert len(seen) == len(a) + len(b)
    for message in seen:
        row = rows[message.chat_id]
        assert [(x.text, x.push_click, x.url) for x in message.buttons] == [
            ("Try it", f"{row.id}.{experiment_id}.{row.variant}.0", None),
            ("Docs", None, "https://example.com/docs"),
        ]
    later = clock.now() + timedelta(hours=2)
    too_late = clock.now() + timedelta(hours=30)
    events = [
        # Two A users press the button; one B user presses a button of *another* delivery
        # (a forged or forwarded id): not B's conversion.
        EventRecord(a[0].user_id, later, EventKind.PUSH_CLICK, attributes={"delivery_id": a[0].id}),
        EventRecord(a[1].user_id, later, EventKind.PUSH_CLICK, attributes={"delivery_id": a[1].id}),
        EventRecord(b[0].user_id, later, EventKind.PUSH_CLICK, attributes={"delivery_id": a[2].id}),
        # A B user presses after the 24 h window: neither a return nor a conversion.
        EventRecord(b[1].user_id, too_late, EventKind.PUSH_CLICK, attributes={"delivery_id": b[1].id}),
        # A control user and another B user come back by themselves: returns, not clicks.
        EventRecord(control[0].user_id, later, EventKind.MESSAGE),
        EventRecord(b[2].user_id, later, EventKind.MESSAGE),
    ]
    append_events(engine, events)
    experiment = get_experiment(engine, experiment_id)
    assert experiment is not None
    counts = arm_counts(engine, experiment)
    assert counts["A"].sends == len(a) and counts["A"].converted == 2 and counts["A"].clicked == 2
    assert counts["A"].returned == 2
    assert counts["B"].converted == 0 and counts["B"].clicked == 0 and counts["B"].returned == 2
    assert counts["control"].sends == len(control) and counts["control"].returned == 1
    assert counts["control"].converted == 0


def _all_return(engine: Engine, campaign_id: int, arm: str, after: timedelta) -> None:
    """Every sent user of `arm` writes to the bot `after` their push."""
    rows = [r for r in _rows(engine, campaign_id).values() if r.variant == arm and r.status == "sent"]
    append_events(
        engine,
        [EventRecord(r.user_id, r.sent_at + after, EventKind.MESSAGE) for r in rows if r.sent_at is not None],
    )


async def test_winner_phase_sends_each_remaining_user_exactly_once(
    engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    users = add_users(engine, range(1, 801))
    draft = _draft(control_share=0.1, test_share=0.3, pick_winner_after=timedelta(hours=6))
    campaign_id, experiment_id = _create(engine, clock, draft)
    delivery = DeliveryEngine(engine, sender, owner="t", clock=clock)
    await delivery.drain()
    test_rows = _rows(engine, campaign_id)
    eligible = [u for u in users if not in_holdout(u, HOLDOUT_SHARE)]
    testers = {u for u in eligible if in_test_phase(experiment_id, u, 0.3)}
    assert {u for u, r in test_rows.items() if r.reason != "holdout"} == testers
    assert set(sender.delivered) == {u for u in testers if test_rows[u].variant != "control"}
    campaign = get_campaign(engine, campaign_id)
    assert campaign is not None and campaign.status == "running"  # not done: the winner is to come
    # Every B user returns within the window, no A user does: B wins.
    _all_return(engine, campaign_id, "B", timedelta(hours=1))
    clock.advance(timedelta(hours=5).total_seconds())
    assert decide_due_experiments(engine, now=clock.now(), holdout_share=HOLDOUT_SHARE) == []  # too early
    clock.advance(timedelta(hours=1, seconds=1).total_seconds())
    decided = decide_due_experiments(engine, now=clock.now(), holdout_share=HOLDOUT_SHARE)
    assert len(decided) == 1 and "winner B" in decided[0]
    await delivery.drain()
    rows = _rows(engine, campaign_id)
    assert sorted(rows) == users
    assert all(count == 1 for count in sender.delivered.values())
    winners = {u: r for u, r in rows.items() if r.phase == "winner"}
    assert set(winners) == set(eligible) - testers
    assert {(r.variant, r.text) for r in winners.values() if r.variant != "control"} == {("B", "Hello B")}
    assert all(r.status == "skipped" for r in winners.values() if r.variant == "control")
    experiment = get_experiment(engine, experiment_id)
    assert experiment is not None and experiment.status == "decided" and experiment.winner == "B"
    campaign = get_campaign(engine, campaign_id)
    assert campaign is not None and campaign.status == "done"


async def test_no_significant_winner_sends_the_default_and_says_so(
    sqlite_engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(sqlite_engine, range(1, 201))
    draft = _draft(test_share=0.5, pick_winner_after=timedelta(hours=1), default_variant="B")
    campaign_id, experiment_id = _create(sqlite_engine, clock, draft)
    await DeliveryEngine(sqlite_engine, sender, owner="t", clock=clock).drain()
    clock.advance(timedelta(hours=2).total_seconds())
    decision = decide_experiment(sqlite_engine, experiment_id, now=clock.now(), holdout_share=HOLDOUT_SHARE)
    assert decision is not None and "no significant winner" in decision and "default B" in decision
    experiment = get_experiment(sqlite_engine, experiment_id)
    assert experiment is not None and experiment.winner == "B" and experiment.decision == decision
    texts = {
        r.text for r in _rows(sqlite_engine, campaign_id).values() if r.phase == "winner" and r.reason is None
    }
    assert texts == {"Hello B"}


async def test_crash_between_phases_resumes_without_duplicates(
    engine: Engine, clock: ManualClock, sender: FakeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_users(engine, range(1, 301))
    draft = _draft(test_share=0.4, pick_winner_after=timedelta(hours=1))
    campaign_id, experiment_id = _create(engine, clock, draft)
    await DeliveryEngine(engine, sender, owner="first", clock=clock).drain()
    clock.advance(timedelta(hours=2).total_seconds())

    # The process dies in the middle of the winner step (rows half inserted): nothing is kept.
    import store.experiments as stored

    real_insert = stored._insert_deliveries

    def crash(connection: object, campaign: int, rows: object, *, now: object) -> int:
        real_insert(connection, campaign, list(rows)[:10], now=now)  # type: ignore[arg-type, call-overload]
        raise ConnectionError("killed mid-transaction")

    monkeypatch.setattr(stored, "_insert_deliveries", crash)
    with pytest.raises(ConnectionError):
        decide_experiment(engine, experiment_id, now=clock.now(), holdout_share=HOLDOUT_SHARE)
    monkeypatch.setattr(stored, "_insert_deliveries", real_insert)
    assert not any(r.phase == "winner" for r in _rows(engine, campaign_id).values())
    experiment = get_experiment(engine, experiment_id)
    assert experiment is not None and experiment.status == ExperimentStatus.TESTING

    # After the restart the job runs again (twice, say: two processes, or a re-run): one decision.
    first = decide_due_experiments(engine, now=clock.now(), holdout_share=HOLDOUT_SHARE)
    again = decide_due_experiments(engine, now=clock.now(), holdout_share=HOLDOUT_SHARE)
    assert len(first) == 1 and again == []
    assert decide_experiment(engine, experiment_id, now=clock.now(), holdout_share=HOLDOUT_SHARE) is None
    restarted = DeliveryEngine(engine, FakeSender(clock), owner="second", clock=clock)
    await restarted.drain()
    with unit_of_work(engine) as session:
        per_user = session.execute(
            select(Delivery.user_id, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.user_id)
        ).all()
    assert {n for _, n in per_user} == {1} and len(per_user) == 300
    assert not set(sender.delivered) & set(restarted.sender.delivered)  # type: ignore[attr-defined]


async def test_cancelled_during_the_test_phase_sends_no_winner(
    sqlite_engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(sqlite_engine, range(1, 101))
    draft = _draft(test_share=0.3, pick_winner_after=timedelta(minutes=30))
    campaign_id, experiment_id = _create(sqlite_engine, clock, draft)
    await DeliveryEngine(sqlite_engine, sender, owner="t", clock=clock).drain()
    cancel_campaign(sqlite_engine, campaign_id, now=clock.now())
    clock.advance(timedelta(hours=1).total_seconds())
    assert decide_due_experiments(sqlite_engine, now=clock.now(), holdout_share=HOLDOUT_SHARE) == []
    experiment = get_experiment(sqlite_engine, experiment_id)
    assert experiment is not None and experiment.status == ExperimentStatus.CANCELLED
    assert experiment.decision is not None and "cancelled" in experiment.decision
    assert not any(r.phase == "winner" for r in _rows(sqlite_engine, campaign_id).values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variants": (VariantDraft("only one"),)}, "2 to 8 variants"),
        ({"variants": tuple(VariantDraft(f"v{i}") for i in range(9))}, "2 to 8 variants"),
        ({"variants": (VariantDraft("a"), VariantDraft("  "))}, "variant B"),
        ({"control_share": 1.0}, "control share"),
        ({"test_share": 0.2}, "pick-winner-after"),
        ({"test_share": 1.5, "pick_winner_after": timedelta(hours=1)}, "test share"),
        ({"pick_winner_after": timedelta(hours=1)}, "needs a test share"),
        ({"default_variant": "C"}, "default variant 'C'"),
        ({"goal": "click"}, "callback"),
        ({"goal": "signup"}, "goal 'signup'"),
        (
            {"variants": (VariantDraft("a", (VariantButton("x", url="javascript:1"),)), VariantDraft("b"))},
            "https://",
        ),
    ],
)
def test_bad_drafts_are_refused_with_the_reason_and_store_nothing(
    sqlite_engine: Engine, clock: ManualClock, changes: dict[str, object], message: str
) -> None:
    add_users(sqlite_engine, [1, 2])
    with pytest.raises(ExperimentError, match=message):
        _create(sqlite_engine, clock, _draft(**changes))
    with unit_of_work(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(Experiment)) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


async def test_a_segment_gone_before_the_decision_is_said_in_the_decision(
    sqlite_engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(sqlite_engine, range(1, 41))
    draft = _draft(test_share=0.5, pick_winner_after=timedelta(hours=1))
    campaign_id, experiment_id = create_experiment_broadcast(
        sqlite_engine, segment="inactive:3", draft=draft, at=clock.now(), now=clock.now() + timedelta(days=5),
        holdout_share=0.0,
    )  # fmt: skip
    await DeliveryEngine(sqlite_engine, sender, owner="t", clock=clock).drain()
    with unit_of_work(sqlite_engine) as session:  # the segment's name no longer parses (a renamed segment)
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(segment="no such segment"))
    clock.advance(timedelta(hours=2).total_seconds())
    [decided] = decide_due_experiments(sqlite_engine, now=clock.now(), holdout_share=0.0)
    assert "could not be found" in decided and "sent to no one" in decided
    experiment = get_experiment(sqlite_engine, experiment_id)
    assert experiment is not None and experiment.status == "decided"
    assert not any(r.phase == "winner" for r in _rows(sqlite_engine, campaign_id).values())
    await DeliveryEngine(sqlite_engine, sender, owner="t", clock=clock).drain()
    campaign = get_campaign(sqlite_engine, campaign_id)
    assert campaign is not None and campaign.status == "done"  # closed: nothing more will come
