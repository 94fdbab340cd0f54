"""Insights: activity, retention, heat map, unanswered texts, rules and segment migration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics import (
    AnalyticsConfig,
    active_users_series,
    activity_by_hour,
    activity_stats,
    retention,
    run_analytics,
    segment_migration,
    top_intents_per_segment,
    top_rule_records,
    top_rules,
    unanswered_questions,
)
from demo.synthetic import DEFAULT_END, populate
from store import EventRecord, append_events

UNTIL = datetime(2026, 3, 16, tzinfo=UTC)  # a Monday


def _event(user: int, days_ago: float, kind: str = "message", **extra: object) -> EventRecord:
    return EventRecord(user_id=user, chat_id=user, ts=UNTIL - timedelta(days=days_ago), kind=kind, **extra)  # type: ignore[arg-type]


def _log(engine: Engine) -> None:
    append_events(
        engine,
        [
            _event(1, 0.5, intent="pricing"),
            _event(1, 0.4, "fallback", intent="nlu_fallback", text="Where is my invoice?"),
            _event(2, 3, intent="pricing"),
            _event(2, 3, "fallback", intent="nlu_fallback", text="where is my invoice? "),
            _event(3, 20, intent="billing"),
            _event(3, 13, intent="billing"),
            _event(4, 40, intent="greet"),
        ],
    )


def test_activity_stats_count_users_messages_and_fallbacks(engine: Engine) -> None:
    _log(engine)
    stats = activity_stats(engine, UNTIL - timedelta(days=30), UNTIL)
    assert (stats.dau, stats.wau, stats.mau, stats.active_users) == (1, 2, 3, 3)
    assert stats.messages == 6 and stats.unanswered == 2
    assert stats.fallback_rate == pytest.approx(2 / 6)
    assert stats.top_intents[:2] == (("billing", 2), ("pricing", 2))
    assert stats.new_users == 3  # user 4 first appeared 40 days ago
    with pytest.raises(ValueError, match="must be before"):
        activity_stats(engine, UNTIL, UNTIL)


def test_series_retention_and_heat_map(engine: Engine) -> None:
    _log(engine)
    series = active_users_series(engine, UNTIL - timedelta(days=60), UNTIL)
    assert series["dau"]["users"].sum() == 5  # user-days: 1, 2, 3 (twice), 4
    assert series["wau"]["users"].sum() == 5
    cohorts = retention(engine, UNTIL)
    assert (cohorts.iloc[:, 0] == 1.0).all()
    # cohorts (weeks since the epoch): user 4; user 3, back the next week; users 1 and 2
    assert cohorts.shape == (3, 2)
    assert cohorts[1].tolist()[:2] == [0.0, 1.0]
    assert pd.isna(cohorts[1].iloc[2])  # the newest cohort has no next week yet
    grid = activity_by_hour(engine, UNTIL - timedelta(days=60), UNTIL)
    assert grid.shape == (7, 24) and grid.to_numpy().sum() == 7
    # 0.5 days before Monday 00:00 is Sunday 12:00 UTC
    assert grid.loc["Sun", 12] == 1


def test_unanswered_questions_are_grouped(engine: Engine) -> None:
    _log(engine)
    table = unanswered_questions(engine, UNTIL - timedelta(days=30), UNTIL)
    assert table.to_dict("records") == [{"text": "where is my invoice?", "count": 2, "users": 2}]


def test_rules_intents_and_migration_after_two_runs(sqlite_engine: Engine) -> None:
    assert top_rules(sqlite_engine) == []
    assert segment_migration(sqlite_engine).empty
    populate(sqlite_engine, 120, events_per_user=10, seed=8)
    config = AnalyticsConfig(k_max=4, min_support=0.05)
    run_analytics(sqlite_engine, config=config, as_of=DEFAULT_END)
    run_analytics(sqlite_engine, config=config, as_of=DEFAULT_END)
    sentences = top_rules(sqlite_engine, 3)
    records = top_rule_records(sqlite_engine, 3)
    assert len(sentences) == 3 and sentences == [r.sentence for r in records]
    assert records[0].lift >= records[-1].lift
    migration = segment_migration(sqlite_engine)
    assert migration["users"].sum() == 120
    assert (migration["from"] == migration["to"]).all()  # same data, same seed: nobody moves
    intents = top_intents_per_segment(sqlite_engine, limit=2)
    assert not intents.empty and intents.groupby("segment").size().max() <= 2
