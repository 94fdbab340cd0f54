"""Re-engagement as read, plan, write: the pure planner by hand, and a fixed number of SQL statements."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, delete, event, select

from analytics.catalogue import FollowupMessage
from analytics.errors import CatalogueError, UnknownTargetError
from analytics.sequence import PopularityModel
from nlu import FALLBACK_INTENT, default_data_paths, load_training_data
from scheduler.clock import ManualClock
from scheduler.jobs import JobContext, run_job
from scheduler.policy import InactivityRule, QuietHours, holdout_bucket
from scheduler.reengagement import (
    Candidate,
    PlannedDeliveries,
    PlanningSnapshot,
    ReengagementConfig,
    plan_deliveries,
    plan_reengagement,
    read_planning_snapshot,
)
from store import load_settings
from store.analytics_results import NewSegment, complete_run, start_run
from store.campaigns import NewDelivery
from store.db import unit_of_work
from store.models import Campaign, Delivery, Event
from store.models import FollowupMessage as StoredFollowup
from tests.scheduler.conftest import START, add_users

WELCOME = FollowupMessage("welcome", "Welcome!", "欢迎！", ("greet",), default=True)
MISS_YOU = FollowupMessage(
    "miss_you",
    "We miss you.",
    "好久不见。",
    ("greet",),
    segments=("Dormant",),
    cooldown_days=30,
    default=True,
)
PRICING = FollowupMessage("pricing_tips", "Save with batches.", "批量更省钱。", ("pricing",))
# Holdout share 0.08 puts exactly user 3 in the holdout among users 1-8 (checked below).
CONFIG = ReengagementConfig(
    inactivity=InactivityRule(7, {"Power": 14}),
    holdout_share=0.08,
    quiet_hours=QuietHours(22, 8),
    exploration=0.0,
    seed=0,
)
NLU_LABELS = frozenset([*load_training_data(default_data_paths()).intents, FALLBACK_INTENT])


def test_the_holdout_of_the_hand_worked_example() -> None:
    assert [u for u in range(1, 9) if holdout_bucket(u) < 0.08] == [3]


def test_plan_deliveries_by_hand() -> None:
    ten_days = START - timedelta(days=10)
    snapshot = PlanningSnapshot(
        candidates=(
            Candidate(1, ten_days, language="en"),
            Candidate(2, ten_days, language="zh-hans", segment="Dormant"),
            Candidate(3, ten_days),  # holdout
            Candidate(4, ten_days),  # capped
            Candidate(5, ten_days, segment="Power"),  # 10 < 14 days: not due
            Candidate(6, ten_days, segment="Dormant", last_sent={"miss_you": START - timedelta(days=2)}),
            Candidate(7, ten_days, time_zone="Pacific/Auckland"),  # 01:00 NZDT: deferred to 08:00
            Candidate(
                8,
                ten_days,
                segment="Dormant",
                last_sent={"miss_you": START, "welcome": START - timedelta(days=1)},
            ),
        ),
        capped=frozenset({4}),
    )
    planned = plan_deliveries(
        snapshot, [WELCOME, MISS_YOU], CONFIG, now=START, model=None, rng=np.random.default_rng(0)
    )
    no_model = "no model is loaded"
    assert planned == PlannedDeliveries(
        deliveries=(
            NewDelivery(3, 3, "", START, status="skipped", reason="holdout"),
            NewDelivery(4, 4, "", START, status="skipped", reason="capped"),
            NewDelivery(
                1,
                1,
                "Welcome!",
                START,
                followup_id="welcome",
                score=1.0,
                choice_reason=f"global default: {no_model}",
            ),
            NewDelivery(
                2,
                2,
                "好久不见。",
                START,
                followup_id="miss_you",
                score=1.0,
                choice_reason=f"default for segment 'Dormant': {no_model}",
            ),
            # miss_you cools down for 30 days: the global default instead.
            NewDelivery(
                6,
                6,
                "Welcome!",
                START,
                followup_id="welcome",
                score=1.0,
                choice_reason=f"global default: {no_model}",
            ),
            NewDelivery(
                7,
                7,
                "Welcome!",
                START.replace(hour=19),
                followup_id="welcome",
                score=1.0,
                choice_reason=f"global default: {no_model}",
            ),
            NewDelivery(8, 8, "", START, status="skipped", reason="no_message"),
        ),
        candidates=7,
        deferred=1,
        skipped={"holdout": 1, "capped": 1, "no_message": 1},
        methods={"default": 4},
    )
    assert planned.pending == 4


def test_plan_deliveries_with_a_model_by_hand() -> None:
    # Popularity over ["pricing", "pricing", "greet"]: P(pricing) = 2/3, P(greet) = 1/3. No sends
    # yet, so both response rates are the prior 1/2: pricing 0.7 * 2/3 + 0.3 * 0.5 = 0.6167 beats
    # welcome 0.7 * 1/3 + 0.15 = 0.3833. A user with too short a history gets the default.
    model = PopularityModel(alpha=0.0).fit([["pricing", "pricing", "greet"]])
    ten_days = START - timedelta(days=10)
    snapshot = PlanningSnapshot(
        candidates=(
            Candidate(1, ten_days, history=("greet", "pricing", "greet")),
            Candidate(2, ten_days, history=("greet",)),
        )
    )
    planned = plan_deliveries(
        snapshot, [WELCOME, PRICING], CONFIG, now=START, model=model, rng=np.random.default_rng(0)
    )
    first, second = planned.deliveries
    assert (first.followup_id, first.score) == ("pricing_tips", pytest.approx(0.7 * 2 / 3 + 0.3 * 0.5))
    assert first.choice_reason == (
        "model: 0.67 probability of pricing next; no sends yet (prior response rate 50%); score 0.62"
    )
    assert (second.followup_id, second.choice_reason) == (
        "welcome",
        "global default: only 1 of the 3 events the model needs",
    )
    assert planned.methods == {"model": 1, "default": 1}


def test_plan_deliveries_is_pure() -> None:
    snapshot = PlanningSnapshot(
        candidates=tuple(Candidate(u, START - timedelta(days=9)) for u in range(1, 30))
    )
    explore = ReengagementConfig(exploration=1.0, seed=0)
    runs = [
        plan_deliveries(
            snapshot,
            [WELCOME, PRICING],
            explore,
            now=START,
            model=PopularityModel().fit([["greet"]]),
            rng=np.random.default_rng(5),
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert snapshot.candidates[0] == Candidate(1, START - timedelta(days=9))  # inputs untouched


def _population(engine: Engine, n: int) -> None:
    """Users 1..n inactive, each with events and a current segment, half with an earlier push.

    Anything a previous call planned or logged is cleared first, so two calls differ only in
    the number of users.
    """
    with unit_of_work(engine) as session:
        for table in (Delivery, Campaign, Event, StoredFollowup):
            session.execute(delete(table))
    ids = list(range(1, n + 1))
    add_users(engine, ids, seen_at=START - timedelta(days=10))
    with unit_of_work(engine) as session:
        for user_id in ids:
            for hour, intent in enumerate(["greet", "pricing", "billing"]):
                ts = START - timedelta(days=10, hours=hour)
                session.add(Event(user_id=user_id, ts=ts, kind="message", intent=intent))
        campaign = Campaign(
            kind="reengagement", name="old", segment="inactive:7", status="done", scheduled_at=START
        )
        session.add(campaign)
        session.flush()
        for user_id in ids[::2]:
            session.add(
                Delivery(
                    campaign_id=campaign.id,
                    user_id=user_id,
                    chat_id=user_id,
                    text="hi",
                    status="sent",
                    followup_id="pricing_tips",
                    sent_at=START - timedelta(days=20),
                    responded=user_id % 4 == 1,
                )
            )
    run_id = start_run(engine, algorithm="kmeans", params={})
    complete_run(
        engine,
        run_id,
        message="",
        metrics={},
        n_events=3 * n,
        segments=[
            NewSegment(0, "Dormant askers", "", n - n // 2, {}),
            NewSegment(1, "Power users", "", n // 2, {}),
        ],
        user_ids=ids,
        labels=[user_id % 2 for user_id in ids],
        rules=[],
    )


@contextmanager
def _statements(engine: Engine) -> Iterator[Counter[str]]:
    """Count the SQL statements sent to the database, by their first word."""
    counts: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counts[statement.split(None, 1)[0].upper()] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_planning_statements_do_not_grow_with_the_number_of_users(engine: Engine) -> None:
    measured: dict[int, dict[str, int]] = {}
    for n_users in (10, 100):
        _population(engine, n_users)
        with _statements(engine) as counts:
            plan = plan_reengagement(engine, CONFIG, now=START, use_active_model=False)
        assert plan.candidates == n_users and plan.pending > 0
        measured[n_users] = dict(counts)
    assert measured[10] == measured[100]
    # Reads: recipients, segments, capped, histories, cooldowns, stats, model run, the users' and
    # the groups' activity by hour for best-time sends (+ BEGIN on SQLite). Writes: stored
    # catalogue, its new rows, deactivation, campaign, deliveries.
    assert sum(measured[100].values()) <= 16, measured[100]


def test_unknown_catalogue_target_stops_planning_with_a_clear_error(
    sqlite_engine: Engine, tmp_path: Any
) -> None:
    add_users(sqlite_engine, [1], seen_at=START - timedelta(days=10))
    catalogue = tmp_path / "followups.yml"
    catalogue.write_text(
        "messages:\n"
        "  - id: pricing_tips\n"
        "    text: {en: Save., zh: 省钱。}\n"
        "    targets: [pricing, pricng]\n"
        "    default: true\n",
        encoding="utf-8",
    )
    config = ReengagementConfig(catalogue=catalogue, intents=NLU_LABELS, seed=0)
    with pytest.raises(
        UnknownTargetError, match=r"message 'pricing_tips': unknown target tokens \['pricng'\]"
    ):
        plan_reengagement(sqlite_engine, config, now=START, use_active_model=False)
    with unit_of_work(sqlite_engine) as session:
        assert session.scalars(select(Campaign)).all() == []  # nothing was written
    assert issubclass(UnknownTargetError, CatalogueError)
    # Without the NLU labels the same catalogue plans (the check needs them).
    unchecked = ReengagementConfig(catalogue=catalogue, seed=0)
    assert plan_reengagement(sqlite_engine, unchecked, now=START, use_active_model=False).pending == 1


def test_snapshot_reads_segments_histories_and_cooldowns(engine: Engine) -> None:
    _population(engine, 6)
    snapshot = read_planning_snapshot(engine, CONFIG, now=START)
    by_id = {c.user_id: c for c in snapshot.candidates}
    assert sorted(by_id) == list(range(1, 7))
    assert by_id[2].segment == "Dormant askers" and by_id[1].segment == "Power users"
    assert by_id[2].history == ("billing", "pricing", "greet")  # oldest first
    assert by_id[1].last_sent == {"pricing_tips": START - timedelta(days=20)}
    assert by_id[2].last_sent == {}
    assert snapshot.capped == frozenset()
    assert snapshot.stats["pricing_tips"].sent == 3


async def test_the_job_checks_the_catalogue_against_the_labels_it_is_given(
    sqlite_engine: Engine, tmp_path: Any
) -> None:
    add_users(sqlite_engine, [1], seen_at=START - timedelta(days=10))
    catalogue = tmp_path / "followups.yml"
    catalogue.write_text(
        "messages:\n  - id: hello\n    text: {en: Hi., zh: 你好。}\n"
        "    targets: [greet]\n    default: true\n",
        encoding="utf-8",
    )
    settings = load_settings(data_dir=tmp_path / "var", followup_catalogue=catalogue)
    clock = ManualClock(START)
    summary = await run_job("reengagement", JobContext(sqlite_engine, settings, clock, intents=NLU_LABELS))
    assert "1 to push" in summary
    without_greet = NLU_LABELS - {"greet"}  # a model trained without the intent
    with pytest.raises(UnknownTargetError, match=r"'hello': unknown target tokens \['greet'\]"):
        await run_job("reengagement", JobContext(sqlite_engine, settings, clock, intents=without_greet))
