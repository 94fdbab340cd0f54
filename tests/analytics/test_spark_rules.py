"""Spark's FPGrowth gives the local engine's rules: same sets, measures equal to 1e-9, arules' 410."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.errors import RuleMiningError
from analytics.rules import AssociationRule, mine_rules, read_baskets

pytest.importorskip("pyspark", reason="the Spark engine is an optional extra: pip install 'rapport[spark]'")

from analytics.spark import SparkSettings, spark_session
from analytics.spark.rules import mine_rules_spark

GROCERIES = Path(__file__).resolve().parents[1] / "data" / "groceries" / "groceries.csv"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    # Tests talk to Spark over the loopback interface only.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with spark_session(SparkSettings(master="local[2]")) as session:
        yield session


def _by_key(rules: list[AssociationRule]) -> dict[tuple[tuple[str, ...], tuple[str, ...]], AssociationRule]:
    return {(rule.antecedents, rule.consequents): rule for rule in rules}


def _baskets(seed: int, n: int = 600) -> list[list[str]]:
    """Baskets of user items with planted associations (pricing ⇒ billing, reaction ⇒ poll)."""
    rng = np.random.default_rng(seed)
    items = [f"intent:{name}" for name in ("pricing", "billing", "docs", "api_keys", "greet")]
    items += ["action:reaction", "action:poll_answer", "returned_after_push", "feedback:positive"]
    baskets = []
    for _ in range(n):
        basket = {item for item in items if rng.random() < 0.2}
        if "intent:pricing" in basket and rng.random() < 0.8:
            basket.add("intent:billing")
        if "action:reaction" in basket and rng.random() < 0.7:
            basket.add("action:poll_answer")
        baskets.append(sorted(basket))
    return baskets


def test_spark_and_local_engines_find_the_same_rules(spark: Any) -> None:
    baskets = _baskets(0)
    options: dict[str, Any] = {"min_support": 0.02, "min_confidence": 0.3, "min_lift": 1.0}
    local = _by_key(mine_rules(baskets, **options))
    distributed = _by_key(mine_rules_spark(spark, baskets, **options))
    assert len(local) > 5
    assert set(distributed) == set(local)
    for key, rule in local.items():
        other = distributed[key]
        for measure in ("support", "confidence", "lift", "leverage"):
            assert getattr(other, measure) == pytest.approx(getattr(rule, measure), abs=1e-9), (key, measure)
        assert (other.conviction is None) == (rule.conviction is None)
        if rule.conviction is not None:
            assert other.conviction == pytest.approx(rule.conviction, abs=1e-9)


def test_outcome_and_length_filters_match_the_local_engine(spark: Any) -> None:
    baskets = _baskets(3)
    options: dict[str, Any] = {"min_support": 0.01, "min_confidence": 0.1, "max_len": 2}
    outcomes = {"intent:billing", "action:poll_answer"}
    local = _by_key(mine_rules(baskets, outcomes=outcomes, **options))
    distributed = _by_key(mine_rules_spark(spark, baskets, outcomes=outcomes, **options))
    assert local and set(distributed) == set(local)
    assert all(len(a) + len(c) <= 2 and set(c) <= outcomes for a, c in distributed)


def test_a_spark_dataframe_of_baskets_is_mined_in_place(spark: Any) -> None:
    baskets = _baskets(4)
    frame = spark.createDataFrame([(b,) for b in baskets], "items array<string>")
    assert set(_by_key(mine_rules_spark(spark, frame, min_support=0.05))) == set(
        _by_key(mine_rules(baskets, min_support=0.05))
    )


def test_no_baskets_no_rules_and_bad_thresholds_are_refused(spark: Any) -> None:
    assert mine_rules_spark(spark, [[], []]) == []
    with pytest.raises(RuleMiningError, match="min_support"):
        mine_rules_spark(spark, [["a"]], min_support=0.0)
    with pytest.raises(RuleMiningError, match="algorithm"):
        mine_rules_spark(spark, [["a"]], algorithm="eclat")


@pytest.mark.skipif(not GROCERIES.exists(), reason=f"Groceries data set not found at {GROCERIES}")
def test_groceries_gives_arules_410_rules_on_spark_too(spark: Any) -> None:
    baskets = read_baskets(GROCERIES)
    options: dict[str, Any] = {"min_support": 0.001, "min_confidence": 0.8, "min_lift": 0.0}
    distributed = mine_rules_spark(spark, baskets, **options)
    assert len(distributed) == 410
    local = _by_key(mine_rules(baskets, **options))
    assert set(_by_key(distributed)) == set(local)
    worst = max(abs(rule.lift - local[key].lift) for key, rule in _by_key(distributed).items())
    assert worst <= 1e-9
