"""Association rules with Spark MLlib's FPGrowth: the same rules, measures and order as `mine_rules`.

MLlib mines single-consequent rules with support, confidence and lift, which is what the local
engine keeps by default (as arules does). Leverage and conviction follow from those three:
supp(C) = confidence / lift and supp(A) = support / confidence, so

    leverage = support − supp(A)·supp(C) = support − support / lift
    conviction = (1 − supp(C)) / (1 − confidence)      (∞ when confidence is 1)

Thresholds get the local engine's tolerance (`TOLERANCE`), so a confidence of 8/10 that floating
point computes as 0.7999999… counts as 0.8 on both engines. MLlib has no maximum itemset length:
rules longer than `max_len` are dropped after mining, as the local engine never forms them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Iterable
from typing import Any

from analytics.rules import TOLERANCE, AssociationRule, check_thresholds, rule_sentence

__all__ = ["mine_rules_spark"]

logger = logging.getLogger(__name__)


def _rule(
    antecedent: list[str], consequent: list[str], support: float, confidence: float, lift: float
) -> AssociationRule:
    antecedents = tuple(sorted(antecedent))
    consequents = tuple(sorted(consequent))
    consequent_support = confidence / lift
    conviction = math.inf if confidence >= 1.0 else (1.0 - consequent_support) / (1.0 - confidence)
    return AssociationRule(
        antecedents=antecedents,
        consequents=consequents,
        support=support,
        confidence=confidence,
        lift=lift,
        leverage=support - support / lift,
        conviction=conviction if math.isfinite(conviction) else None,
        sentence=rule_sentence(antecedents, consequents, confidence, lift, support),
    )


def mine_rules_spark(
    spark: Any,
    baskets: Iterable[Collection[str]] | Any,
    *,
    min_support: float = 0.01,
    min_confidence: float = 0.5,
    min_lift: float = 1.0,
    algorithm: str = "fpgrowth",
    max_len: int | None = 10,
    outcomes: Collection[str] | None = None,
    items_column: str = "items",
) -> list[AssociationRule]:
    """Mine rules with MLlib FPGrowth, strongest lift first (the local engine's order).

    Args:
        spark: An active `SparkSession`.
        baskets: Lists of items, or a Spark DataFrame with an array column `items_column` (so
            baskets built in Spark SQL never leave the cluster before mining).
        algorithm: Accepted for the local engine's signature; MLlib has FP-growth only, and
            Apriori finds the same rules.
        outcomes: If given, keep only rules whose consequent is in it.

    Raises:
        RuleMiningError: A threshold outside its range or an unknown algorithm.
    """
    check_thresholds(min_support, min_confidence, min_lift, algorithm)
    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    if isinstance(baskets, DataFrame):
        frame = baskets.select(F.array_distinct(F.col(items_column)).alias("items"))
    else:
        rows = [(sorted(set(basket)),) for basket in baskets]
        frame = spark.createDataFrame(rows, "items array<string>")
    # Empty baskets stay: they count in every support's denominator, as in the local engine.
    frame = frame.cache()
    if frame.where(F.size("items") > 0).isEmpty():
        frame.unpersist()
        return []
    model = FPGrowth(
        itemsCol="items",
        minSupport=max(min_support - TOLERANCE, 0.0),
        minConfidence=min_confidence - TOLERANCE,
    ).fit(frame)
    table = model.associationRules.where(F.col("lift") >= min_lift - TOLERANCE)
    if max_len is not None:
        table = table.where(F.size("antecedent") + F.size("consequent") <= max_len)
    if outcomes is not None:
        table = table.where(F.col("consequent")[0].isin(list(outcomes)))
    collected = table.select("antecedent", "consequent", "support", "confidence", "lift").collect()
    frame.unpersist()
    rules = [
        _rule(
            list(row.antecedent),
            list(row.consequent),
            float(row.support),
            float(row.confidence),
            float(row.lift),
        )
        for row in collected
    ]
    rules.sort(key=lambda rule: (rule.lift, rule.confidence, rule.support), reverse=True)
    logger.info(
        "Spark FPGrowth: %d rules at support %s, confidence %s", len(rules), min_support, min_confidence
    )
    return rules
