"""Variants on follow-up catalogue messages: stable arms, holdout outside, control skips, buttons, report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from analytics.catalogue import load_catalogue
from analytics.experiments import chi_squared_test, newcombe_interval, wilson_interval
from scheduler.clock import ManualClock
from scheduler.engine import DeliveryEngine
from scheduler.experiment_reports import followup_variant_report
from scheduler.policy import QuietHours, in_holdout
from scheduler.reengagement import ReengagementConfig, plan_reengagement
from scheduler.sender import OutgoingMessage
from store import EventRecord, append_events
from store.db import unit_of_work
from store.models import Delivery, Experiment, ExperimentVariant
from tests.scheduler.conftest import START, FakeSender, add_users

CATALOGUE = """
messages:
  - id: tips
    text: {en: "Tips.", zh: "提示。"}
    targets: [pricing]
    default: true
    control_share: 0.25
    variants:
      - text: {en: "Save with batches.", zh: "批量更省钱。"}
        buttons: [{text: "Show me"}, {text: "Docs", url: "https://example.com/docs"}]
      - text: {en: "Batches cost less.", zh: "批量更便宜。"}
      - text: {en: "Try batches.", zh: "试试批量。"}
"""
USERS = range(1, 201)


def _config(tmp_path: Path, text: str = CATALOGUE) -> ReengagementConfig:
    path = tmp_path / "followups.yml"
    path.write_text(text, encoding="utf-8")
    return ReengagementConfig(
        seed=1, quiet_hours=QuietHours(22, 8), catalogue=path, best_time=False, holdout_share=0.1
    )


def _rows(engine: Engine, campaign_id: int) -> dict[int, Delivery]:
    with unit_of_work(engine) as session:
        query = select(Delivery).where(Delivery.campaign_id == campaign_id)
        return {d.user_id: d for d in session.scalars(query)}


async def test_arms_follow_the_stable_hash_with_holdout_outside_and_control_skipped(
    engine: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    add_users(engine, USERS, seen_at=START - timedelta(days=10))
    config = _config(tmp_path)
    message = load_catalogue(config.catalogue).get("tips")
    first = plan_reengagement(engine, config, now=START, use_active_model=False)
    rows = _rows(engine, first.campaign_id)
    holdout = {u for u in USERS if in_holdout(u, 0.1)}
    assert holdout and all(rows[u].reason == "holdout" and rows[u].variant is None for u in holdout)
    chosen = {u: d for u, d in rows.items() if u not in holdout}
    assert len(chosen) == len(USERS) - len(holdout) and all(d.followup_id == "tips" for d in chosen.values())
    control = {u for u, d in chosen.items() if d.variant == "control"}
    assert control and first.skipped["control"] == len(control)
    for user, row in chosen.items():
        arm = message.arm_for(user)
        if arm is None:
            assert (row.status, row.reason, row.variant) == ("skipped", "control", "control")
        else:
            assert (row.status, row.variant, row.text) == ("pending", arm.key, arm.text_en)
    assert {d.variant for d in chosen.values()} == {"A", "B", "C", "control"}
    assert first.pending == len(chosen) - len(control)

    sent: list[OutgoingMessage] = []
    sender = FakeSender(clock)
    sender.hook = sent.append
    await DeliveryEngine(engine, sender, owner="t", clock=clock).drain()
    assert len(sent) == first.pending and not {m.chat_id for m in sent} & (holdout | control)
    by_text = {m.text: m for m in sent}
    a = by_text["Save with batches."]
    assert [b.text for b in a.buttons] == ["Show me", "Docs"] and a.buttons[
        1
    ].url == "https://example.com/docs"
    assert a.buttons[0].push_click and a.buttons[0].push_click.split(".")[2] == "A"
    assert by_text["Batches cost less."].buttons == ()

    second = plan_reengagement(engine, config, now=START + timedelta(days=15), use_active_model=False)
    again = _rows(engine, second.campaign_id)
    assert {u: d.variant for u, d in again.items()} == {u: d.variant for u, d in rows.items()}
    with unit_of_work(engine) as session:
        experiments = session.scalars(select(Experiment).where(Experiment.kind == "followup")).all()
        assert [(e.name, e.campaign_id, e.control_share) for e in experiments] == [
            ("followup:tips", None, 0.25)
        ]
        assert session.scalar(select(func.count()).select_from(ExperimentVariant)) == 3


async def test_report_gives_per_variant_figures_against_control(
    engine: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    add_users(engine, USERS, seen_at=START - timedelta(days=10))
    plan = plan_reengagement(engine, _config(tmp_path), now=START, use_active_model=False)
    await DeliveryEngine(engine, FakeSender(clock), owner="t", clock=clock).drain()
    rows = _rows(engine, plan.campaign_id)
    returners = [u for u in USERS if u % 3 == 0 or (u % 5 == 0 and rows[u].variant == "A")]
    append_events(
        engine, [EventRecord(user_id=u, ts=START + timedelta(hours=2), kind="message") for u in returners]
    )
    late = [u for u in USERS if u % 7 == 0 and u not in returners]  # after the 48 h window: not counted
    append_events(
        engine, [EventRecord(user_id=u, ts=START + timedelta(hours=60), kind="message") for u in late]
    )
    report = followup_variant_report(engine, "tips")
    assert report.kind == "followup" and report.goal == "return"
    arms = {arm.arm: arm for arm in report.arms}
    assert list(arms) == ["A", "B", "C", "control"]
    expected: dict[str, tuple[int, int]] = {}
    for key in arms:
        users = [u for u, d in rows.items() if d.variant == key]
        expected[key] = (sum(u in returners for u in users), len(users))
        assert (arms[key].result.conversions, arms[key].sends) == expected[key]
        assert arms[key].result.interval == wilson_interval(*expected[key])
    assert (
        "holdout" not in arms and sum(n for _, n in expected.values()) == len(rows) - plan.skipped["holdout"]
    )
    control = expected["control"]
    for key in "ABC":
        assert arms[key].result.lift_interval == newcombe_interval(*expected[key], *control)
    # across the message arms only: the control gets no message
    assert report.chi_squared == chi_squared_test(
        [expected[k][0] for k in "ABC"], [expected[k][1] for k in "ABC"]
    )
    assert any("A" in line and "lift vs control" in line for line in report.lines())


async def test_a_variant_removed_from_the_catalogue_keeps_its_figures(
    engine: Engine, tmp_path: Path, clock: ManualClock
) -> None:
    add_users(engine, USERS, seen_at=START - timedelta(days=10))
    first = plan_reengagement(engine, _config(tmp_path), now=START, use_active_model=False)
    await DeliveryEngine(engine, FakeSender(clock), owner="t", clock=clock).drain()
    sent_c = sum(d.variant == "C" and d.status == "sent" for d in _rows(engine, first.campaign_id).values())
    without_c = CATALOGUE.split('      - text: {en: "Try batches.')[0]
    plan_reengagement(
        engine, _config(tmp_path, without_c), now=START + timedelta(days=1), use_active_model=False
    )
    report = followup_variant_report(engine, "tips")
    arms = {arm.arm: arm for arm in report.arms}
    assert list(arms) == ["A", "B", "C", "control"]
    assert arms["C"].sends == sent_c > 0 and arms["C"].label == "no longer in the catalogue"
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(ExperimentVariant)) == 2
