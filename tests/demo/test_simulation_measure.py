"""Measurements taken from the store: segment recovery and return rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from analytics import AnalyticsConfig, run_analytics
from demo.simulation import make_population, write_history
from demo.simulation.measure import return_rates, segment_agreement
from store import EventRecord, append_events

START = datetime(2026, 9, 1, tzinfo=UTC)


def test_segment_agreement_compares_only_simulated_users(sqlite_engine: Engine) -> None:
    population = make_population(80, days=21, seed=5)
    write_history(sqlite_engine, population, start=START, profiles=False)
    outsider = EventRecord(user_id=1, chat_id=1, ts=START + timedelta(days=3), kind="message", intent="greet")
    append_events(sqlite_engine, [outsider])
    run = run_analytics(
        sqlite_engine, config=AnalyticsConfig(window_days=21), as_of=START + timedelta(days=21)
    )
    ari, compared = segment_agreement(sqlite_engine, run.run_id, population.true_types())
    assert compared == run.n_users - 1
    assert -1.0 <= ari <= 1.0
    constant, _ = segment_agreement(sqlite_engine, run.run_id, {u: "one" for u in population.true_types()})
    assert constant == 0.0 or run.n_segments == 1


def test_return_rates_count_inbound_events_after_the_push(sqlite_engine: Engine) -> None:
    push_time = START + timedelta(days=10)

    def row(user: int, days: float, kind: str = "message") -> EventRecord:
        return EventRecord(user_id=user, chat_id=user, ts=START + timedelta(days=days), kind=kind)

    append_events(
        sqlite_engine,
        [row(1, 1), row(1, 11), row(2, 1), row(3, 12, "reaction"), row(4, 2), row(4, 10.5, "leave")],
    )
    rates = return_rates(sqlite_engine, pushed=[1, 2], holdout=[3, 4, 5], since=push_time)
    assert (rates.pushed, rates.pushed_returned, rates.holdout, rates.holdout_returned) == (2, 1, 3, 1)
    assert rates.pushed_rate == 0.5
    assert rates.holdout_rate == 1 / 3
    empty = return_rates(sqlite_engine, pushed=[], holdout=[], since=push_time)
    assert empty.pushed_rate == empty.holdout_rate == 0.0
