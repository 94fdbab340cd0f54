"""The population: seeded, typed, columnar."""

from __future__ import annotations

import numpy as np
import pytest

import demo.simulation
from demo.simulation import TYPES, SimulationConfigError, make_population


def test_same_seed_same_population_other_seed_differs() -> None:
    first = make_population(300, days=30, seed=7)
    again = make_population(300, days=30, seed=7)
    other = make_population(300, days=30, seed=8)
    assert np.array_equal(first.type_index, again.type_index)
    assert np.array_equal(first.join_day, again.join_day)
    assert not np.array_equal(first.type_index, other.type_index)


def test_type_shares_follow_the_profiles() -> None:
    population = make_population(20_000, days=60, seed=1)
    counts = population.type_counts()
    assert sum(counts.values()) == 20_000
    for profile in TYPES:
        assert counts[profile.name] / 20_000 == pytest.approx(profile.share, abs=0.02)


def test_lifetimes_newcomers_join_late_and_only_drifters_churn() -> None:
    population = make_population(5_000, days=60, seed=2)
    names = np.array([t.name for t in TYPES])[population.type_index]
    assert (population.join_day[names != "newcomer"] == 0).all()
    assert population.join_day[names == "newcomer"].mean() > 25
    assert (population.churn_day[names == "drifting"] >= 0).all()
    assert (population.churn_day[names != "drifting"] == -1).all()
    assert population.in_group[names == "socialite"].all()


def test_persona_and_true_types_agree() -> None:
    population = make_population(50, days=10, seed=3, first_user_id=1000)
    personas = population.personas()
    truth = population.true_types()
    assert [p.id for p in personas] == list(range(1000, 1050))
    assert all(truth[p.id] == p.type for p in personas)
    assert all(p.language in ("en", "zh") for p in personas)
    assert personas[0].profile.name == personas[0].type


@pytest.mark.parametrize(("users", "days"), [(0, 10), (-5, 10), (10, 0)])
def test_bad_sizes_are_refused_naming_the_value(users: int, days: int) -> None:
    with pytest.raises(SimulationConfigError, match=str(users if users <= 0 else days)):
        make_population(users, days=days)


def test_package_exports_are_exactly_all() -> None:
    exported = {name for name in dir(demo.simulation) if not name.startswith("_")}
    assert set(demo.simulation.__all__) <= exported
    assert len(demo.simulation.__all__) == len(set(demo.simulation.__all__))
