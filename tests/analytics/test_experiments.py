"""Experiment statistics: stable assignment, intervals and tests against hand-worked values and SciPy."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import stats

from analytics.experiments import (
    assign_arm,
    chi_squared_test,
    evaluate_experiment,
    newcombe_interval,
    pick_winner,
    two_proportion_p_value,
    wilson_interval,
)


def test_assignment_is_stable_and_follows_the_weights() -> None:
    weights = {"a": 0.4, "b": 0.4, "control": 0.2}
    first = [assign_arm("exp-1", user, weights) for user in range(5000)]
    again = [assign_arm("exp-1", user, dict(weights)) for user in range(5000)]
    assert first == again
    shares = Counter(first)
    assert shares["a"] / 5000 == pytest.approx(0.4, abs=0.03)
    assert shares["control"] / 5000 == pytest.approx(0.2, abs=0.03)


def test_assignment_of_two_experiments_is_independent() -> None:
    arms = {"a": 1.0, "b": 1.0}
    pairs = Counter((assign_arm("x", u, arms), assign_arm("y", u, arms)) for u in range(4000))
    assert all(count / 4000 == pytest.approx(0.25, abs=0.03) for count in pairs.values())


@pytest.mark.parametrize("weights", [{}, {"a": -1.0}, {"a": 0.0, "b": 0.0}])
def test_bad_weights_are_refused(weights: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="arm"):
        assign_arm("x", 1, weights)


def test_wilson_interval_matches_hand_worked_values() -> None:
    # Newcombe (1998), table I: 0/10 → 0–0.2775; 1/29 → 0.0061–0.1718.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(1, 29) == pytest.approx((0.0061, 0.1718), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_newcombe_difference_interval_matches_the_paper() -> None:
    # Newcombe (1998), table II, examples (a) and (d).
    assert newcombe_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert newcombe_interval(9, 10, 3, 10) == pytest.approx((0.1705, 0.8090), abs=1e-4)


def test_two_proportion_test_and_chi_squared_agree_with_scipy() -> None:
    table = np.array([[30, 70], [45, 55]])
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert chi_squared_test([30, 45], [100, 100]) == pytest.approx((chi2, p_value))
    # For two arms the pooled z-test is the chi-squared test.
    assert two_proportion_p_value(30, 100, 45, 100) == pytest.approx(p_value)
    assert chi_squared_test([0, 0], [10, 10]) is None
    assert chi_squared_test([3], [10]) is None


def test_a_clear_leader_is_declared_and_a_close_race_sends_the_default() -> None:
    clear = pick_winner({"a": 60, "b": 30, "c": 28}, {"a": 200, "b": 200, "c": 200}, default="b")
    assert (clear.arm, clear.declared) == ("a", True)
    close = pick_winner({"a": 33, "b": 30}, {"a": 200, "b": 200}, default="b")
    assert (close.arm, close.declared) == ("b", False)
    assert "default" in close.reason


def test_the_leader_must_beat_every_arm_not_only_the_worst() -> None:
    decision = pick_winner({"a": 60, "b": 55, "c": 10}, {"a": 200, "b": 200, "c": 200}, default="c")
    assert decision.declared is False
    assert decision.arm == "c"


def test_aa_runs_declare_a_winner_rarely_and_real_differences_are_found() -> None:
    rng = np.random.default_rng(7)
    false_wins = sum(
        pick_winner(
            {
                "a": int(rng.binomial(300, 0.2)),
                "b": int(rng.binomial(300, 0.2)),
                "c": int(rng.binomial(300, 0.2)),
            },
            {"a": 300, "b": 300, "c": 300},
            default="a",
        ).declared
        for _ in range(1000)
    )
    assert false_wins / 1000 <= 0.05
    found = sum(
        pick_winner(
            {"a": int(rng.binomial(300, 0.3)), "b": int(rng.binomial(300, 0.15))},
            {"a": 300, "b": 300},
            default="b",
        ).arm
        == "a"
        for _ in range(200)
    )
    assert found / 200 >= 0.95


def test_evaluate_reports_lift_against_control_and_keeps_control_out_of_the_winner() -> None:
    result = evaluate_experiment(
        {"a": 40, "b": 20, "control": 10},
        {"a": 100, "b": 100, "control": 100},
        control="control",
        default="b",
    )
    by_arm = {arm.arm: arm for arm in result.arms}
    assert by_arm["a"].lift == pytest.approx(0.30)
    assert by_arm["a"].lift_interval == pytest.approx(newcombe_interval(40, 100, 10, 100))
    assert by_arm["control"].lift is None
    assert result.chi_squared == pytest.approx(chi_squared_test([40, 20], [100, 100]))
    assert result.winner is not None and result.winner.arm == "a"


def test_an_arm_without_sends_has_no_rate() -> None:
    result = evaluate_experiment({"a": 0}, {"a": 0, "b": 10}, default="b")
    assert result.arms[0].rate is None and result.arms[0].interval is None
    assert result.winner is not None and result.winner.declared is False
