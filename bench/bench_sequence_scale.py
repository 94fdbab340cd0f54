"""Benchmark of the follow-up model at catalogue scale: 10,000 tokens, SASRec's evaluation protocol.

Run: `python -m bench.bench_sequence_scale` (about 13 minutes on 2 cores; `--budget` bounds training).
Generates (seeded) a set the shape of SASRec's Amazon Games data: 31,000 users, 10,000 tokens
with Zipf popularity, ~287,000 events, mean length 9 (at least 5 per user, as SASRec filters).
Each next event comes from one of four sources, so a first-order Markov chain captures only
part of the structure:

- first order (p=0.30): one of the last token's few successors (same taste cluster);
- second order (p=0.25): one of the follow-ups of the token *two* steps back;
- taste (p=0.30): a popular token of one of the user's two hidden taste clusters;
- popularity (p=0.15): any token, Zipf-distributed.

It trains popularity, first-order Markov and the LSTM (sampled softmax, chosen automatically)
on the leave-one-out split, scores all three in the SASRec protocol (HR@10 / NDCG@10 against
100 sampled negatives) and by full ranking, and times one training step of the full and the
sampled softmax at several vocabulary sizes to show where the cost stops growing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.metrics import evaluate_next_event, leave_one_out_split
from analytics.sequence import MarkovModel, NextEventModel, PopularityModel
from analytics.sequence.sampled_eval import sampled_ranks
from bench.bench_sequence import peak_rss_mib

SOURCES = {"first_order": 0.30, "second_order": 0.25, "taste": 0.30, "popularity": 0.15}


def _pick(cumulative: np.ndarray[Any, Any], choices: np.ndarray[Any, Any], r: np.ndarray[Any, Any]) -> Any:
    """Row-wise inverse-CDF draw: `choices[i, j]` where `cumulative[i, j-1] < r[i] <= cumulative[i, j]`."""
    column = np.minimum((r[:, None] > cumulative).sum(axis=1), choices.shape[1] - 1)
    return choices[np.arange(len(r)), column]


def generate(
    users: int = 31_000,
    tokens: int = 10_000,
    *,
    mean_length: float = 9.26,
    min_length: int = 5,
    clusters: int = 100,
    zipf: float = 0.7,
    seed: int = 0,
) -> list[list[str]]:
    """Synthetic sequences with Zipf popularity, hidden tastes and first- and second-order links."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, tokens + 1) ** zipf
    popularity /= popularity.sum()
    cluster_of = rng.integers(clusters, size=tokens)
    members = [np.flatnonzero(cluster_of == c) for c in range(clusters)]
    width = max(len(m) for m in members)
    # Per cluster: its tokens, padded, and their popularity CDF (padding is never reached).
    cluster_tokens = np.zeros((clusters, width), dtype=np.int64)
    cluster_cdf = np.ones((clusters, width), dtype=np.float64)
    for c, m in enumerate(members):
        cluster_tokens[c, : len(m)] = m
        cluster_cdf[c, : len(m)] = np.cumsum(popularity[m] / popularity[m].sum())

    def from_cluster(c: np.ndarray[Any, Any]) -> Any:
        return _pick(cluster_cdf[c], cluster_tokens[c], rng.random(len(c)))

    # Each token's successors (first order) and follow-ups (read two steps later), from its cluster.
    successors = np.stack([from_cluster(cluster_of) for _ in range(4)], axis=1)
    successor_cdf = np.cumsum(np.broadcast_to([0.5, 0.25, 0.15, 0.10], successors.shape), axis=1)
    followups = np.stack([from_cluster(cluster_of) for _ in range(2)], axis=1)
    followup_cdf = np.cumsum(np.broadcast_to([0.7, 0.3], followups.shape), axis=1)
    global_cdf = np.cumsum(popularity)

    taste = rng.integers(clusters, size=(users, 2))
    extra = max(mean_length - min_length, 1e-9)
    lengths = np.minimum(min_length - 1 + rng.geometric(1.0 / (extra + 1.0), size=users), 200)
    longest = int(lengths.max())
    states = np.zeros((users, longest), dtype=np.int64)
    everyone = np.arange(users)
    states[:, 0] = from_cluster(taste[everyone, rng.integers(2, size=users)])
    thresholds = np.cumsum(list(SOURCES.values()))
    for step in range(1, longest):
        source = np.searchsorted(thresholds, rng.random(users) * thresholds[-1], side="right")
        if step < 2:
            source = np.where(source == 1, 0, source)
        previous = states[:, step - 1]
        following = _pick(successor_cdf[previous], successors[previous], rng.random(users))
        if step >= 2:
            back = states[:, step - 2]
            second = _pick(followup_cdf[back], followups[back], rng.random(users))
            following = np.where(source == 1, second, following)
        tasteful = from_cluster(taste[everyone, rng.integers(2, size=users)])
        following = np.where(source == 2, tasteful, following)
        anything = np.minimum(np.searchsorted(global_cdf, rng.random(users)), tokens - 1)
        states[:, step] = np.where(source == 3, anything, following)
    names = np.array([f"item{i}" for i in range(tokens)])
    return [names[states[user, : lengths[user]]].tolist() for user in range(users)]


