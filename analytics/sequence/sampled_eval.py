"""The SASRec evaluation protocol: each user's last event ranked among 100 sampled negatives.

Kang & McAuley (SASRec, 2018), like GRU4Rec+ and most papers since, hold out each user's last
item and rank it against `n_negatives` items drawn uniformly from those the user never
interacted with, reporting HR@10 and NDCG@10. The figures are far higher than full-ranking
ones (`analytics.metrics.evaluate_next_event`), and only comparable with published numbers
under this protocol, which is why both are reported.

This version draws negatives by rejection (a few small draws per user instead of listing the
whole vocabulary per user), so it stays fast at tens of thousands of tokens, and it reads each
batch's probabilities once. It is seeded: the same model, data and seed give the same figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analytics.metrics import RankingReport, hit_rate_at_k, mean_reciprocal_rank, ndcg_at_k
from analytics.sequence.base import SequenceModel, check_sequences

logger = logging.getLogger(__name__)

N_NEGATIVES = 100


@dataclass(frozen=True)
class SampledRanks:
    """Each target's 1-based rank among itself and its negatives, with what the draw ran short of.

    `short` counts users with fewer than `n_negatives` tokens they never had (all of those are
    used then, which makes the figure stricter, not looser); `unknown` counts targets the model
    does not know, ranked last (`n_negatives + 1`) as misses.
    """

    ranks: NDArray[np.float64]
    n_negatives: int
    short: int
    unknown: int

    def report(self, ks: Sequence[int] = (10,)) -> RankingReport:
        """HR@k and NDCG@k for each `k`, and MRR, of these ranks."""
        return RankingReport(
            n=int(self.ranks.size),
            hit_rate={k: hit_rate_at_k(self.ranks, k) for k in ks},
            ndcg={k: ndcg_at_k(self.ranks, k) for k in ks},
            mrr=mean_reciprocal_rank(self.ranks),
        )


def draw_negatives(
    seen: NDArray[np.int64], n_classes: int, n_negatives: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """`n_negatives` distinct class indices uniformly from `range(n_classes)` minus `seen`.

    Rejection sampling: draw a little more than needed, drop seen and repeated ones (keeping
    the order of the draw, so the result is uniform), repeat until enough. When fewer than
    `n_negatives` classes remain, all of them are returned.
    """
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
    excluded = np.unique(seen[(seen >= 0) & (seen < n_classes)])
    available = n_classes - len(excluded)
    if available <= n_negatives:
        pool = np.setdiff1d(np.arange(n_classes, dtype=np.int64), excluded, assume_unique=True)
        return np.asarray(pool, dtype=np.int64)
    chosen: list[int] = []
    taken = set(excluded.tolist())
    while len(chosen) < n_negatives:
        need = n_negatives - len(chosen)
        # Expected draws for `need` hits at acceptance rate `available / n_classes`, plus slack.
        size = int(need * n_classes / available * 1.2) + 8
        for value in rng.integers(0, n_classes, size=size).tolist():
            if value not in taken:
                taken.add(value)
                chosen.append(value)
                if len(chosen) == n_negatives:
                    break
    return np.array(chosen, dtype=np.int64)


def draw_negatives_batch(
    seen: Sequence[NDArray[np.int64]], n_classes: int, n_negatives: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """`draw_negatives` for many users at once: an `(n, n_negatives)` array, -1 where short.

    One matrix of uniform draws for all rows; per row, drawn values already seen by the user or
    already drawn earlier in the row are dropped and the first `n_negatives` left are kept (the
    first distinct unseen values of a uniform stream: a uniform subset). The rare row left with
    too few, and every row of a small vocabulary, goes through `draw_negatives`.
    """
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
    n = len(seen)
    result = np.full((n, n_negatives), -1, dtype=np.int64)
    if n == 0:
        return result
    if n_classes < 4 * n_negatives:
        for row, history in enumerate(seen):
            negatives = draw_negatives(history, n_classes, n_negatives, rng)
            result[row, : len(negatives)] = negatives
        return result
    width = int(n_negatives * 1.25) + 16
    draws = rng.integers(0, n_classes, size=(n, width))
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = np.take_along_axis(draws, order, axis=1)
    repeated = np.zeros_like(draws, dtype=bool)
    # In a stable sort equal values keep their draw order: all but the first are repeats.
    np.put_along_axis(repeated, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
    known = [history[(history >= 0) & (history < n_classes)] for history in seen]
    users = np.repeat(np.arange(n, dtype=np.int64), [len(history) for history in known])
    history_keys = users * n_classes + np.concatenate([*known, np.empty(0, dtype=np.int64)])
    draw_keys = np.arange(n, dtype=np.int64)[:, None] * n_classes + draws
    valid = ~repeated & ~np.isin(draw_keys, history_keys)
    keep = valid & (np.cumsum(valid, axis=1) <= n_negatives)
    enough = keep.sum(axis=1) == n_negatives
    result[enough] = draws[enough][keep[enough]].reshape(-1, n_negatives)
    for row in np.flatnonzero(~enough).tolist():
        result[row] = draw_negatives(seen[row], n_classes, n_negatives, rng)
    return result


def sampled_ranks(
    model: SequenceModel,
    prefixes: Sequence[Sequence[str]],
    targets: Sequence[str],
    *,
    n_negatives: int = N_NEGATIVES,
    random_state: int = 0,
    batch_size: int = 1024,
) -> SampledRanks:
    """Rank each target among `n_negatives` tokens absent from its prefix and itself.

    Ties between the target and a negative count half (the expected rank under random
    tie-breaking), as in `analytics.metrics`, so a constant model is not rewarded.

    Raises:
        ValueError: if prefixes and targets differ in number, or `n_negatives` < 1.
    """
    checked = check_sequences(prefixes, name="prefixes")
    if len(checked) != len(targets):
        raise ValueError(f"{len(checked)} prefixes but {len(targets)} targets")
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng(random_state)
    index = {token: position for position, token in enumerate(model.classes_.tolist())}
    ranks = np.full(len(checked), n_negatives + 1.0, dtype=np.float64)
    short = unknown = 0
    for start in range(0, len(checked), batch_size):
        chunk = checked[start : start + batch_size]
        positions = np.array([index.get(target, -1) for target in targets[start : start + batch_size]])
        known = np.flatnonzero(positions >= 0)
        unknown += len(chunk) - len(known)
        if not len(known):
            continue
        seen = [
            np.array([index.get(token, -1) for token in chunk[row]] + [positions[row]], dtype=np.int64)
            for row in known.tolist()
        ]
        negatives = draw_negatives_batch(seen, len(index), n_negatives, rng)
        short += int(np.sum(negatives[:, -1] < 0))
        proba = model.predict_proba([chunk[row] for row in known.tolist()])
        score = proba[np.arange(len(known)), positions[known]][:, None]
        others = np.take_along_axis(proba, np.maximum(negatives, 0), axis=1)
        drawn = negatives >= 0
        above = np.sum((others > score) & drawn, axis=1)
        tied = np.sum((others == score) & drawn, axis=1)
        ranks[start + known] = 1.0 + above + 0.5 * tied
    if short:
        logger.info("%d of %d users had fewer than %d possible negatives", short, len(ranks), n_negatives)
    if unknown:
        logger.info("%d of %d targets are unknown to the model and count as misses", unknown, len(ranks))
    return SampledRanks(ranks=ranks, n_negatives=n_negatives, short=short, unknown=unknown)


def evaluate_leave_one_out(
    model: SequenceModel,
    sequences: Iterable[Sequence[str]],
    *,
    n_negatives: int = N_NEGATIVES,
    ks: Sequence[int] = (10,),
    random_state: int = 0,
) -> RankingReport:
    """SASRec's protocol on whole user sequences: the last token of each is the target.

    Each sequence's last token is ranked, given the tokens before it, among `n_negatives`
    tokens that appear nowhere in the sequence. Sequences of fewer than two tokens are skipped.
    """
    data = [sequence for sequence in check_sequences(sequences) if len(sequence) >= 2]
    result = sampled_ranks(
        model,
        [sequence[:-1] for sequence in data],
        [sequence[-1] for sequence in data],
        n_negatives=n_negatives,
        random_state=random_state,
    )
    return result.report(ks)
