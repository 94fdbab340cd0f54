"""Message experiments and send-time optimisation, measured on the simulator where the truth is known.

Usage: python -m bench.bench_experiments [--runs 100] [--sizes 400,2000,6000,12000]
       [--send-time-users 10000] [--send-time-runs 100]

1. Winner selection: per audience size, `--runs` seeded runs of the demo's experiment design
   (`demo.experiment`): every user of the audience gets one of three variants by Rapport's
   stable hash, conversions come from the simulator's hidden truth, and
   `analytics.experiments.pick_winner` decides (Holm-adjusted z-tests, default variant a when no
   arm is significantly best). Variant c converts 1.5x as often as a and b (the hardest case
   of "best >= 1.5x the next": two rivals at the next rate). Printed: the share of runs that
   pick c, and in A/A runs (identical variants) the share that declare any winner, beside the
   normal-approximation power of the same rule.
2. Send time: per run, a simulated community with 28 days of history is split by hash into a
   fixed-time arm (10:00 UTC) and a best-time arm (each user's Dirichlet-shrunk best hour within
   the next 24 h, quiet hours 22-8 local kept); conversion depends on the user's true local
   rhythm. Printed: both arms' rates with sizes and the 95 % Newcombe interval of the difference
   for the first run, and over all runs the share whose interval lies above zero.
   The best hours are computed vectorised and checked against `analytics.send_time.best_send_time`
   on 200 users of every run.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from analytics.experiments import assign_arm, newcombe_interval, pick_winner
from analytics.send_time import HOURS_PER_WEEK, best_send_time, build_profiles
from demo.experiment import DEFAULT_EXPERIMENT_USERS
from demo.simulation import iter_actions, make_population
from demo.simulation.behaviour import TYPES
from demo.simulation.experiments import hour_factor, plain_conversion_probabilities, run_variant_test, zone_of
from demo.simulation.population import Population

START = datetime(2026, 9, 1, tzinfo=UTC)
VARIANTS = ("a", "b", "c")
QUIET_START, QUIET_END = 22, 8
CHECKED_USERS = 200


def _winner_run(population: Population, seed: int, effects: dict[str, float]) -> tuple[str, bool]:
    """One run of the demo's experiment design; the arm sent and whether it was declared."""
    when = START + timedelta(days=population.days, hours=10)
    test = run_variant_test(
        population, key=f"bench-{seed}", effects=effects, when=when, rng=np.random.default_rng([seed, 17])
    )
    conversions, sends = test.counts(VARIANTS)
    decision = pick_winner(conversions, sends, default="a")
    return decision.arm, decision.declared


def _power(per_arm: float, base: float, ratio: float, *, alpha: float = 0.05, draws: int = 200_000) -> float:
    """Probability that the Holm rule declares the 1.5x arm (normal approximation, simulated counts)."""
    rng = np.random.default_rng(0)
    n = max(int(per_arm), 1)
    low_a, low_b = rng.binomial(n, base, draws), rng.binomial(n, base, draws)
    high = rng.binomial(n, min(base * ratio, 1.0), draws)

    def p_value(x: NDArray[np.int64], y: NDArray[np.int64]) -> NDArray[np.float64]:
        pooled = (x + y) / (2 * n)
        se = np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / n, 1e-300))
        return np.asarray(2 * stats.norm.sf(np.abs((x - y) / n / se)), dtype=np.float64)

    p_a, p_b = p_value(high, low_a), p_value(high, low_b)
    leads = (high > low_a) & (high > low_b)
    return float((leads & (np.maximum(p_a, p_b) < alpha) & (np.minimum(p_a, p_b) < alpha / 2)).mean())


def winner_selection(sizes: list[int], runs: int) -> None:
    """Print pick-the-best and A/A false-winner rates per audience size, beside the power."""
    best = {"a": 1.0, "b": 1.0, "c": 1.5}
    same = dict.fromkeys(VARIANTS, 1.0)
    base = float(
        plain_conversion_probabilities(
            make_population(20_000, days=60, seed=0), START + timedelta(days=60, hours=10)
        ).mean()
    )
    print(
        f"winner selection, {runs} seeded runs per size: variant c converts 1.5x as often as a and b "
        f"(mean base conversion {base:.1%}); default a; the demo's experiment audience is "
        f"{DEFAULT_EXPERIMENT_USERS} users"
    )
    print(f"{'users':>8} {'per arm':>8} {'power':>6} {'picked c':>9} {'A/A winner':>11} {'seconds':>8}")
    for size in sizes:
        started = time.perf_counter()
        picked = false_wins = 0
        for seed in range(runs):
            population = make_population(size, days=60, seed=seed)
            arm, _declared = _winner_run(population, seed, best)
            picked += arm == "c"
            _arm, declared = _winner_run(population, seed + 10_000, same)
            false_wins += declared
        per_arm = size / len(VARIANTS)
        print(
            f"{size:>8} {per_arm:>8.0f} {_power(per_arm, base, 1.5):>6.0%} {picked / runs:>9.0%} "
            f"{false_wins / runs:>11.0%} {time.perf_counter() - started:>8.1f}"
        )


