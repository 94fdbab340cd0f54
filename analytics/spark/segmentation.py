"""Segmentation with MLlib: the local `UserSegmenter`'s scaling, MLlib `KMeans`, k by silhouette.

As locally: the cluster columns are `CLUSTER_COLUMNS` plus the intent topics, heavy-tailed counts
go through log1p, every column is standardised with the population standard deviation (a
constant column becomes 0, as scikit-learn's scale of 1 leaves it), the seed is drawn from
`random_state` the way scikit-learn draws it, and every k in `k_min..k_max` is tried, keeping
the best silhouette. The silhouette is MLlib's `ClusteringEvaluator` with squared Euclidean
distance on every row (it is linear in the rows, so no sample is needed); MLlib computes no
Calinski–Harabasz or Davies–Bouldin score, so those are None in the stored metrics.

Segment names come from `analytics.naming.name_segments`: the per-segment medians are exact
`percentile(…, 0.5)` aggregates in Spark, and only that small table reaches the driver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from analytics.features import CLUSTER_COLUMNS, LOG_COLUMNS, category_groups, compresses
from analytics.naming import SegmentProfile, name_segments, profile_columns
from analytics.spark.features import SparkFeatures, quoted
from analytics.traits import CATEGORY_PREFIX, is_trait_column

__all__ = ["SparkSegmentation", "segment_profiles", "segment_users"]

logger = logging.getLogger(__name__)

_DISTINCT_CHECK_ROWS = 100_000
"""Like the local segmenter: count distinct rows (to cap k) only up to this many users."""


@dataclass(frozen=True)
class SparkSegmentation:
    """Labels per user (DataFrame `user_id`, `segment`) and how k was chosen."""

    labels: Any
    n_clusters: int
    columns: tuple[str, ...]
    k_scores: dict[int, dict[str, float | None]] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    seed: int = 0
    constant: tuple[str, ...] = ()
    """Zero-variance cluster columns (scaled to 0, as scikit-learn's scaler leaves them)."""


def _no_scores() -> dict[str, float | None]:
    return {"silhouette": None, "calinski_harabasz": None, "davies_bouldin": None}


def _scaled(features: SparkFeatures, columns: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """(user_id, z_0..z_m): log1p where the local matrix has it, then (x − mean) / population std."""
    from pyspark.sql import functions as F

    frame = features.frame
    values = []
    for c in columns:
        x = quoted(c).cast("double")
        if c in LOG_COLUMNS:
            x = F.log1p(F.greatest(x, F.lit(0.0)))
        elif is_trait_column(c) and compresses(c):
            x = F.signum(x) * F.log1p(F.abs(x))
        values.append(x)
    traits = [i for i, c in enumerate(columns) if is_trait_column(c)]
    if traits:  # a missing trait takes the mean of those who have it (`cluster_matrix`)
        fills = frame.agg(*(F.avg(values[i]).alias(f"f{i}") for i in traits)).first()
        for i in traits:
            values[i] = F.coalesce(values[i], F.lit(float(fills[f"f{i}"] or 0.0)))
    matrix = frame.select("user_id", *(v.alias(f"x{i}") for i, v in enumerate(values)))
    moments = matrix.agg(
        *(F.avg(f"x{i}").alias(f"m{i}") for i in range(len(columns))),
        *(F.stddev_pop(f"x{i}").alias(f"s{i}") for i in range(len(columns))),
    ).first()
    scales = []
    constant = []
    for i in range(len(columns)):
        mean = float(moments[f"m{i}"])
        std = float(moments[f"s{i}"] or 0.0)
        # scikit-learn treats a variance within rounding of zero as a constant feature (scale 1).
        scales.append(std if std > 10 * np.finfo(np.float64).eps * max(1.0, abs(mean)) else 1.0)
        if std == 0.0:
            constant.append(columns[i])
    for group in category_groups(columns):  # `share_scales`: one categorical trait, one scale
        total = sum(float(moments[f"s{i}"] or 0.0) ** 2 for i in group)
        if total > 10 * np.finfo(np.float64).eps:
            for i in group:
                scales[i] = float(np.sqrt(total))
    scaled = [
        ((F.col(f"x{i}") - F.lit(float(moments[f"m{i}"]))) / F.lit(scales[i])).alias(f"z{i}")
        for i in range(len(columns))
    ]
    return matrix.select("user_id", *scaled), tuple(constant)


def segment_users(
    features: SparkFeatures,
    *,
    k_min: int = 2,
    k_max: int = 8,
    random_state: int | None = 0,
    max_iter: int = 100,
    n_init: int = 1,
) -> SparkSegmentation:
    """KMeans for every k in `k_min..k_max`, the best silhouette kept; one segment when none splits.

    `n_init` seeds per k (the lowest within-cluster cost wins), as scikit-learn's `n_init`.

    Raises:
        ValueError: `k_min` above `k_max`, or a k below 1.
    """
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    if k_min < 1 or k_max < 1 or k_min > k_max:
        raise ValueError(f"k_min={k_min} should be <= k_max={k_max}, both >= 1")
    columns = (*CLUSTER_COLUMNS, *features.topics, *features.trait_columns)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    n = features.n_users
    if n == 0:
        return SparkSegmentation(features.frame.select("user_id").withColumn("segment", F.lit(0)), 0, columns)
    scaled, constant = _scaled(features, columns)
    names = [f"z{i}" for i in range(len(columns))]
    data = (
        VectorAssembler(inputCols=names, outputCol="features").transform(scaled).select("user_id", "features")
    )
    data = data.cache()
    distinct = int(scaled.select(*names).distinct().count()) if n <= _DISTINCT_CHECK_ROWS else n
    top = min(k_max, n - 1, distinct)
    single = SparkSegmentation(
        data.select("user_id", F.lit(0).cast("long").alias("segment")),
        1,
        columns,
        {},
        _no_scores(),
        seed,
        constant,
    )
    if top < max(k_min, 2):
        return single
    evaluator = ClusteringEvaluator(
        featuresCol="features", predictionCol="segment", distanceMeasure="squaredEuclidean"
    )
    k_scores: dict[int, dict[str, float | None]] = {}
    best: tuple[float, int, Any] | None = None
    for k in range(max(k_min, 2), top + 1):
        model = min(
            (
                KMeans(
                    k=k,
                    seed=seed + attempt,
                    maxIter=max_iter,
                    featuresCol="features",
                    predictionCol="segment",
                ).fit(data)
                for attempt in range(max(1, n_init))
            ),
            key=lambda fitted: float(fitted.summary.trainingCost),
        )
        predicted = model.transform(data).select("user_id", "features", "segment").cache()
        if predicted.select("segment").distinct().count() < 2:
            silhouette = None
        else:
            silhouette = float(evaluator.evaluate(predicted))
        k_scores[k] = {**_no_scores(), "silhouette": silhouette}
        logger.debug("Spark k=%d silhouette=%s", k, silhouette)
        if silhouette is not None and (best is None or silhouette > best[0]):
            if best is not None:
                best[2].unpersist()
            best = (silhouette, k, predicted)
        else:
            predicted.unpersist()
    data.unpersist()
    if best is None:
        return single
    labels = best[2].select("user_id", F.col("segment").cast("long").alias("segment"))
    logger.info("Spark KMeans: k=%d (silhouette %.3f) for %d users", best[1], best[0], n)
    return SparkSegmentation(labels, best[1], columns, k_scores, k_scores[best[1]], seed, constant)


def _median_row(row: Any, columns: tuple[str, ...]) -> dict[str, float | None]:
    result: dict[str, float | None] = {}
    for column in columns:
        value = row[column] if column in row.asDict() else None
        result[column] = None if value is None or np.isnan(value) else round(float(value), 3)
    return result


def segment_profiles(
    features: SparkFeatures, segmentation: SparkSegmentation, *, window_days: int = 30
) -> list[SegmentProfile]:
    """Names, descriptions, sizes and median profiles per segment, as `describe_segments` gives."""
    from pyspark.sql import functions as F

    present = profile_columns(list(features.frame.columns))
    medians = [
        (
            F.avg(quoted(c).cast("double"))
            if c.startswith(CATEGORY_PREFIX)
            else F.percentile(quoted(c).cast("double"), F.lit(0.5))
        ).alias(c)
        for c in present
    ]
    joined = features.frame.join(segmentation.labels, on="user_id", how="inner")
    population = _median_row(features.frame.agg(*medians).first(), present)
    rows = joined.groupBy("segment").agg(F.count(F.lit(1)).alias("_size"), *medians).collect()
    drafts = [
        (int(r["segment"]), _median_row(r, present), int(r["_size"]))
        for r in sorted(rows, key=lambda r: r["segment"])
    ]
    population = {k: v for k, v in population.items() if k in present}
    return name_segments(
        [(label, {k: v for k, v in p.items() if k in present}, size) for label, p, size in drafts],
        population,
        window_days=window_days,
    )