class CachedMarkov:
    """`MarkovModel`'s probabilities with its smoothed transition matrix normalised once.

    `MarkovModel` re-smooths its `vocabulary x vocabulary` counts for every batch of 1,024
    prefixes, which at 10,000 tokens costs minutes over 31,000 users twice (sampled and full
    ranking); the rows here are the same numbers (checked in `main`), computed once.
    """

    def __init__(self, model: MarkovModel) -> None:
        self.classes_ = model.classes_
        self.index = {token: position for position, token in enumerate(model.classes_.tolist())}
        counts = model.transition_counts_
        smoothed = counts + model.alpha
        self.rows = smoothed / smoothed.sum(axis=1, keepdims=True)
        self.seen = counts.sum(axis=1) > 0
        self.prior = model.prior_

    def predict_proba(self, prefixes: Any) -> np.ndarray[Any, Any]:
        previous = np.array([self.index.get(p[-1], -1) if p else -1 for p in prefixes], dtype=np.int64)
        usable = previous >= 0
        usable[usable] = self.seen[previous[usable]]
        result = np.tile(self.prior, (len(prefixes), 1))
        result[usable] = self.rows[previous[usable]]
        return result

    def rank(self, prefixes: Any, k: int = 10) -> list[list[str]]:
        raise NotImplementedError


