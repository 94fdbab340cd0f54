"""Analytics results in the store: rules arrive as objects (not dicts), segments read in one query."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from analytics.rules import AssociationRule
from store.analytics_results import (
    NewSegment,
    complete_run,
    current_segment_names,
    get_run,
    run_memberships,
    run_rules,
    run_segments,
    start_run,
)
from store.db import unit_of_work
from store.models import User

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
RULE = AssociationRule(
    antecedents=("intent:pricing",),
    consequents=("churned_30d",),
    support=0.2,
    confidence=0.8,
    lift=2.5,
    leverage=0.1,
    conviction=None,
    sentence="Of users who asked about pricing, 80% also went silent for 30+ days.",
)


def _run(engine: Engine, users: list[int], labels: list[int]) -> int:
    run_id = start_run(engine, algorithm="kmeans", params={})
    complete_run(
        engine,
        run_id,
        message="ok",
        metrics={},
        n_events=0,
        segments=[
            NewSegment(0, "Zero", "", labels.count(0), {}),
            NewSegment(1, "One", "", labels.count(1), {}),
        ],
        user_ids=users,
        labels=labels,
        rules=[RULE],
    )
    return run_id


def test_rules_are_stored_from_the_dataclass_and_read_back(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        session.add_all(User(id=u, first_seen=NOW, last_seen=NOW) for u in (1, 2, 3))
    run_id = _run(engine, [1, 2, 3], [0, 1, 1])
    (stored,) = run_rules(engine, run_id)
    assert (stored.antecedents, stored.consequents, stored.sentence) == (
        RULE.antecedents,
        RULE.consequents,
        RULE.sentence,
    )
    assert (stored.support, stored.confidence, stored.lift, stored.conviction) == (0.2, 0.8, 2.5, None)


def test_current_segment_names_follow_the_current_run(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        assert current_segment_names(session) == {}  # before the first run
        session.add_all(User(id=u, first_seen=NOW, last_seen=NOW) for u in (1, 2, 3))
    _run(engine, [1, 2, 3], [0, 1, 1])
    _run(engine, [1, 2], [1, 0])  # the newer run is current; user 3 is in no segment of it
    with unit_of_work(engine) as session:
        assert current_segment_names(session) == {1: "One", 2: "Zero"}


def test_users_deleted_during_a_run_are_left_out_of_it(engine: Engine) -> None:
    # Users 2 and 4 were forgotten while the run computed: their memberships go, sizes follow.
    with unit_of_work(engine) as session:
        session.add_all(User(id=u, first_seen=NOW, last_seen=NOW) for u in (1, 3, 5))
    run_id = _run(engine, [1, 2, 3, 4, 5], [0, 0, 1, 1, 1])
    run = get_run(engine, run_id)
    assert run is not None and run.n_users == 3
    assert "2 user(s) deleted during the run were left out" in run.message
    segments = run_segments(engine, run_id)
    names = {s.id: s.name for s in segments}
    users, segment_ids = run_memberships(engine, run_id)
    assert sorted(zip(users, (names[i] for i in segment_ids), strict=True)) == [
        (1, "Zero"),
        (3, "One"),
        (5, "One"),
    ]
    assert {s.name: s.size for s in segments} == {"Zero": 1, "One": 2}
