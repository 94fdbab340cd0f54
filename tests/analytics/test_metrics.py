"""Tests of ranking metrics and the evaluation protocols, against hand-computed values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.metrics import (
    evaluate_next_event,
    evaluate_sampled,
    full_ranks,
    hit_rate_at_k,
    leave_one_out_split,
    mean_reciprocal_rank,
    ndcg_at_k,
    time_split,
)
from analytics.sequence import MarkovModel, PopularityModel


def test_metrics_from_ranks_by_hand() -> None:
    ranks = [1, 2, 11]
    assert hit_rate_at_k(ranks, 1) == pytest.approx(1 / 3)
    assert hit_rate_at_k(ranks, 10) == pytest.approx(2 / 3)
    assert ndcg_at_k(ranks, 10) == pytest.approx((1.0 + 1 / math.log2(3)) / 3)
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 1 / 11) / 3)
    assert hit_rate_at_k([], 5) == 0.0
    assert ndcg_at_k([], 5) == 0.0
    assert mean_reciprocal_rank([]) == 0.0


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="1-based"):
        hit_rate_at_k([0, 1], 1)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([1], 0)
    with pytest.raises(ValueError, match="one-dimensional"):
        mean_reciprocal_rank([[1, 2]])


def test_full_ranking_with_ties_and_unknown_targets() -> None:
    model = MarkovModel(alpha=0.0).fit([["a", "b"], ["a", "b"], ["a", "c"], ["d"]])
    # After "a": b=2/3, c=1/3, a=d=0 (tied, expected rank 3.5); "zz" is unknown: rank len+1.
    ranks = full_ranks(model, [["a"], ["a"], ["a"], ["a"]], ["b", "c", "d", "zz"])
    np.testing.assert_allclose(ranks, [1.0, 2.0, 3.5, 5.0])
    report = evaluate_next_event(model, [["a"], ["a"]], ["b", "c"], ks=(1, 2))
    assert report.n == 2
    assert report.hit_rate == {1: 0.5, 2: 1.0}
    assert report.mrr == pytest.approx(0.75)
    assert "HR@1=0.5000" in report.summary()
    with pytest.raises(ValueError, match="2 prefixes but 1 targets"):
        evaluate_next_event(model, [["a"], ["a"]], ["b"])


def test_sampled_protocol_excludes_history_and_is_seeded() -> None:
    vocabulary = [f"t{i:03d}" for i in range(150)]
    # Strictly decreasing popularity: t000 occurs 150 times, t149 once.
    model = PopularityModel(alpha=0.0).fit([vocabulary[: 150 - i] for i in range(150)])
    prefixes = [vocabulary[:5]] * 3
    # t005 is the most popular token the user never had: rank 1 of 101 whatever is sampled.
    # t149 is the least popular: every negative beats it, rank 101.
    report = evaluate_sampled(model, prefixes[:2], ["t005", "t149"], ks=(1, 10))
    assert report.hit_rate == {1: 0.5, 10: 0.5}
    assert report.mrr == pytest.approx((1.0 + 1 / 101) / 2)
    # t100: 95 unseen tokens are more popular, 49 less; its rank depends on the seeded sample.
    first = evaluate_sampled(model, prefixes, ["t100"] * 3, ks=(10,), random_state=7)
    assert first == evaluate_sampled(model, prefixes, ["t100"] * 3, ks=(10,), random_state=7)
    rank = 1 / first.mrr
    assert 52 <= rank <= 96


def test_sampled_protocol_uses_all_negatives_when_vocabulary_is_small() -> None:
    model = PopularityModel(alpha=0.0).fit([["a", "a", "a", "b", "c"]])
    report = evaluate_sampled(model, [["b"]], ["a"], ks=(1,))
    assert report.hit_rate[1] == 1.0


def test_leave_one_out_split() -> None:
    split = leave_one_out_split([["a", "b", "c", "d"], ["x", "y"]])
    assert split.train == [["a", "b"], ["x", "y"]]
    assert split.validation == [["a", "b", "c"]]
    assert split.test_prefixes == [["a", "b", "c"]]
    assert split.test_targets == ["d"]
    with pytest.raises(ValueError, match="min_length"):
        leave_one_out_split([], min_length=2)


def test_time_split_holds_out_events_after_cutoff() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [[start + timedelta(days=day) for day in (0, 1, 5, 6)], [start + timedelta(days=7)] * 2]
    split = time_split([["a", "b", "c", "d"], ["e", "f"]], times, cutoff=start + timedelta(days=3))
    assert split.train == [["a", "b"]]
    assert split.test_prefixes == [["a", "b"], ["a", "b", "c"], ["e"]]
    assert split.test_targets == ["c", "d", "f"]
    with pytest.raises(ValueError, match="not in ascending order"):
        time_split([["a", "b"]], [[start, start - timedelta(days=1)]], cutoff=start)
    with pytest.raises(ValueError, match="2 tokens but 1 times"):
        time_split([["a", "b"]], [[start]], cutoff=start)
