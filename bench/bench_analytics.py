"""Benchmark analytics on a synthetic population: features, segmentation, rules, end to end.

    python -m bench.bench_analytics --users 100000 --events-per-user 20 --db sqlite:///var/bench100k.db
    python -m bench.bench_analytics --users 100000 --db postgresql+psycopg://postgres@127.0.0.1:5432/test

A SQLite file (or PostgreSQL schema `bench_<users>`) that already holds the population is
reused; its true types sit in a JSON file beside it (for SQLite) or are regenerated.
Peak memory is the process's maximum RSS after each step (monotonic, so a step's figure
includes earlier steps).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder
from sklearn.metrics import adjusted_rand_score
from sqlalchemy import create_engine, text

from analytics import (
    AnalyticsConfig,
    UserSegmenter,
    cluster_matrix,
    compute_features,
    mine_rules,
    run_analytics,
)
from analytics.naming import describe_segments
from analytics.pipeline import user_baskets
from demo.simulation import TYPES
from demo.synthetic import DEFAULT_END, populate, synthetic_population
from store import count_events, create_db_engine, upgrade


def peak_mb() -> float:
    """Maximum resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, started: float) -> float:
    elapsed = time.perf_counter() - started
    print(f"{label:<28} {elapsed:8.1f} s   peak RSS {peak_mb():8.0f} MiB", flush=True)
    return elapsed


def open_database(url: str, users: int) -> tuple[str, Path | None]:
    """The engine URL to use and where the true types are kept."""
    if url.startswith("postgresql"):
        schema = f"bench_{users}"
        admin = create_engine(url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        admin.dispose()
        return f"{url}?options=-csearch_path%3D{schema}", None
    path = Path(url.removeprefix("sqlite:///"))
    return url, path.with_suffix(".types.json")


def true_types(users: int, events_per_user: float, seed: int) -> dict[int, str]:
    """Redraw the types (no events are generated) when no sidecar exists."""
    return synthetic_population(users, events_per_user=events_per_user, seed=seed).true_types()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events-per-user", type=float, default=20.0)
    parser.add_argument("--db", default="sqlite:///var/bench_analytics.db")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-support", type=float, default=0.02)
    parser.add_argument("--skip-e2e", action="store_true", help="Skip the stored end-to-end run.")
    args = parser.parse_args()

    url, sidecar = open_database(args.db, args.users)
    engine = create_db_engine(url)
    upgrade(engine)
    print(f"backend {engine.dialect.name}, {args.users} users, {args.events_per_user} events/user target")
    if count_events(engine) == 0:
        started = time.perf_counter()
        population = populate(engine, args.users, events_per_user=args.events_per_user, seed=args.seed)
        timed(f"generate {population.n_events} events", started)
        types = population.types
        if sidecar is not None:
            sidecar.write_text(json.dumps(types), encoding="utf-8")
    elif sidecar is not None and sidecar.exists():
        types = {int(k): v for k, v in json.loads(sidecar.read_text(encoding="utf-8")).items()}
    else:
        types = true_types(args.users, args.events_per_user, args.seed)
    print(f"events stored: {count_events(engine)}")

    started = time.perf_counter()
    features = compute_features(engine, as_of=DEFAULT_END)
    t_features = timed(f"features ({features.n_users} users)", started)

    started = time.perf_counter()
    segmenter = UserSegmenter(random_state=0).fit(cluster_matrix(features.frame))
    t_segments = timed(f"segmentation (k={segmenter.n_clusters_})", started)
    truth = [types.get(int(u), "?") for u in features.frame.index]
    ari = adjusted_rand_score(truth, segmenter.labels_)
    print(f"adjusted Rand index vs {len(TYPES)} true types: {ari:.3f}; scores {segmenter.scores_}")
    for k, scores in segmenter.k_scores_.items():
        print(f"  k={k}: {scores}")

    profiles = describe_segments(features.frame, segmenter.labels_)
    names = {p.label: p.name for p in profiles}
    segment_names = pd.Series([names[int(x)] for x in segmenter.labels_], index=features.frame.index)
    started = time.perf_counter()
    onehot = user_baskets(features, segment_names)
    t_baskets = timed(f"baskets ({onehot.shape[1]} items)", started)
    basket_lists = [list(onehot.columns[row]) for row in onehot.to_numpy()]

    started = time.perf_counter()
    ours = mine_rules(basket_lists, min_support=args.min_support, min_confidence=0.5, min_lift=1.2, max_len=3)
    t_ours = timed(f"mine_rules ({len(ours)} rules)", started)
    started = time.perf_counter()
    encoder = TransactionEncoder()
    frame = pd.DataFrame(encoder.fit(basket_lists).transform(basket_lists), columns=encoder.columns_)
    itemsets = fpgrowth(frame, min_support=args.min_support, use_colnames=True, max_len=3)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = association_rules(itemsets, metric="confidence", min_threshold=0.5)
    direct = direct[(direct["lift"] >= 1.2) & (direct["consequents"].map(len) == 1)]
    t_direct = timed(f"direct mlxtend ({len(direct)} rules)", started)
    print(f"rule mining overhead vs direct mlxtend: {t_ours / t_direct:.2f}x")

    total = t_features + t_segments + t_baskets + t_ours
    print(f"steps total (features+segmentation+baskets+rules): {total:.1f} s")
    if not args.skip_e2e:
        started = time.perf_counter()
        summary = run_analytics(
            engine, config=AnalyticsConfig(min_support=args.min_support), as_of=DEFAULT_END
        )
        timed("end to end run (stored)", started)
        print(f"run {summary.run_id}: {summary.message}; timings {summary.timings}")
    engine.dispose()


if __name__ == "__main__":
    main()