def _local_hour_of_week(ts: NDArray[np.int64], offset_h: NDArray[np.int64]) -> NDArray[np.int64]:
    """Hour of the week (0 = Monday 00:00) of epoch seconds at fixed UTC offsets (1970-01-01: Thursday)."""
    local = ts + offset_h * 3600
    return np.asarray(((local // 86_400 + 3) % 7) * 24 + (local // 3600) % 24, dtype=np.int64)


def _vector_best_times(
    probabilities: NDArray[np.float64], offset_h: NDArray[np.int64], now: datetime
) -> NDArray[np.int64]:
    """Each user's best send time as epoch seconds: `best_send_time` for whole-hour `now`, fixed offsets."""
    candidates = int(now.timestamp()) + 3600 * np.arange(24, dtype=np.int64)  # now and the next 23 hours
    hours = _local_hour_of_week(candidates[None, :], offset_h[:, None])
    scores = np.take_along_axis(probabilities, hours, axis=1)
    clock = hours % 24
    quiet = (clock >= QUIET_START) | (clock < QUIET_END)
    scores = np.where(quiet, -np.inf, scores)
    return np.asarray(candidates[np.argmax(scores, axis=1)], dtype=np.int64)


def _send_time_run(n_users: int, seed: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """One run: ((best conversions, best sends), (fixed conversions, fixed sends))."""
    population = make_population(n_users, days=28, seed=seed)
    offsets = population.utc_offset_h.astype(np.int64)
    counts = np.zeros((n_users, HOURS_PER_WEEK))
    for batch in iter_actions(population, start=START):
        rows = batch.row.astype(np.int64)
        np.add.at(counts, (rows, _local_hour_of_week(batch.ts.astype(np.int64), offsets[rows])), 1.0)
    ids = population.ids.tolist()
    zones = {u: zone_of(p).key for u, p in zip(ids, population.personas(), strict=True)}
    profiles = build_profiles(dict(zip(ids, counts, strict=True)), zones, dict.fromkeys(ids))
    probabilities = np.stack([profiles[u].probabilities for u in ids])
    now = START + timedelta(days=population.days, hours=9)
    best_at = _vector_best_times(probabilities, offsets, now)
    for row in range(min(CHECKED_USERS, n_users)):  # the vectorised choice is the product's choice
        chosen = best_send_time(profiles[ids[row]], now, allowed_hours=range(QUIET_END, QUIET_START))
        assert int(chosen.timestamp()) == int(best_at[row]), (ids[row], chosen, best_at[row])
    fixed_at = int((now + timedelta(hours=1)).timestamp())
    arms = np.array([assign_arm(f"send-time-{seed}", u, {"fixed": 1.0, "best": 1.0}) for u in ids])
    send_at = np.where(arms == "best", best_at, fixed_at)
    local_hour = ((send_at + offsets * 3600) // 3600) % 24
    table = np.array([[hour_factor(t, h) * t.push_response for h in range(24)] for t in TYPES])
    truth = table[population.type_index.astype(np.int64), local_hour]
    converted = np.random.default_rng([seed, 23]).random(n_users) < truth
    best, fixed = arms == "best", arms == "fixed"
    return (int(converted[best].sum()), int(best.sum())), (int(converted[fixed].sum()), int(fixed.sum()))


def send_time(n_users: int, runs: int) -> None:
    """Print best-time vs fixed-time conversion, the interval of the difference, and its share above 0."""
    started = time.perf_counter()
    above = 0
    differences = []
    totals = np.zeros(4, dtype=np.int64)
    for seed in range(runs):
        (best_conv, best_n), (fixed_conv, fixed_n) = _send_time_run(n_users, seed)
        low, high = newcombe_interval(best_conv, best_n, fixed_conv, fixed_n)
        above += low > 0
        differences.append(best_conv / best_n - fixed_conv / fixed_n)
        totals += (best_conv, best_n, fixed_conv, fixed_n)
        if seed == 0:
            print(
                f"send time ({n_users} users, seed 0): best-time {best_conv}/{best_n} "
                f"({best_conv / best_n:.1%}) vs fixed 10:00 UTC {fixed_conv}/{fixed_n} "
                f"({fixed_conv / fixed_n:.1%}); difference {differences[0]:+.1%} "
                f"(95% CI {low:+.1%} to {high:+.1%}); "
                f"ratio {(best_conv / best_n) / (fixed_conv / fixed_n):.2f}"
            )
    best_rate, fixed_rate = totals[0] / totals[1], totals[2] / totals[3]
    print(
        f"send time over {runs} seeded runs of {n_users} users: best-time {best_rate:.1%} "
        f"vs fixed {fixed_rate:.1%} (ratio {best_rate / fixed_rate:.2f}); "
        f"mean difference {np.mean(differences):+.1%} (runs' 2.5-97.5 % range "
        f"{np.percentile(differences, 2.5):+.1%} to {np.percentile(differences, 97.5):+.1%}); "
        f"interval above zero in {above}/{runs} runs; {time.perf_counter() - started:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument(
        "--sizes", default=f"400,2000,{DEFAULT_EXPERIMENT_USERS},{2 * DEFAULT_EXPERIMENT_USERS}"
    )
    parser.add_argument("--send-time-users", type=int, default=10_000)
    parser.add_argument("--send-time-runs", type=int, default=100)
    args = parser.parse_args()
    winner_selection([int(s) for s in args.sizes.split(",") if s], args.runs)
    send_time(args.send_time_users, args.send_time_runs)


if __name__ == "__main__":
    main()
