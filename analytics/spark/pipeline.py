"""One analytics run on Spark, stored through the same store path as `analytics.pipeline.run_analytics`.

Features (Spark SQL), segments (MLlib KMeans, k by silhouette), names (the local naming code on
per-segment medians aggregated in Spark), rules (MLlib FPGrowth on baskets built in Spark), then
`start_run` / `complete_run` / `end_run`: the bot, the scheduler, the report and the dashboard
read a Spark run exactly as a local one.

On PostgreSQL the (user, segment) pairs never reach the driver: the run's segments are stored
first (`insert_run_segments`; invisible, the run is not current), the executors write the
memberships with those segment ids straight into `segment_memberships` over JDBC, segments are
matched to the previous run by an overlap grouped in SQL, each segment's top intents are summed
in Spark, and `complete_run_written` only counts the rows, drops users deleted meanwhile (one
anti-join) and makes the run current: no copy of the memberships at completion
(`bench.bench_membership_write` measures each step; bench/RESULTS.md has the figures). On
SQLite (a local file no executor can reach) the pairs are collected and written through the
store as before.
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
    MEMBERSHIPS_TABLE,
    SEGMENT_INTENTS,
    TOP_INTENTS,
    NewSegment,
    complete_run,
    complete_run_written,
    discard_run,
    end_run,
    insert_run_segments,
    previous_done_run,
    run_segments,
    start_run,
    written_overlap,
)
from store.db import read_snapshot

__all__ = ["run_analytics_spark", "segment_intents", "spark_baskets", "store_events", "write_memberships"]

logger = logging.getLogger(__name__)

WRITE_PARTITIONS = 8
"""Parallel JDBC connections the executors write memberships with (Spark's `numPartitions`)."""
WRITE_BATCH = 10_000
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


def write_memberships(
    labels: Any,
    engine: Engine,
    run_id: int,
    label_to_id: dict[int, int],
    *,
    partitions: int = WRITE_PARTITIONS,
    batch_size: int = WRITE_BATCH,
) -> None:
    """Write a run's (user_id, segment) DataFrame into `segment_memberships` from the executors.

    Rows carry the segment ids `insert_run_segments` gave the labels. Each task writes its
    partition in its own JDBC transaction, so a lost task leaves none of its rows, and a failed
    task fails the job and so the run; the run is not current, so no reader sees any of them
    before `complete_run_written`. A task retried after its commit (speculation, which Rapport
    does not turn on) would hit the primary key and fail the run rather than store a user twice.
    """
    from pyspark.sql import functions as F

    options = jdbc_options(engine.url.render_as_string(hide_password=False))
    separator = "&" if "?" in options["url"] else "?"
    options["url"] = f"{options['url']}{separator}reWriteBatchedInserts=true"
    ids = F.create_map(*(F.lit(x) for pair in sorted(label_to_id.items()) for x in pair))
    frame = labels.select(
        F.lit(run_id).cast("long").alias("run_id"),
        F.col("user_id").cast("long").alias("user_id"),
        ids[F.col("segment")].cast("long").alias("segment_id"),
    )
    writer = (
        frame.write.format("jdbc")
        .mode("append")
        .option("dbtable", MEMBERSHIPS_TABLE)
        .option("batchsize", str(batch_size))
        .option("numPartitions", str(max(1, partitions)))
    )
    for key, value in options.items():
        writer = writer.option(key, value)
    writer.save()


def segment_intents(
    features: SparkFeatures,
    segmentation: SparkSegmentation,
    label_to_id: dict[int, int],
    *,
    limit: int = TOP_INTENTS,
) -> dict[str, Any]:
    """Each segment's top intents as `complete_run` would count them in SQL, summed in Spark.

    `intents_by_segment` joins the whole event log to the memberships; at 2B events that is
    the slowest statement of a completion. The per-user `said_<i>` counts (answered messages
    before `as_of`) already exist, so this is one aggregation over users, keyed like the
    stored metrics (segment id as text, [intent, messages] most first, then by name).
    """
    from pyspark.sql import functions as F

    said = [f"said_{i}" for i in range(len(features.every))]
    found: dict[str, list[list[Any]]] = {}
    if said:
        sums = (
            features.counts.join(segmentation.labels, on="user_id")
            .groupBy("segment")
            .agg(*(F.sum(column).alias(column) for column in said))
            .collect()
        )
        for row in sums:
            counted = [(intent, int(row[said[i]] or 0)) for i, intent in enumerate(features.every)]
            top = sorted((pair for pair in counted if pair[1] > 0), key=lambda p: (-p[1], p[0]))[:limit]
            if top:
                found[str(label_to_id[int(row["segment"])])] = [[intent, n] for intent, n in top]
    return {SEGMENT_INTENTS: found}


def _new_segments(profiles: list[SegmentProfile], pinned: dict[int, bool]) -> list[NewSegment]:
    """The profiles as segments to store; `pinned` says which carry a manager's name."""
    return [
        NewSegment(p.label, p.name, p.description, p.size, dict(p.profile), pinned.get(p.label, False))
        for p in profiles
    ]


def _match_written(
    engine: Engine, run_id: int, profiles: list[SegmentProfile], label_to_id: dict[int, int]
) -> tuple[list[SegmentProfile], dict[int, bool], dict[int, int], int | None]:
    """`analytics.pipeline._match_previous` with the overlap grouped in SQL over the written rows."""
    previous = previous_done_run(engine, run_id)
    if previous is None:
        return profiles, {p.label: False for p in profiles}, {}, None
    overlap = written_overlap(engine, run_id, previous.id, label_to_id)
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
    executors_write: bool | None = None,
) -> RunSummary:
    """`run_analytics` on Spark: compute, segment, mine, and store one new current run in `engine`.

    Args:
        engine: The store the run is written to (and, without `events`, read from).
        spark: An active session (`analytics.spark.spark_session`).
        events: The event log as a DataFrame (`analytics.spark.sources`); default: the store's.
        executors_write: Memberships written by the executors straight into the store (True)
            or collected and written by the driver (False); default: the executors on PostgreSQL.

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
    if executors_write is None:
        executors_write = engine.dialect.name == "postgresql"
    label_to_id: dict[int, int] = {}
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
        if executors_write:
            label_to_id = insert_run_segments(engine, run_id, _new_segments(profiles, {}))
            written = time.perf_counter()
            write_memberships(segmentation.labels, engine, run_id, label_to_id)
            timings["membership_write_s"] = time.perf_counter() - written
            profiles, pinned, matched, previous_id = _match_written(engine, run_id, profiles, label_to_id)
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
        segments = _new_segments(profiles, pinned)
        message = "; ".join(notes)
        if executors_write:
            metrics.update(segment_intents(features, segmentation, label_to_id))
            stored, dropped = complete_run_written(
                engine,
                run_id,
                message=message,
                metrics=metrics,
                n_events=n_events,
                n_written=features.n_users,
                segments=segments,
                label_to_id=label_to_id,
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
        if executors_write:
            try:  # the rows are invisible either way (the run is not current); this reclaims the space
                discard_run(engine, run_id)
            except Exception:
                logger.exception("run %d: its written memberships were not discarded", run_id)
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
