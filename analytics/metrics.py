"""Ranking metrics and evaluation protocols for next-event models (HR@k, NDCG@k, MRR)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analytics.sequence.base import SequenceModel, check_sequences

logger = logging.getLogger(__name__)


def _ranks(ranks: ArrayLike) -> NDArray[np.float64]:
    values = np.asarray(ranks, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"ranks must be one-dimensional, got shape {values.shape}")
    if values.size and values.min() < 1:
        raise ValueError(f"ranks are 1-based, got a minimum of {values.min()}")
    return values


def hit_rate_at_k(ranks: ArrayLike, k: int) -> float:
    """Share of targets ranked within the top `k` (HR@k); 0.0 for no targets."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = _ranks(ranks)
    return float(np.mean(values <= k)) if values.size else 0.0


def ndcg_at_k(ranks: ArrayLike, k: int) -> float:
    """NDCG@k with one relevant item per target: 1/log2(rank+1) inside the top `k`, else 0."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = _ranks(ranks)
    if not values.size:
        return 0.0
    gains = np.where(values <= k, 1.0 / np.log2(values + 1.0), 0.0)
    return float(np.mean(gains))


def mean_reciprocal_rank(ranks: ArrayLike) -> float:
    """Mean of 1/rank over targets (MRR); 0.0 for no targets."""
    values = _ranks(ranks)
    return float(np.mean(1.0 / values)) if values.size else 0.0


@dataclass(frozen=True)
class RankingReport:
    """Ranking quality of one model on one set of (prefix, target) pairs."""

    n: int
    hit_rate: dict[int, float]
    ndcg: dict[int, float]
    mrr: float

    def summary(self) -> str:
        """One line for logs and benchmark output."""
        parts = [f"n={self.n}"]
        parts += [f"HR@{k}={value:.4f}" for k, value in self.hit_rate.items()]
        parts += [f"NDCG@{k}={value:.4f}" for k, value in self.ndcg.items()]
        return " ".join([*parts, f"MRR={self.mrr:.4f}"])


def _report(ranks: NDArray[np.float64], ks: Sequence[int]) -> RankingReport:
    return RankingReport(
        n=int(ranks.size),
        hit_rate={k: hit_rate_at_k(ranks, k) for k in ks},
        ndcg={k: ndcg_at_k(ranks, k) for k in ks},
        mrr=mean_reciprocal_rank(ranks),
    )


def _expected_rank(scores: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based rank of each target among a row's scores, ties counted as half (random tie-breaking)."""
    greater = (scores > target[:, None]).sum(axis=1)
    ties = (scores == target[:, None]).sum(axis=1) - 1
    return np.asarray(1.0 + greater + 0.5 * ties, dtype=np.float64)


def _check_pairs(prefixes: Sequence[Sequence[str]], targets: Sequence[str]) -> list[list[str]]:
    checked = check_sequences(prefixes, name="prefixes")
    if len(checked) != len(targets):
        raise ValueError(f"{len(checked)} prefixes but {len(targets)} targets")
    return checked


def full_ranks(
    model: SequenceModel, prefixes: Sequence[Sequence[str]], targets: Sequence[str], *, batch_size: int = 4096
) -> NDArray[np.float64]:
    """Rank of each target among all of the model's classes; unknown targets rank last + 1."""
    checked = _check_pairs(prefixes, targets)
    index = {token: position for position, token in enumerate(model.classes_.tolist())}
    ranks = np.empty(len(checked), dtype=np.float64)
    for start in range(0, len(checked), batch_size):
        proba = model.predict_proba(checked[start : start + batch_size])
        ids = np.array([index.get(target, -1) for target in targets[start : start + batch_size]])
        known = ids >= 0
        batch = np.full(len(ids), len(index) + 1.0)
        if known.any():
            batch[known] = _expected_rank(proba[known], proba[known, ids[known]])
        ranks[start : start + len(ids)] = batch
    unknown = int(np.sum(ranks > len(index)))
    if unknown:
        logger.info("%d of %d targets are unknown to the model and count as misses", unknown, len(ranks))
    return ranks


def evaluate_next_event(
    model: SequenceModel,
    prefixes: Sequence[Sequence[str]],
    targets: Sequence[str],
    *,
    ks: Sequence[int] = (1, 5, 10),
) -> RankingReport:
    """Full-ranking evaluation: each target is ranked among every token the model knows."""
    return _report(full_ranks(model, prefixes, targets), ks)


