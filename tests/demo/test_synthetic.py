"""The synthetic history: the simulator's one population, sized by events per user."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from demo.simulation import TYPES, SimulationConfigError, batch_rows, iter_actions, make_population
from demo.simulation.bulk import row_count
from demo.synthetic import DEFAULT_DAYS, DEFAULT_END, activity_for, populate, synthetic_population
from store import count_events, iter_events

START = datetime(2026, 9, 1, tzinfo=UTC)
_DAY = 86_400


def test_every_user_is_in_the_log_even_in_a_short_window() -> None:
    # Non-members whose only session opened with a group-only action used to leave no trace.
    population = make_population(20_000, days=3, seed=7)
    logged = set()
    for batch in iter_actions(population, start=START):
        logged.update(np.unique(batch.row).tolist())
    assert len(logged) == len(population)


def test_activity_scales_the_volume_and_keeps_the_users() -> None:
    quiet = make_population(2_000, days=20, seed=4, activity=0.25)
    busy = make_population(2_000, days=20, seed=4, activity=1.0)
    for column in ("ids", "type_index", "is_zh", "utc_offset_h", "join_day", "churn_day", "in_group"):
        assert (getattr(quiet, column) == getattr(busy, column)).all()
    quiet_rows = sum(len(b) for b in iter_actions(quiet, start=START))
    busy_rows = sum(len(b) for b in iter_actions(busy, start=START))
    assert 1.5 * quiet_rows < busy_rows


def test_activity_zero_leaves_only_the_first_day() -> None:
    population = make_population(500, days=30, seed=2, activity=0.0)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for batch in iter_actions(population, start=START):
        for row, ts in zip(batch.row.tolist(), batch.ts.tolist(), strict=True):
            first[row] = min(first.get(row, ts), ts)
            last[row] = max(last.get(row, ts), ts)
    assert len(first) == len(population)
    # One local day, seen in UTC: never more than two calendar days apart.
    assert max(last[r] - first[r] for r in first) < 2 * _DAY


@pytest.mark.parametrize("activity", [-0.1, math.nan, math.inf])
def test_bad_activity_fails_clearly(activity: float) -> None:
    with pytest.raises(SimulationConfigError, match="activity must be a finite number >= 0"):
        make_population(10, days=5, activity=activity)


def test_row_count_matches_the_rows_built() -> None:
    population = make_population(300, days=10, seed=9)
    for number, batch in enumerate(iter_actions(population, start=START, chunk_users=100)):
        assert row_count(batch) == len(batch_rows(population, batch, seed=number))


def test_activity_for_follows_the_asked_volume(caplog: pytest.LogCaptureFixture) -> None:
    assert activity_for(None) == 1.0
    assert 0.0 < activity_for(10) < activity_for(20) < activity_for(30)
    with caplog.at_level(logging.WARNING, logger="demo.synthetic"):
        assert activity_for(0.5) == 0.0
    assert "below one active day" in caplog.text
    for bad in (0.0, -3.0, math.nan):
        with pytest.raises(ValueError, match="events_per_user must be positive"):
            activity_for(bad)


@pytest.mark.parametrize("events_per_user", [8.0, 20.0])
def test_populate_writes_about_the_asked_volume_with_true_types(
    sqlite_engine: Engine, events_per_user: float
) -> None:
    history = populate(sqlite_engine, 400, events_per_user=events_per_user, seed=1)
    assert count_events(sqlite_engine) == history.n_events
    assert history.n_events / 400 == pytest.approx(events_per_user, rel=0.2)
    events = list(iter_events(sqlite_engine))
    assert {e.user_id for e in events} == set(history.types) == set(range(1, 401))
    assert set(history.types.values()) <= {t.name for t in TYPES}
    window_start = DEFAULT_END - timedelta(days=DEFAULT_DAYS)
    assert all(window_start <= e.ts < DEFAULT_END for e in events)
    again = synthetic_population(400, events_per_user=events_per_user, seed=1).true_types()
    assert again == history.types


def test_populate_honours_end_first_id_and_progress(sqlite_engine: Engine) -> None:
    done: list[int] = []
    history = populate(
        sqlite_engine,
        50,
        events_per_user=10,
        end=START,
        days=7,
        seed=3,
        first_user_id=1_000,
        progress=done.append,
    )
    assert sum(done) == 50
    assert set(history.types) == set(range(1_000, 1_050))
    assert all(START - timedelta(days=7) <= e.ts < START for e in iter_events(sqlite_engine))
