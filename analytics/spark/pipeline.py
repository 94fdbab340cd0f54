"""One analytics run on Spark, stored through the same store path as `analytics.pipeline.run_analytics`.

Features (Spark SQL), segments (MLlib KMeans, k by silhouette), names (the local naming code on
per-segment medians aggregated in Spark), rules (MLlib FPGrowth on baskets built in Spark), then
`start_run` / `complete_run` / `end_run`: the bot, the scheduler, the report and the dashboard
read a Spark run exactly as a local one.

On PostgreSQL the (user, segment) pairs never reach the driver: the executors append them over
JDBC to the store's staging table (`store.models.MembershipStaging`), segments are matched to
the previous run by an overlap grouped in SQL, and `complete_run_staged` moves them into the
memberships in one INSERT ... SELECT inside the completion transaction. Measured
(`bench.bench_membership_write`, 200k users): the executors' append 7.7 µs per user on two
cores, against 24.8 µs for the driver path; the move is one PostgreSQL statement at ~21 µs per
user, which a cluster does not shorten (bench/RESULTS.md says what would). On SQLite (a local
file no executor can reach) the pairs are collected and written through the store as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from analytics.errors import AnalyticsError
from analytics.naming import PreviousSegment, SegmentProfile, carry_names
from analytics.pipeline import (
    AnalyticsConfig,
    Progress,
    RunSummary,
    _match_previous,
    done_summary,
    fail_run,
)
from analytics.rules import OUTCOMES, AssociationRule
from analytics.spark.features import SparkFeatures, quoted, spark_features
from analytics.spark.rules import mine_rules_spark
from analytics.spark.segmentation import SparkSegmentation, segment_profiles, segment_users
from analytics.spark.sources import events_from_postgres, events_from_store, jdbc_options
from analytics.traits import CATEGORY_PREFIX, TraitFeatures, load_traits
from store.analytics_queries import FALLBACK_INTENTS, sent_deliveries
from store.analytics_results import (
    STAGING_TABLE,
    NewSegment,
    complete_run,
    complete_run_staged,
    discard_staged,
    end_run,
    previous_done_run,
    run_segments,
    staged_overlap,
    start_run,
)
from store.db import read_snapshot

__all__ = ["run_analytics_spark", "spark_baskets", "store_events", "write_staged_memberships"]

logger = logging.getLogger(__name__)

STAGING_PARTITIONS = 8
"""Parallel JDBC connections the executors append memberships with (Spark's `numPartitions`)."""
STAGING_BATCH = 10_000
"""Rows per JDBC batch (`batchsize`); the URL asks the driver to rewrite a batch as one INSERT."""


def store_events(spark: Any, engine: Engine) -> Any:
    """The store's own event log: over JDBC on PostgreSQL, through the driver on SQLite."""
    if engine.dialect.name == "postgresql":
        return events_from_postgres(spark, engine)
    return events_from_store(spark, engine)


def spark_baskets(features: SparkFeatures, segmentation: SparkSegmentation, names: dict[int, str]) -> Any:
    """`analytics.pipeline.user_baskets` as a DataFrame (user_id, items): the same items per user."""
    from pyspark.sql import functions as F

    frame = features.frame.join(features.counts, on="user_id").join(segmentation.labels, on="user_id")
    c = F.col
    items = []
    for index, intent in enumerate(features.every):
        item = "action:fallback" if intent in FALLBACK_INTENTS else f"intent:{intent}"
        items.append(F.when(c(f"intent_{index}") > 0, F.lit(item)))
    flags = {
        "action:reaction": c("reactions") > 0,
        "action:poll_answer": c("poll_answers") > 0,
        "action:reply": c("replies") > 0,
        "action:feedback": c("feedbacks") > 0,
        "feedback:positive": c("mean_rating") >= 4,
        "feedback:negative": c("mean_rating") <= 2,
        "returned_after_push": c("push_response_rate") > 0,
        "churned_30d": c("recency_days") >= 30,
    }
    items += [F.when(F.coalesce(condition, F.lit(False)), F.lit(item)) for item, condition in flags.items()]
    for index, name in enumerate(features.products):
        items.append(F.when(c(f"product_{index}") > 0, F.lit(f"product:{name}")))
    for column in features.trait_columns:
        if column.startswith(CATEGORY_PREFIX):
            trait = f"trait:{column.removeprefix(CATEGORY_PREFIX)}"
            items.append(F.when(F.coalesce(quoted(column) == 1.0, F.lit(False)), F.lit(trait)))
    pairs = [
        part for label, name in sorted(names.items()) for part in (F.lit(label), F.lit(f"segment:{name}"))
    ]
    items.append(F.create_map(*pairs)[c("segment")])
    return frame.select("user_id", F.array_distinct(F.array_compact(F.array(*items))).alias("items"))


def write_staged_memberships(
    labels: Any,
    engine: Engine,
    run_id: int,
    *,
    partitions: int = STAGING_PARTITIONS,
    batch_size: int = STAGING_BATCH,
) -> None:
    """Append a run's (user_id, segment) DataFrame to the store's staging table from the executors.

    Each task writes its partition in its own JDBC transaction; nothing reads the staging table
    but `complete_run_staged`, so a failure here leaves the previous run's memberships current.
    """
    from pyspark.sql import functions as F

    options = jdbc_options(engine.url.render_as_string(hide_password=False))
    separator = "&" if "?" in options["url"] else "?"
    options["url"] = f"{options['url']}{separator}reWriteBatchedInserts=true"
    frame = labels.select(
        F.lit(run_id).cast("long").alias("run_id"),
        F.col("user_id").cast("long").alias("user_id"),
        F.col("segment").cast("int").alias("label"),
    )
    writer = (
        frame.write.format("jdbc")
        .mode("append")
        .option("dbtable", STAGING_TABLE)
        .option("batchsize", str(batch_size))
        .option("numPartitions", str(max(1, partitions)))
    )
    for key, value in options.items():
        writer = writer.option(key, value)
    writer.save()


def _match_staged(
    engine: Engine, run_id: int, profiles: list[SegmentProfile]
) -> tuple[list[SegmentProfile], dict[int, bool], dict[int, int], int | None]:
    """`analytics.pipeline._match_previous` with the overlap grouped in SQL over the staged rows."""
    previous = previous_done_run(engine, run_id)
    if previous is None:
        return profiles, {p.label: False for p in profiles}, {}, None
    overlap = staged_overlap(engine, run_id, previous.id)
    prev = [PreviousSegment(s.id, s.name, s.pinned, s.size) for s in run_segments(engine, previous.id)]
    named, pinned, matched = carry_names(profiles, prev, overlap)
    return named, pinned, matched, previous.id


def sent_frame(spark: Any, engine: Engine, as_of: datetime) -> Any:
    with read_snapshot(engine) as session:
        sent = sent_deliveries(session, as_of=as_of)
    return spark.createDataFrame(sorted(sent.items()), "user_id long, n long")


def _notes(
    features: SparkFeatures,
    segmentation: SparkSegmentation,
    n_rules: int,
    config: AnalyticsConfig,
    traits: TraitFeatures | None = None,
) -> list[str]:
    """The local run's notes, word for word."""
    notes = [f"{features.n_users} users in {segmentation.n_clusters} segment(s), {n_rules} rule(s)"]
    if traits is not None:
        notes.extend(traits.notes)
    if features.n_users == 1:
        notes.append("only one user: a single segment")
    elif segmentation.n_clusters == 1:
        notes.append("users are too alike to split: a single segment")
    if segmentation.constant and features.n_users > 1:
        notes.append(f"zero-variance features ignored by scaling: {', '.join(segmentation.constant)}")
    if not n_rules:
        notes.append(
            f"no rule reaches support {config.min_support}, confidence {config.min_confidence}"
            f" and lift {config.min_lift}"
        )
    return notes


def _metrics(
    features: SparkFeatures,
    segmentation: SparkSegmentation,
    n_rules: int,
    n_items: int,
    previous_id: int | None,
    matched: dict[int, int],
    timings: dict[str, float],
    traits: TraitFeatures | None = None,
) -> dict[str, Any]:
    """The local run's metrics layout, plus `engine: spark`."""
    return {
        "engine": "spark",
        "segmentation": {
            "algorithm": "kmeans",
            "n_clusters": int(segmentation.n_clusters),
            "scores": segmentation.scores,
            "k_scores": {str(k): v for k, v in segmentation.k_scores.items()},
            "eps": None,
            "features": list(segmentation.columns),
        },
        "rules": {"n_rules": n_rules, "n_items": n_items, "n_baskets": features.n_users},
        "features": {
            "as_of": features.as_of.isoformat(),
            "intents": list(features.intents),
            "traits": [] if traits is None else list(traits.traits),
            "products": list(features.products),
            "monetary": features.monetary,
        },
        "previous_run": previous_id,
        "matched_segments": {str(label): prev for label, prev in matched.items()},
        "timings": dict(timings),
    }


def run_analytics_spark(
    engine: Engine,
    spark: Any,
    events: Any | None = None,
    *,
    config: AnalyticsConfig | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    staged: bool | None = None,
) -> RunSummary:
    """`run_analytics` on Spark: compute, segment, mine, and store one new current run in `engine`.

    Args:
        engine: The store the run is written to (and, without `events`, read from).
        spark: An active session (`analytics.spark.spark_session`).
        events: The event log as a DataFrame (`analytics.spark.sources`); default: the store's.
        staged: Memberships written by the executors through the staging table (True) or
            collected and written by the driver (False); default: staged on PostgreSQL.

    Raises:
        AnalyticsError: `config.algorithm` is not kmeans (MLlib has no DBSCAN), before any run
            is stored. An unexpected error marks the run `failed` and is re-raised.
    """
    config = config or AnalyticsConfig()
    if config.algorithm != "kmeans":
        raise AnalyticsError(f"the Spark engine segments with kmeans only, not {config.algorithm!r}")
    as_of = as_of or datetime.now(UTC)
    step = progress or (lambda _name: None)
    params = {**asdict(config), "as_of": as_of.isoformat(), "engine": "spark"}
    run_id = start_run(engine, algorithm=config.algorithm, params=params)
    staged = engine.dialect.name == "postgresql" if staged is None else staged
    timings: dict[str, float] = {}
    try:
        step("features")
        started = time.perf_counter()
        source = store_events(spark, engine) if events is None else events
        traits = load_traits(engine, as_of=as_of, exclude_users=config.exclude_users)
        features = spark_features(
            spark,
            source,
            as_of=as_of,
            window_days=config.window_days,
            sent=sent_frame(spark, engine, as_of),
            traits=traits,
        )
        n_events = int(features.frame.agg({"events": "sum"}).first()[0] or 0) if features.n_users else 0
        timings["features_s"] = time.perf_counter() - started
        if features.n_users == 0:
            message = f"the event log has no user events before {as_of.isoformat()}: nothing to segment"
            end_run(engine, run_id, status="empty", message=message, n_events=0)
            logger.warning("analytics run %d: %s", run_id, message)
            return RunSummary(run_id, "empty", message, 0, 0, 0, 0)

        step("segmentation")
        started = time.perf_counter()
        segmentation = segment_users(
            features, k_min=config.k_min, k_max=config.k_max, random_state=config.random_state
        )
        profiles: list[SegmentProfile] = segment_profiles(
            features, segmentation, window_days=config.window_days
        )
        if staged:
            written = time.perf_counter()
            write_staged_memberships(segmentation.labels, engine, run_id)
            timings["staging_s"] = time.perf_counter() - written
            profiles, pinned, matched, previous_id = _match_staged(engine, run_id, profiles)
        else:
            pairs = sorted((int(r["user_id"]), int(r["segment"])) for r in segmentation.labels.collect())
            user_ids = np.array([user for user, _ in pairs], dtype=np.int64)
            labels = np.array([label for _, label in pairs], dtype=np.int64)
            profiles, pinned, matched, previous_id = _match_previous(
                engine, run_id, user_ids, profiles, labels
            )
        names = {p.label: p.name for p in profiles}
        timings["segmentation_s"] = time.perf_counter() - started

        step("rules")
        started = time.perf_counter()
        baskets = spark_baskets(features, segmentation, names).cache()
        rules: list[AssociationRule] = mine_rules_spark(
            spark,
            baskets,
            min_support=config.min_support,
            min_confidence=config.min_confidence,
            min_lift=config.min_lift,
            algorithm=config.rule_algorithm,
            max_len=config.rule_max_len,
            outcomes=OUTCOMES if config.outcome_rules_only else None,
        )[: config.max_rules]
        from pyspark.sql import functions as F

        n_items = int(baskets.select(F.explode("items").alias("item")).distinct().count())
        baskets.unpersist()
        timings["rules_s"] = time.perf_counter() - started

        step("store")
        started = time.perf_counter()
        notes = _notes(features, segmentation, len(rules), config, traits)
        metrics = _metrics(features, segmentation, len(rules), n_items, previous_id, matched, timings, traits)
        segments = [
            NewSegment(p.label, p.name, p.description, p.size, {**p.profile}, pinned.get(p.label, False))
            for p in profiles
        ]
        message = "; ".join(notes)
        if staged:
            stored, dropped = complete_run_staged(
                engine,
                run_id,
                message=message,
                metrics=metrics,
                n_events=n_events,
                segments=segments,
                rules=rules,
            )
            n_users = stored + dropped
        else:
            dropped = complete_run(
                engine,
                run_id,
                message=message,
                metrics=metrics,
                n_events=n_events,
                segments=segments,
                user_ids=user_ids.tolist(),
                labels=labels.tolist(),
                rules=rules,
            )
            n_users = len(user_ids)
        timings["store_s"] = time.perf_counter() - started
        features.frame.unpersist()
    except Exception as exc:
        if staged:
            try:  # the rows are invisible either way; this only reclaims the space
                discard_staged(engine, run_id)
            except Exception:
                logger.exception("run %d: staged memberships not discarded", run_id)
        fail_run(engine, run_id, exc, engine_name="Spark analytics")
        raise
    return done_summary(
        run_id,
        message=message,
        dropped=dropped,
        n_users=n_users,
        n_events=n_events,
        n_segments=len(profiles),
        n_rules=len(rules),
        metrics=metrics,
        timings=timings,
        engine_name="Spark analytics",
    )