def step_seconds(vocab_size: int, *, sampled: bool, batches: int, batch_size: int, width: int) -> float:
    """Median seconds of one training step of a fresh LSTM at `vocab_size` (same data shape)."""
    import keras

    from analytics.sequence.lstm import N_RESERVED, sampling_proposal

    rng = np.random.default_rng(0)
    model = NextEventModel(softmax="sampled" if sampled else "full", random_state=0)
    x = rng.integers(N_RESERVED, vocab_size, size=(batch_size, width)).astype(np.int32)
    y = rng.integers(N_RESERVED, vocab_size, size=(batch_size, width)).astype(np.int32)
    w = np.ones((batch_size, width), dtype=np.float32)
    keras.utils.set_random_seed(0)
    proposal = sampling_proposal(y, vocab_size) if sampled else None
    _, trainer = model._build(vocab_size, tied=False, proposal=proposal)
    inputs = (x, y) if sampled else x
    trainer.train_on_batch(inputs, y, sample_weight=w)  # compiles
    times = []
    for _ in range(batches):
        started = time.perf_counter()
        trainer.train_on_batch(inputs, y, sample_weight=w)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=31_000)
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=540.0, help="max_train_seconds of the LSTM")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-sampled", type=int, default=512)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=4e-3)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--tie-embeddings", action="store_true")
    parser.add_argument("--step-batches", type=int, default=5, help="timed steps per size (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("analytics.sequence.lstm").setLevel(logging.INFO)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes of the step timing
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # Keras 3.15 + NumPy 2.4 chatter
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {vars(args)}")

    started = time.perf_counter()
    sequences = generate(args.users, args.tokens, seed=args.seed)
    events = sum(map(len, sequences))
    distinct = len({token for sequence in sequences for token in sequence})
    print(
        f"synthetic: {len(sequences)} users, {distinct} distinct tokens, {events} events "
        f"(mean length {events / len(sequences):.2f}) in {time.perf_counter() - started:.1f} s"
    )
    split = leave_one_out_split(sequences)
    models: dict[str, PopularityModel | MarkovModel | NextEventModel] = {
        "popularity": PopularityModel(),
        "markov": MarkovModel(),
        "lstm": NextEventModel(
            embedding_dim=args.embedding_dim,
            units=args.units,
            dropout=args.dropout,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            n_sampled=args.n_sampled,
            tie_embeddings=args.tie_embeddings,
            max_train_seconds=args.budget,
            random_state=args.seed,
        ),
    }
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(split.train, validation_sequences=split.validation)
        seconds = time.perf_counter() - started
        extra = ""
        if isinstance(model, NextEventModel):
            m = model.metrics_
            extra = (
                f" ({m['epochs_run']:.0f} epochs, {m['seconds_per_epoch']:.1f} s/epoch, best epoch "
                f"{m['best_epoch']:.0f}, stopped by budget: {bool(m['stopped_by_budget'])}, sampled "
                f"softmax: {bool(m['sampled_softmax'])}, tied: {bool(m['tied_embeddings'])}, "
                f"{m['cpu_cores_busy']:.2f} cores busy)"
            )
        print(f"fit {name}: {seconds:.1f} s{extra}; peak RSS {peak_rss_mib():.0f} MiB", flush=True)

    markov = models["markov"]
    assert isinstance(markov, MarkovModel)
    cached = CachedMarkov(markov)
    probe = [*split.test_prefixes[:200], [], ["never-seen"]]
    np.testing.assert_allclose(cached.predict_proba(probe), markov.predict_proba(probe), rtol=1e-12)
    scored: dict[str, Any] = {**models, "markov": cached}
    sampled: dict[str, float] = {}
    for name, model in scored.items():
        started = time.perf_counter()
        result = sampled_ranks(model, split.test_prefixes, split.test_targets, random_state=args.seed)
        report = result.report(ks=(1, 10))
        full = evaluate_next_event(model, split.test_prefixes, split.test_targets, ks=(10,))
        sampled[name] = report.hit_rate[10]
        print(
            f"eval {name}: SASRec protocol (100 negatives) HR@10={report.hit_rate[10]:.4f} "
            f"NDCG@10={report.ndcg[10]:.4f} HR@1={report.hit_rate[1]:.4f}; full ranking "
            f"HR@10={full.hit_rate[10]:.4f} NDCG@10={full.ndcg[10]:.4f} "
            f"({time.perf_counter() - started:.1f} s, {result.short} short, {result.unknown} unknown)",
            flush=True,
        )
    print(
        f"HR@10 ratios: lstm/markov {sampled['lstm'] / sampled['markov']:.3f}, "
        f"lstm/popularity {sampled['lstm'] / sampled['popularity']:.3f}, "
        f"markov/popularity {sampled['markov'] / sampled['popularity']:.3f}"
    )

    if args.step_batches:
        shape = {"batches": args.step_batches, "batch_size": args.batch_size, "width": 16}
        baseline = step_seconds(1_000, sampled=False, **shape)
        for size in (1_000, 10_000, 30_000):
            full_step = baseline if size == 1_000 else step_seconds(size, sampled=False, **shape)
            sampled_step = step_seconds(size, sampled=True, **shape)
            print(
                f"training step at {size} tokens ({args.batch_size} x 16): full softmax "
                f"{full_step * 1000:.0f} ms ({full_step / baseline:.1f}x the 1,000-token step), "
                f"sampled {sampled_step * 1000:.0f} ms; full/sampled {full_step / sampled_step:.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
