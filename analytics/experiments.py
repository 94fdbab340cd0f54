"""Message experiments: stable arm assignment, per-arm rates with Wilson intervals, tests and winners.

Pure functions (no database, no clock). The scheduler assigns users with `assign_arm` when it plans
a campaign's deliveries and reads conversions back from the event log; everything statistical is
decided here, so it is checked against values worked by hand and against SciPy.

Winner selection: the arm with the highest observed rate is *declared* the winner only when a
two-sided two-proportion z-test at `alpha` says it beats every other arm (each comparison
Holm-adjusted). In A/A runs the leader must beat the runner-up, which happens in at most `alpha` of
runs; otherwise the manager's default arm is sent, and the report says so.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "ArmResult",
    "ExperimentResult",
    "WinnerDecision",
    "assign_arm",
    "assignment_bucket",
    "chi_squared_test",
    "evaluate_experiment",
    "newcombe_interval",
    "pick_winner",
    "two_proportion_p_value",
    "wilson_interval",
]

Z_95 = 1.959963984540054
DEFAULT_ALPHA = 0.05


def assignment_bucket(experiment: str, user_id: int) -> float:
    """A stable number in [0, 1) for (experiment, user): the same on every run, process and machine.

    Salting with the experiment's key makes arms of different experiments independent of each
    other and of the global holdout (which uses its own salt).
    """
    digest = hashlib.sha256(f"rapport-experiment-v1:{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(experiment: str, user_id: int, weights: Mapping[str, float]) -> str:
    """The arm a user belongs to, by cumulative weight over the arms in the mapping's order.

    Raises:
        ValueError: when there is no arm or a weight is negative or all weights are zero.
    """
    if not weights:
        raise ValueError("an experiment needs at least one arm")
    if any(weight < 0 for weight in weights.values()):
        raise ValueError(f"arm weights must be non-negative, got {dict(weights)}")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"arm weights must not all be zero, got {dict(weights)}")
    point = assignment_bucket(experiment, user_id) * total
    cumulative = 0.0
    for arm, weight in weights.items():
        cumulative += weight
        if point < cumulative:
            return arm
    return next(reversed(list(weights)))


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (well-behaved at 0, 1 and small n).

    Raises:
        ValueError: for counts outside 0 <= successes <= n or n == 0.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, z: float = Z_95
) -> tuple[float, float]:
    """Interval of the difference p_a − p_b from the two Wilson intervals (Newcombe 1998, method 10).

    Unlike the Wald interval it keeps its coverage for small groups and rates near 0 or 1.
    """
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = wilson_interval(successes_a, n_a, z=z)
    low_b, high_b = wilson_interval(successes_b, n_b, z=z)
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return low, high


def two_proportion_p_value(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when there is no variation)."""
    pooled = (successes_a + successes_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 1.0
    z = (successes_a / n_a - successes_b / n_b) / math.sqrt(variance)
    return float(2 * stats.norm.sf(abs(z)))


def chi_squared_test(successes: Sequence[int], sends: Sequence[int]) -> tuple[float, float] | None:
    """Pearson's chi-squared test of equal rates across arms: (statistic, p-value).

    None when it is undefined: fewer than two arms with sends, or no variation in the outcome.
    """
    rows = [(s, n - s) for s, n in zip(successes, sends, strict=True) if n > 0]
    table = np.array(rows, dtype=np.float64)
    if len(rows) < 2 or (table.sum(axis=0) == 0).any():
        return None
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


@dataclass(frozen=True)
class ArmResult:
    """One arm's sends and conversions, its rate with a Wilson interval, and its lift over control."""

    arm: str
    sends: int
    conversions: int
    rate: float | None
    interval: tuple[float, float] | None
    lift: float | None = None
    """Rate minus the control's rate (None without a control arm or for the control itself)."""
    lift_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class WinnerDecision:
    """Which arm goes to the rest of the audience, and why."""

    arm: str
    declared: bool
    """True when the leader is significantly better than every other arm."""
    reason: str


@dataclass(frozen=True)
class ExperimentResult:
    """Per-arm figures, the test across arms and, where asked for, the winner."""

    arms: tuple[ArmResult, ...]
    chi_squared: tuple[float, float] | None
    winner: WinnerDecision | None


def _arm_result(arm: str, conversions: int, sends: int, control: tuple[int, int] | None) -> ArmResult:
    if sends == 0:
        return ArmResult(arm, 0, 0, None, None)
    lift = lift_interval = None
    if control is not None and control[1] > 0:
        lift = conversions / sends - control[0] / control[1]
        lift_interval = newcombe_interval(conversions, sends, control[0], control[1])
    return ArmResult(
        arm, sends, conversions, conversions / sends, wilson_interval(conversions, sends), lift, lift_interval
    )


def pick_winner(
    conversions: Mapping[str, int],
    sends: Mapping[str, int],
    *,
    default: str,
    alpha: float = DEFAULT_ALPHA,
) -> WinnerDecision:
    """Declare the leader the winner only if it beats every other arm significantly; else `default`.

    The other arms are compared with the leader in order of closeness, each at Holm's adjusted
    level (alpha / m, alpha / (m − 1), ...), so the whole decision holds its error rate at `alpha`.
    Arms without sends take no part.
    """
    if default not in sends:
        raise ValueError(f"default arm {default!r} is not one of the arms {sorted(sends)}")
    measured = [arm for arm in sends if sends[arm] > 0]
    if len(measured) < 2:
        return WinnerDecision(default, False, "fewer than two arms were measured: sending the default")
    leader = max(measured, key=lambda arm: (conversions[arm] / sends[arm], arm == default))

    def p_against_leader(arm: str) -> float:
        return two_proportion_p_value(conversions[leader], sends[leader], conversions[arm], sends[arm])

    others = sorted((arm for arm in measured if arm != leader), key=p_against_leader, reverse=True)
    # Holm step-down: the largest p-value faces the least strict level, the smallest the strictest.
    for rank, arm in enumerate(others):
        p_value = p_against_leader(arm)
        level = alpha / (rank + 1)
        if p_value >= level or conversions[leader] / sends[leader] <= conversions[arm] / sends[arm]:
            return WinnerDecision(
                default,
                False,
                f"no arm is significantly better (best {leader!r} vs {arm!r}: p = {p_value:.3f}); "
                f"sending the default {default!r}",
            )
    return WinnerDecision(leader, True, f"{leader!r} beats every other arm (p < {alpha:g}, Holm-adjusted)")


def evaluate_experiment(
    conversions: Mapping[str, int],
    sends: Mapping[str, int],
    *,
    control: str | None = None,
    default: str | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> ExperimentResult:
    """Every arm's figures, the chi-squared test across the message arms, and the winner.

    The control arm (no message) is reported with its rate and is the baseline of each lift, but it
    takes no part in the chi-squared test or the winner: the winner is a message to send.
    """
    base = (conversions[control], sends[control]) if control is not None else None
    arms = tuple(
        _arm_result(arm, conversions.get(arm, 0), sends[arm], None if arm == control else base)
        for arm in sends
    )
    message_arms = [arm for arm in sends if arm != control]
    chi = chi_squared_test([conversions.get(a, 0) for a in message_arms], [sends[a] for a in message_arms])
    winner = None
    if default is not None:
        winner = pick_winner(
            {a: conversions.get(a, 0) for a in message_arms},
            {a: sends[a] for a in message_arms},
            default=default,
            alpha=alpha,
        )
    return ExperimentResult(arms, chi, winner)
