"""Message experiments and send-time optimisation, measured on the simulator where the truth is known.

Usage: python -m bench.bench_experiments [--runs 100] [--sizes 400,2000,10000,40000] [--send-time-users 5000]

1. Winner selection ("winning variant" broadcasts): per community size, `--runs` seeded runs of a
   three-variant test on a 20 % test share of the non-holdout users. The simulator's hidden
   multipliers make one variant 1.5x as likely to convert as the next; the manager's default is
   another variant. Printed: the share of runs that pick the truly best variant, and in A/A runs
   (identical variants) the share that declare any winner (target <= 5 %).
2. Send time: users with 60 days of simulated history are split by hash into a fixed-time arm
   (10:00 UTC) and a best-time arm (each user's estimated best hour within the next 24 h, quiet
   hours 22-8 kept); conversion depends on the user's true local rhythm. Printed: both rates
   with group sizes and the interval of the difference.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from analytics.experiments import assign_arm, newcombe_interval, pick_winner
from analytics.send_time import best_send_time, build_profiles, hour_of_week
from demo.simulation import iter_actions, make_population
from demo.simulation.behaviour import TYPES
from demo.simulation.experiments import conversion_probability, hour_factor, zone_of
from demo.simulation.population import Population
from demo.simulation.responses import MAX_RESPONSE
from scheduler.policy import in_holdout

HOLDOUT_SHARE = 0.1
TEST_SHARE = 0.2
START = datetime(2026, 9, 1, tzinfo=UTC)
VARIANTS = ("a", "b", "c")


def _conversion_probabilities(population: Population, when: datetime) -> np.ndarray:
    """Each user's probability of converting on a plain push at `when`, before any variant effect.

    Vectorised over the population (the same formula as `conversion_probability`, which the
    send-time part uses per user), so 100 runs of 40,000 users take seconds.
    """
    hours = (when.hour + population.utc_offset_h.astype(np.int64)) % 24
    table = np.array([[hour_factor(t, h) * t.push_response for h in range(24)] for t in TYPES])
    return np.asarray(table[population.type_index.astype(np.int64), hours], dtype=np.float64)


def _winner_run(population: Population, seed: int, effects: dict[str, float]) -> tuple[str, bool]:
    """One winning-variant broadcast: test phase on 20 %, then the decision."""
    rng = np.random.default_rng([seed, 17])
    when = START + timedelta(days=population.days, hours=10)
    base = _conversion_probabilities(population, when)
    key = f"bench-{seed}"
    sends = dict.fromkeys(VARIANTS, 0)
    conversions = dict.fromkeys(VARIANTS, 0)
    draws = rng.random(len(population))
    for row, user_id in enumerate(population.ids.tolist()):
        if in_holdout(user_id, HOLDOUT_SHARE):
            continue
        if assign_arm(key + ":phase", user_id, {"test": TEST_SHARE, "rest": 1 - TEST_SHARE}) != "test":
            continue
        arm = assign_arm(key, user_id, dict.fromkeys(VARIANTS, 1.0))
        sends[arm] += 1
        conversions[arm] += int(draws[row] < min(base[row] * effects[arm], MAX_RESPONSE))
    decision = pick_winner(conversions, sends, default="a")
    return decision.arm, decision.declared


def winner_selection(sizes: list[int], runs: int) -> None:
    """Print pick-the-best and A/A false-winner rates per community size."""
    best = {"a": 1.0, "b": 1.0, "c": 1.5}
    same = dict.fromkeys(VARIANTS, 1.0)
    print("winner selection: variant c converts 1.5x as often as a and b; default a")
    print(f"{'users':>8} {'test/arm':>9} {'picked c':>9} {'A/A winner':>11} {'seconds':>8}")
    for size in sizes:
        started = time.perf_counter()
        picked = false_wins = 0
        for seed in range(runs):
            population = make_population(size, days=60, seed=seed)
            arm, _declared = _winner_run(population, seed, best)
            picked += arm == "c"
            _arm, declared = _winner_run(population, seed + 10_000, same)
            false_wins += declared
        per_arm = size * (1 - HOLDOUT_SHARE) * TEST_SHARE / len(VARIANTS)
        print(
            f"{size:>8} {per_arm:>9.0f} {picked / runs:>9.0%} {false_wins / runs:>11.0%} "
            f"{time.perf_counter() - started:>8.1f}"
        )


def send_time(n_users: int, seed: int) -> None:
    """Print best-time vs fixed-time conversion with group sizes and the interval of the difference."""
    population = make_population(n_users, days=60, seed=seed)
    personas = population.personas()
    counts = {p.id: np.zeros(168) for p in personas}
    zones = {p.id: zone_of(p) for p in personas}
    for batch in iter_actions(population, start=START):
        for row, ts in zip(batch.row.tolist(), batch.ts.tolist(), strict=True):
            persona = personas[row]
            counts[persona.id][hour_of_week(datetime.fromtimestamp(ts, UTC), zones[persona.id])] += 1
    profiles = build_profiles(counts, {u: z.key for u, z in zones.items()}, dict.fromkeys(counts))
    now = START + timedelta(days=population.days, hours=9)
    fixed_at = now + timedelta(hours=1)
    rng = np.random.default_rng([seed, 23])
    outcome = {"fixed": [0, 0], "best": [0, 0]}
    for persona in personas:
        if in_holdout(persona.id, HOLDOUT_SHARE):
            continue
        arm = assign_arm(f"send-time-{seed}", persona.id, {"fixed": 1.0, "best": 1.0})
        when = (
            fixed_at
            if arm == "fixed"
            else best_send_time(profiles[persona.id], now, allowed_hours=range(8, 22))
        )
        outcome[arm][1] += 1
        outcome[arm][0] += int(rng.random() < conversion_probability(persona, (), when=when))
    (best_conv, best_n), (fixed_conv, fixed_n) = outcome["best"], outcome["fixed"]
    low, high = newcombe_interval(best_conv, best_n, fixed_conv, fixed_n)
    print(
        f"send time ({n_users} users, seed {seed}): best-time {best_conv}/{best_n} "
        f"({best_conv / best_n:.1%}) vs fixed 10:00 UTC {fixed_conv}/{fixed_n} ({fixed_conv / fixed_n:.1%}); "
        f"difference {best_conv / best_n - fixed_conv / fixed_n:+.1%} (95% CI {low:+.1%} to {high:+.1%}); "
        f"ratio {(best_conv / best_n) / (fixed_conv / fixed_n):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--sizes", default="400,2000,10000,40000")
    parser.add_argument("--send-time-users", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    winner_selection([int(s) for s in args.sizes.split(",") if s], args.runs)
    send_time(args.send_time_users, args.seed)


if __name__ == "__main__":
    main()
