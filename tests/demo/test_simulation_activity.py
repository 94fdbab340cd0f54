"""Generated activity: deterministic, inside the window, and different per hidden type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from demo.simulation import ACTIONS, TYPES, SimulationConfigError, iter_actions, make_population
from demo.simulation.behaviour import GROUP_ONLY, action_index, transition_matrix, type_named

START = datetime(2026, 9, 1, tzinfo=UTC)


def _all(population_seed: int = 5, users: int = 600, days: int = 40):  # type: ignore[no-untyped-def]
    population = make_population(users, days=days, seed=population_seed)
    batches = list(iter_actions(population, start=START, chunk_users=250))
    return population, batches


def test_same_seed_gives_the_same_actions() -> None:
    _, first = _all()
    _, again = _all()
    assert [len(b) for b in first] == [len(b) for b in again]
    assert all(
        np.array_equal(a.ts, b.ts) and np.array_equal(a.action, b.action)
        for a, b in zip(first, again, strict=True)
    )


def test_actions_are_sorted_per_user_and_inside_the_window() -> None:
    population, batches = _all()
    end = START + timedelta(days=population.days)
    for batch in batches:
        assert (batch.ts >= START.timestamp()).all()
        assert (batch.ts < end.timestamp()).all()
        key = batch.row * 10**10 + batch.ts
        assert (np.diff(key) >= 0).all()


def test_group_only_actions_come_from_group_members_in_the_group() -> None:
    population, batches = _all()
    group_only = np.array([a in GROUP_ONLY for a in ACTIONS])
    for batch in batches:
        mask = group_only[batch.action]
        assert population.in_group[batch.row[mask]].all()
        assert batch.in_group[mask].all()
        assert not batch.in_group[batch.action == action_index("start")].any()


def test_newcomers_open_with_start_on_their_join_day() -> None:
    population, batches = _all()
    newcomer = next(i for i, t in enumerate(TYPES) if t.name == "newcomer")
    for batch in batches:
        for row in np.unique(batch.row):
            if population.type_index[row] != newcomer:
                continue
            mine = batch.action[batch.row == row]
            first_ts = batch.ts[batch.row == row][0]
            assert ACTIONS[mine[0]] == "start"
            assert (first_ts - START.timestamp()) // 86_400 >= population.join_day[row] - 1


def test_types_differ_in_volume_and_mix() -> None:
    population, batches = _all(users=1500)
    rows = np.concatenate([b.row for b in batches])
    actions = np.concatenate([b.action for b in batches])
    per_user = np.bincount(rows, minlength=len(population))
    names = np.array([t.name for t in TYPES])[population.type_index]
    assert per_user[names == "power_user"].mean() > 3 * per_user[names == "casual_asker"].mean()
    social = actions[names[rows] == "socialite"]
    assert np.isin(social, [action_index(a) for a in ("reaction", "chatter", "poll_answer")]).mean() > 0.5
    power = actions[names[rows] == "power_user"]
    assert (power == action_index("rate_limits")).mean() > (power == action_index("pricing")).mean()


def test_drifting_users_fade_after_churn() -> None:
    population, batches = _all(users=2000, days=60)
    rows = np.concatenate([b.row for b in batches])
    ts = np.concatenate([b.ts for b in batches])
    day = (ts - START.timestamp()) // 86_400
    churn = population.churn_day[rows]
    drifting = churn >= 0
    before = (drifting & (day < churn)).sum() / max(1, churn[drifting].sum())
    after = (drifting & (day >= churn + 7)).sum() / max(
        1, (population.days - churn[drifting] - 7).clip(0).sum()
    )
    assert after < before / 4


def test_transition_rows_are_distributions_with_habits() -> None:
    for profile in TYPES:
        matrix = transition_matrix(profile)
        assert np.allclose(matrix.sum(axis=1), 1.0)
        assert (matrix[:, action_index("start")] == 0).all()
    power = transition_matrix(type_named("power_user"))
    assert (
        power[action_index("api_keys"), action_index("rate_limits")]
        > power[action_index("greet"), action_index("rate_limits")]
    )


def test_naive_start_and_bad_chunk_are_refused() -> None:
    population = make_population(10, days=5)
    with pytest.raises(SimulationConfigError, match="timezone-aware"):
        next(iter_actions(population, start=datetime(2026, 1, 1)))
    with pytest.raises(SimulationConfigError, match="-1"):
        next(iter_actions(population, start=START, chunk_users=-1))
    with pytest.raises(KeyError, match="nope"):
        type_named("nope")
