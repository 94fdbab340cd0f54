"""Experiment reports: per-arm figures checked against SciPy and by hand; the follow-up bandit report."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from scipy import stats
from sqlalchemy import Engine, select

from scheduler.clock import ManualClock
from scheduler.engine import DeliveryEngine
from scheduler.experiment_reports import experiment_report, followup_report
from scheduler.experiments import ExperimentDraft, VariantDraft, create_experiment_broadcast
from store import EventRecord, append_events
from store.campaigns import NewDelivery
from store.db import unit_of_work
from store.experiments import VariantButton
from store.models import Delivery
from store.plans import NewCampaign, add_campaign
from store.vocabulary import CampaignKind, DeliveryStatus, EventKind
from tests.scheduler.conftest import START, FakeSender, add_users


def _wilson_scipy(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


async def test_broadcast_report_matches_scipy_and_hand_computed_lift(
    sqlite_engine: Engine, clock: ManualClock, sender: FakeSender
) -> None:
    add_users(sqlite_engine, range(1, 401))
    draft = ExperimentDraft(
        (VariantDraft("Hello A"), VariantDraft("Hello B", (VariantButton("Docs", url="https://x.example"),))),
        control_share=0.2,
    )
    campaign_id, experiment_id = create_experiment_broadcast(
        sqlite_engine, segment="all", draft=draft, at=clock.now(), now=clock.now(), holdout_share=0.0
    )
    await DeliveryEngine(sqlite_engine, sender, owner="t", clock=clock).drain()
    with unit_of_work(sqlite_engine) as session:
        rows = list(session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)))
    # Returns: every 2nd A user, every 4th B user, every 5th control user (within 48 h).
    every = {"A": 2, "B": 4, "control": 5}
    expected: dict[str, list[int]] = {arm: [0, 0] for arm in every}
    events = []
    for index, row in enumerate(sorted(rows, key=lambda r: r.user_id)):
        arm = row.variant or ""
        expected[arm][0] += 1
        if index % every[arm] == 0:
            expected[arm][1] += 1
            events.append(EventRecord(row.user_id, clock.now() + timedelta(hours=3), EventKind.MESSAGE))
    append_events(sqlite_engine, events)
    report = experiment_report(sqlite_engine, experiment_id)
    arms = {arm.arm: arm for arm in report.arms}
    assert list(arms) == ["A", "B", "control"]
    for arm, (n, k) in expected.items():
        result = arms[arm].result
        assert (result.sends, result.conversions) == (n, k)
        assert result.interval == pytest.approx(_wilson_scipy(k, n), abs=1e-9)
    table = [[k, n - k] for n, k in (expected["A"], expected["B"])]
    chi = stats.chi2_contingency(table, correction=False)
    assert report.chi_squared == pytest.approx((chi.statistic, chi.pvalue))
    # Lift of A over control by hand: Newcombe's method 10 from the two Wilson intervals.
    (n_a, k_a), (n_c, k_c) = expected["A"], expected["control"]
    p_a, p_c = k_a / n_a, k_c / n_c
    (la, ua), (lc, uc) = _wilson_scipy(k_a, n_a), _wilson_scipy(k_c, n_c)
    hand = (p_a - p_c - math.hypot(p_a - la, uc - p_c), p_a - p_c + math.hypot(ua - p_a, p_c - lc))
    assert arms["A"].result.lift == pytest.approx(p_a - p_c)
    assert arms["A"].result.lift_interval == pytest.approx(hand, abs=1e-9)
    assert arms["control"].result.lift is None
    text = "\n".join(report.lines())
    assert "“Docs” are not trackable" in text and "chi-squared across variants" in text
    data = report.as_dict()
    assert data["arms"][1]["untrackable_buttons"] == ["Docs"]
    assert data["chi_squared"]["p_value"] == pytest.approx(chi.pvalue)


def test_followup_bandit_report_has_an_arm_per_message_and_the_holdout_as_control(engine: Engine) -> None:
    add_users(engine, range(1, 61))
    sent_at = START
    # Follow-up "a": 20 sent, 10 returned; "b": 20 sent, 4 returned; holdout: 20, 2 returned.
    plan = []
    for user in range(1, 61):
        if user <= 20:
            plan.append(NewDelivery(user, user, "a", sent_at, DeliveryStatus.SENT, followup_id="a"))
        elif user <= 40:
            plan.append(NewDelivery(user, user, "b", sent_at, DeliveryStatus.SENT, followup_id="b"))
        else:
            plan.append(NewDelivery(user, user, "", sent_at, DeliveryStatus.SKIPPED, reason="holdout"))
    with unit_of_work(engine) as session:
        campaign_id = add_campaign(
            session, NewCampaign(CampaignKind.REENGAGEMENT, "re", "inactive", None, START), plan, now=START
        )
        for row in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)):
            row.sent_at = sent_at if row.status == DeliveryStatus.SENT else None
    returners = [*range(1, 11), *range(21, 25), 41, 42]
    append_events(engine, [EventRecord(u, START + timedelta(hours=5), EventKind.MESSAGE) for u in returners])
    # A return after 48 h does not count.
    append_events(engine, [EventRecord(15, START + timedelta(hours=49), EventKind.MESSAGE)])
    report = followup_report(engine, now=START + timedelta(days=3))
    arms = {arm.arm: arm.result for arm in report.arms}
    assert [(a, r.sends, r.conversions) for a, r in arms.items()] == [
        ("a", 20, 10),
        ("b", 20, 4),
        ("holdout", 20, 2),
    ]
    assert arms["a"].interval == pytest.approx(_wilson_scipy(10, 20))
    assert arms["a"].lift == pytest.approx(0.5 - 0.1)
    chi = stats.chi2_contingency([[10, 10], [4, 16]], correction=False)
    assert report.chi_squared == pytest.approx((chi.statistic, chi.pvalue))
    assert report.kind == "followup" and "bandit" in report.name
