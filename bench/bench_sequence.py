"""Benchmark of the follow-up model: training, ranking quality and choice throughput.

Run: `python -m bench.bench_sequence --users 20000` (default 100000, ~2M events).
Generates synthetic users with a known structure (seeded): each user has one of a few personas,
each with its own first-order transition matrix over the bot's event tokens, and with p=0.3 the
next token returns to the topic two steps back, which a first-order Markov chain cannot see.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.catalogue import load_catalogue
from analytics.followup import UserContext, choose_followup, choose_followups
from analytics.metrics import evaluate_next_event, evaluate_sampled, leave_one_out_split
from analytics.sequence import (
    EVENT_KINDS,
    MarkovModel,
    NextEventModel,
    PopularityModel,
)
from analytics.sequence.sampled_eval import sampled_ranks
from nlu import FALLBACK_INTENT, default_data_paths, load_training_data

TOKENS = sorted({*EVENT_KINDS, *load_training_data(default_data_paths()).intents, FALLBACK_INTENT})


def generate(users: int, *, mean_length: int = 20, personas: int = 6, seed: int = 0) -> list[list[str]]:
    """Synthetic token sequences: persona-specific Markov chains plus a two-steps-back return."""
    rng = np.random.default_rng(seed)
    size = len(TOKENS)
    transitions = rng.dirichlet(np.full(size, 0.1), size=(personas, size))
    cumulative = np.cumsum(transitions, axis=2)
    persona = rng.integers(personas, size=users)
    lengths = np.clip(rng.poisson(mean_length - 3, size=users) + 3, 3, 200)
    longest = int(lengths.max())
    states = np.zeros((users, longest), dtype=np.int64)
    states[:, 0] = rng.integers(size, size=users)
    for step in range(1, longest):
        rows = cumulative[persona, states[:, step - 1]]
        following = np.minimum((rng.random(users)[:, None] > rows).sum(axis=1), size - 1)
        if step >= 2:
            back = rng.random(users) < 0.3
            following = np.where(back, states[:, step - 2], following)
        states[:, step] = following
    vocabulary = np.array(TOKENS)
    return [vocabulary[states[user, : lengths[user]]].tolist() for user in range(users)]


def load_interactions(path: Path) -> list[list[str]]:
    """Read a public interaction log as per-user sequences ordered by time.

    Accepts MovieLens `ratings.dat` (`user::item::rating::timestamp`) and CSV/TSV/space-separated
    `user item [rating] timestamp` lines (header lines without a numeric timestamp are skipped),
    so the leave-one-out comparison can be run on ML-1M, Steam or Amazon data kept outside the repo.
    """
    events: dict[str, list[tuple[float, str]]] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            for separator in ("::", ",", "\t", " "):
                if separator in line:
                    fields = line.strip().split(separator)
                    break
            else:
                continue
            try:
                stamp = float(fields[-1])
            except ValueError:
                continue
            events.setdefault(fields[0], []).append((stamp, fields[1]))
    return [[item for _, item in sorted(rows, key=lambda row: row[0])] for rows in events.values()]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--data", type=Path, help="a public interaction log to use instead of synthetic users"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # Keras 3.15 + NumPy 2.4 chatter
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, KERAS_BACKEND={backend}, {vars(args)}")

    started = time.perf_counter()
    sequences = load_interactions(args.data) if args.data else generate(args.users, seed=args.seed)
    args.users = len(sequences)
    events = sum(len(sequence) for sequence in sequences)
    source = args.data or "synthetic"
    print(f"{source}: {args.users} users, {events} events in {time.perf_counter() - started:.1f} s")
    split = leave_one_out_split(sequences)

    models: dict[str, PopularityModel | MarkovModel | NextEventModel] = {
        "popularity": PopularityModel(),
        "markov": MarkovModel(),
        "lstm": NextEventModel(
            max_len=args.max_len,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            random_state=args.seed,
        ),
    }
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(split.train, validation_sequences=split.validation)
        seconds = time.perf_counter() - started
        extra = ""
        if isinstance(model, NextEventModel):
            metrics = model.metrics_
            extra = (
                f" ({metrics['epochs_run']:.0f} epochs, {metrics['seconds_per_epoch']:.1f} s/epoch, "
                f"best epoch {metrics['best_epoch']:.0f}, best val_loss {metrics['best_val_loss']:.4f}, "
                f"sampled softmax: {bool(metrics['sampled_softmax'])}, stopped by budget: "
                f"{bool(metrics['stopped_by_budget'])}, {metrics['cpu_cores_busy']:.2f} cores busy)"
            )
        print(f"fit {name}: {seconds:.1f} s{extra}; peak RSS {peak_rss_mib():.0f} MiB")

    for name, model in models.items():
        started = time.perf_counter()
        full = evaluate_next_event(model, split.test_prefixes, split.test_targets, ks=(1, 10))
        sampled = evaluate_sampled(
            model, split.test_prefixes, split.test_targets, ks=(10,), random_state=args.seed
        )
        sasrec = sampled_ranks(model, split.test_prefixes, split.test_targets, random_state=args.seed).report(
            ks=(10,)
        )
        print(
            f"eval {name}: full HR@1={full.hit_rate[1]:.4f} HR@10={full.hit_rate[10]:.4f} "
            f"NDCG@10={full.ndcg[10]:.4f} MRR={full.mrr:.4f}; sampled HR@10={sampled.hit_rate[10]:.4f} "
            f"NDCG@10={sampled.ndcg[10]:.4f}; sampled_eval HR@10={sasrec.hit_rate[10]:.4f} "
            f"NDCG@10={sasrec.ndcg[10]:.4f} ({time.perf_counter() - started:.1f} s)"
        )

    catalogue = load_catalogue()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    lstm = models["lstm"]
    users = (
        UserContext(user_id=index, history=tuple(sequence[-args.max_len :]), segment=None)
        for index, sequence in enumerate(sequences)
    )
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    chosen = 0
    for _, choice in choose_followups(
        users, catalogue.messages, stats={}, model=lstm, now=now, rng=np.random.default_rng(args.seed)
    ):
        chosen += choice is not None
    seconds = time.perf_counter() - started
    print(
        f"batch choice for {args.users} users: {seconds:.1f} s ({args.users / seconds:.0f} users/s), "
        f"{chosen} choices; peak RSS {rss_before:.0f} -> {peak_rss_mib():.0f} MiB"
    )

    with tempfile.TemporaryDirectory() as directory:
        lstm.save(directory)
        started = time.perf_counter()
        loaded = NextEventModel.load(directory)
        load_seconds = time.perf_counter() - started
    history = sequences[0][-args.max_len :]
    rng = np.random.default_rng(args.seed)
    latencies = []
    for _ in range(101):
        started = time.perf_counter()
        choose_followup(
            history, catalogue.messages, segment=None, last_sent={}, stats={}, model=loaded, now=now, rng=rng
        )
        latencies.append((time.perf_counter() - started) * 1000)
    latencies = latencies[1:]  # the first call compiles the predict function
    print(
        f"single-user choice with a loaded model: load {load_seconds:.2f} s, median "
        f"{statistics.median(latencies):.1f} ms, p95 {np.percentile(latencies, 95):.1f} ms, "
        f"p99 {np.percentile(latencies, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