def evaluate_sampled(
    model: SequenceModel,
    prefixes: Sequence[Sequence[str]],
    targets: Sequence[str],
    *,
    n_negatives: int = 100,
    ks: Sequence[int] = (10,),
    random_state: int = 0,
    batch_size: int = 4096,
) -> RankingReport:
    """Sampled protocol (SASRec): rank each target among `n_negatives` tokens the user never had.

    Negatives are drawn uniformly, seeded, from the model's classes absent from the user's prefix
    and target. With a small vocabulary fewer than `n_negatives` may exist; then all are used
    (logged), which makes the figure stricter, not looser. Unknown targets count as misses.
    """
    checked = _check_pairs(prefixes, targets)
    rng = np.random.default_rng(random_state)
    classes = model.classes_.tolist()
    index = {token: position for position, token in enumerate(classes)}
    ranks = np.empty(len(checked), dtype=np.float64)
    short = 0
    for start in range(0, len(checked), batch_size):
        chunk = checked[start : start + batch_size]
        proba = model.predict_proba(chunk)
        for offset, (prefix, target) in enumerate(
            zip(chunk, targets[start : start + batch_size], strict=True)
        ):
            position = index.get(target)
            if position is None:
                ranks[start + offset] = n_negatives + 1.0
                continue
            seen = {index[token] for token in prefix if token in index} | {position}
            pool = np.array([i for i in range(len(classes)) if i not in seen], dtype=np.int64)
            if len(pool) < n_negatives:
                short += 1
                negatives = pool
            else:
                negatives = rng.choice(pool, size=n_negatives, replace=False)
            row = proba[offset]
            score = row[position]
            ranks[start + offset] = (
                1.0 + np.sum(row[negatives] > score) + 0.5 * np.sum(row[negatives] == score)
            )
    if short:
        logger.info(
            "%d of %d users had fewer than %d possible negatives; all were used",
            short,
            len(ranks),
            n_negatives,
        )
    return _report(ranks, ks)


@dataclass(frozen=True)
class LeaveOneOutSplit:
    """The GRU4Rec/SASRec split: last event is the test target, the one before the validation target.

    `train` holds each user's sequence without its last two events (whole sequences of users too
    short to split); `validation` is `seq[:-1]`, whose last token is the validation target, which
    is what `NextEventModel.fit(train, validation_sequences=validation)` expects.
    """

    train: list[list[str]]
    validation: list[list[str]]
    test_prefixes: list[list[str]]
    test_targets: list[str]


def leave_one_out_split(sequences: Iterable[Sequence[str]], *, min_length: int = 3) -> LeaveOneOutSplit:
    """Split each user's sequence leave-one-out; users shorter than `min_length` only train."""
    if min_length < 3:
        raise ValueError(f"min_length must be >= 3 to hold out two events, got {min_length}")
    split = LeaveOneOutSplit([], [], [], [])
    for sequence in check_sequences(sequences):
        if len(sequence) < min_length:
            split.train.append(sequence)
            continue
        split.train.append(sequence[:-2])
        split.validation.append(sequence[:-1])
        split.test_prefixes.append(sequence[:-1])
        split.test_targets.append(sequence[-1])
    return split


@dataclass(frozen=True)
class TimeSplit:
    """A time-based split: events at or after a cutoff are held out, each with its full prefix."""

    train: list[list[str]]
    test_prefixes: list[list[str]]
    test_targets: list[str]


def time_split(
    sequences: Iterable[Sequence[str]],
    times: Iterable[Sequence[datetime]],
    *,
    cutoff: datetime,
) -> TimeSplit:
    """Hold out each user's events at or after `cutoff`, as in production: train on the past only.

    Every held-out event becomes a test pair whose prefix is all of the user's earlier events
    (including earlier held-out ones, which the bot would have seen by then).

    Raises:
        ValueError: if a user's times are not sorted or do not match the tokens one to one.
    """
    split = TimeSplit([], [], [])
    for user, (sequence, stamps) in enumerate(zip(check_sequences(sequences), times, strict=True)):
        stamps = list(stamps)
        if len(stamps) != len(sequence):
            raise ValueError(f"user {user}: {len(sequence)} tokens but {len(stamps)} times")
        if any(later < earlier for earlier, later in itertools.pairwise(stamps)):
            raise ValueError(f"user {user}: times are not in ascending order")
        boundary = sum(1 for stamp in stamps if stamp < cutoff)
        if boundary:
            split.train.append(sequence[:boundary])
        for position in range(max(boundary, 1), len(sequence)):
            split.test_prefixes.append(sequence[:position])
            split.test_targets.append(sequence[position])
    return split
