"""The local engine's per-user features (`analytics.features.compute_features`) in Spark SQL.

Column by column the same definitions as `store.analytics_queries.user_feature_table` and
`compute_features`: fractional epoch days, distinct UTC days active in the window and in its
recent part, the activity trend, rates with 0 for an empty denominator, RFM quintiles from
average ranks, and the Hellinger-PCA intent topics. Only the topics' small intents × intents
covariance matrix comes to the driver, where numpy decomposes it with the local engine's rules
(Kaiser's cut, at most `MAX_TOPICS`, signs fixed); the scores are computed back in Spark.

Spark 4 runs in ANSI mode, where a division by zero is an error: every ratio is guarded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.features import MAX_TOPICS, MONETARY_COLUMN, TOPIC_PREFIX, TOPIC_PRIOR_MESSAGES, TREND_DAYS
from analytics.traits import TraitFeatures
from store.analytics_queries import DAYPARTS, NON_QUESTION_INTENTS, to_epoch_days
from store.vocabulary import MESSAGE_KINDS, EventKind

__all__ = ["SparkFeatures", "quoted", "spark_features"]

logger = logging.getLogger(__name__)

_MICROS_PER_DAY = 86_400_000_000.0


@dataclass(frozen=True)
class SparkFeatures:
    """The feature table as a Spark DataFrame (one row per user, column `user_id`) and its inputs.

    `counts` has the per-user message count of every intent (`intent_<i>` for `every[i]`) and
    of every product event (`product_<i>` for `products[i]`), the rule baskets' raw counts, and
    `said_<i>`, the same count over answered messages only (kind `message`, no fallbacks): what
    `store.analytics_queries.intents_by_segment` counts for the segment pages.
    `trait_columns` are the frame's trait columns (`analytics.traits`), joined from the store.
    """

    frame: Any
    counts: Any
    as_of: datetime
    window_days: int
    every: tuple[str, ...]
    intents: tuple[str, ...]
    topics: tuple[str, ...]
    n_users: int
    products: tuple[str, ...] = ()
    trait_columns: tuple[str, ...] = ()
    monetary: str = "messages"

    def to_pandas(self) -> pd.DataFrame:
        """The local engine's frame layout: indexed by `user_id` (int64), sorted (small tables only)."""
        # collect(), not toPandas(): PySpark's pandas bridge wants PyArrow and warns on pandas 3.
        columns = list(self.frame.columns)
        records = [tuple(row) for row in self.frame.collect()]
        frame = pd.DataFrame.from_records(records, columns=columns).set_index("user_id").sort_index()
        frame.index = frame.index.astype("int64")
        return frame


def quoted(name: str) -> Any:
    """A column by its exact name: trait columns hold `:`, `=` and dots Spark would otherwise parse."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, 0 where the denominator is not positive (`_safe_ratio`)."""
    from pyspark.sql import functions as F

    return F.when(denominator > 0, numerator.cast("double") / denominator.cast("double")).otherwise(
        F.lit(0.0)
    )


def _count_if(condition: Any) -> Any:
    from pyspark.sql import functions as F

    return F.sum(F.when(condition, 1).otherwise(0)).cast("long")


def _aggregates(
    events: Any,
    *,
    as_of: datetime,
    window_start: datetime,
    recent_start: datetime,
    every: list[str],
    products: Sequence[str] = (),
) -> Any:
    """`user_feature_table` in Spark: one row of raw counts per user."""
    from pyspark.sql import functions as F

    kind = F.col("kind")
    is_message = kind.isin([str(k) for k in MESSAGE_KINDS])
    days = F.unix_micros("ts") / F.lit(_MICROS_PER_DAY)
    day_number = F.floor(days).cast("long")
    rating = F.get_json_object("attributes", "$.rating").try_cast("double")
    reply = F.get_json_object("attributes", "$.reply").try_cast("boolean")
    hour = F.hour("ts")
    columns = [
        F.min(days).alias("first_day"),
        F.max(days).alias("last_day"),
        F.count(F.lit(1)).alias("events"),
        F.count_distinct(F.when(F.col("ts") >= F.lit(window_start), day_number)).alias("active_days"),
        F.count_distinct(F.when(F.col("ts") >= F.lit(recent_start), day_number)).alias("recent_active_days"),
        _count_if(is_message).alias("messages"),
        _count_if((kind == str(EventKind.MESSAGE)) & ~F.col("intent").isin(list(NON_QUESTION_INTENTS))).alias(
            "questions"
        ),
        _count_if(kind == str(EventKind.FALLBACK)).alias("unanswered"),
        F.avg(F.when(kind == str(EventKind.FEEDBACK), rating)).alias("mean_rating"),
        _count_if(kind == str(EventKind.FEEDBACK)).alias("feedbacks"),
        _count_if(kind == str(EventKind.REACTION)).alias("reactions"),
        _count_if(kind == str(EventKind.POLL_ANSWER)).alias("poll_answers"),
        _count_if((kind == str(EventKind.MESSAGE)) & (reply == F.lit(True))).alias("replies"),
        _count_if(is_message & (F.col("chat_id") < 0)).alias("group_messages"),
        _count_if(kind == str(EventKind.PUSH_RECEIVED)).alias("pushes"),
        _count_if(kind == str(EventKind.PUSH_RESPONSE)).alias("push_responses"),
    ]
    for index, intent in enumerate(every):
        columns.append(_count_if(is_message & (F.col("intent") == intent)).alias(f"intent_{index}"))
        said = (kind == str(EventKind.MESSAGE)) & (F.col("intent") == intent)
        columns.append(_count_if(said).alias(f"said_{index}"))
    for name, start, stop in DAYPARTS:
        columns.append(_count_if((hour >= start) & (hour < stop)).alias(f"hours_{name}"))
    scoped = events.where(
        F.col("user_id").isNotNull() & (F.col("ts") < F.lit(as_of)) & (kind != str(EventKind.PRODUCT))
    )
    raw = scoped.groupBy("user_id").agg(*columns)
    product = _product_aggregates(events, as_of=as_of, products=products)
    return raw.join(product, on="user_id", how="left")


def _product_aggregates(events: Any, *, as_of: datetime, products: Sequence[str]) -> Any:
    """`user_product_table` in Spark: per-user product event counts and summed numeric revenue."""
    from pyspark.sql import functions as F

    name = F.get_json_object("attributes", "$.event")
    # A JSON number only, as `_json_number` in SQL: a string "12.50 EUR" (or "12.5") stays unknown.
    revenue = F.from_json(F.get_json_object("attributes", "$.properties"), "revenue double")["revenue"]
    columns = [_count_if(name == product).alias(f"product_{index}") for index, product in enumerate(products)]
    columns.append(F.sum(revenue).alias("revenue"))
    scoped = events.where(
        F.col("user_id").isNotNull()
        & (F.col("ts") < F.lit(as_of))
        & (F.col("kind") == str(EventKind.PRODUCT))
    )
    return scoped.groupBy("user_id").agg(*columns)


def _message_intents(events: Any, *, until: datetime) -> list[str]:
    """`message_intents`: every message intent before `until`, most used first, then by name."""
    from pyspark.sql import functions as F

    rows = (
        events.where(
            F.col("kind").isin([str(k) for k in MESSAGE_KINDS])
            & F.col("intent").isNotNull()
            & (F.col("ts") < F.lit(until))
        )
        .groupBy("intent")
        .count()
        .collect()
    )
    return [str(r["intent"]) for r in sorted(rows, key=lambda r: (-int(r["count"]), str(r["intent"])))]


def _product_names(events: Any, *, until: datetime) -> list[str]:
    """`product_event_names`: every product event name before `until`, most used first, then by name."""
    from pyspark.sql import functions as F

    name = F.get_json_object("attributes", "$.event")
    rows = (
        events.where(
            (F.col("kind") == str(EventKind.PRODUCT)) & name.isNotNull() & (F.col("ts") < F.lit(until))
        )
        .select(name.alias("name"))
        .groupBy("name")
        .count()
        .collect()
    )
    return [str(r["name"]) for r in sorted(rows, key=lambda r: (-int(r["count"]), str(r["name"])))]


def trait_frame(spark: Any, traits: TraitFeatures, *, monetary: bool = False) -> Any:
    """The trait columns (and the spend trait's values) as a DataFrame with nulls, not NaN, for gaps."""
    from pyspark.sql.types import DoubleType, LongType, StructField, StructType

    frame = traits.frame
    columns = [str(c) for c in frame.columns]
    fields = [StructField("user_id", LongType(), False)]
    fields += [StructField(c, DoubleType(), True) for c in columns]
    index = frame.index
    values = frame.to_numpy(dtype=np.float64) if columns else np.empty((len(index), 0))
    money = None
    if monetary and traits.monetary_values is not None:
        money = traits.monetary_values
        fields.append(StructField("_money", DoubleType(), True))
        index = index.union(money.index)
        values = frame.reindex(index).to_numpy(dtype=np.float64) if columns else np.empty((len(index), 0))
    rows = []
    for position, user in enumerate(index):
        row: list[Any] = [int(user)]
        row += [None if np.isnan(v) else float(v) for v in values[position]]
        if money is not None:
            value = money.get(user)
            row.append(None if value is None or np.isnan(value) else float(value))
        rows.append(tuple(row))
    return spark.createDataFrame(rows, StructType(fields))


def _trend(active: Any, recent_active: Any, tenure: Any, *, window_days: float, recent_days: float) -> Any:
    """`analytics.features.activity_trend`, null-safe in Spark."""
    from pyspark.sql import functions as F

    around = F.least(tenure.cast("double"), F.lit(float(window_days)))
    recent_span = F.greatest(F.least(around, F.lit(recent_days)), F.lit(1.0))
    earlier_span = around - F.lit(recent_days)
    recent_rate = recent_active.cast("double") / recent_span
    earlier = F.greatest((active - recent_active).cast("double"), F.lit(0.0))
    earlier_rate = F.when(earlier_span >= 1.0, earlier / earlier_span)
    total = recent_rate + earlier_rate
    trend = F.when(total > 0, (recent_rate - earlier_rate) / total)
    return F.least(F.greatest(F.coalesce(trend, F.lit(0.0)), F.lit(-1.0)), F.lit(1.0))


RANK_BUCKETS = 64
"""Range buckets the exact RFM ranking is split into, so no single task sees every distinct value."""


def _with_quintile(frame: Any, column: str, output: str, *, higher_is_better: bool, n: int) -> Any:
    """`_quintile`: ceil(5 · average rank / n), ranks over the distinct values (ties share one).

    Exact and distributed: the distinct values (with their counts) are cut into value ranges at
    approximate quantiles, each range is ranked in its own task (a window partitioned by the
    range), and each range's offset is the sum of the counts of the ranges before it (one row
    per range reaches the driver). A window over the whole table would run in one task, which
    for a monetary column means one task over as many rows as there are users. Descending
    ranks are n + 1 − ascending ones (exact in doubles: integers and halves).
    """
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    value = F.col(column).cast("double")
    counts = frame.groupBy(value.alias("_v")).agg(F.count(F.lit(1)).alias("_ties"))
    cuts = counts.approxQuantile("_v", [i / RANK_BUCKETS for i in range(1, RANK_BUCKETS)], 0.001)
    splits = [float("-inf"), *sorted({float(x) for x in cuts}), float("inf")]
    bucketed = Bucketizer(splits=splits, inputCol="_v", outputCol="_b", handleInvalid="keep").transform(
        counts
    )
    totals = {
        int(r["_b"]): int(r["_n"]) for r in bucketed.groupBy("_b").agg(F.sum("_ties").alias("_n")).collect()
    }
    offsets: list[tuple[float, int]] = []
    running = 0
    for bucket in sorted(totals):
        offsets.append((float(bucket), running))
        running += totals[bucket]
    spark = frame.sparkSession
    offset_frame = spark.createDataFrame(offsets, "_b double, _offset long")
    before = Window.partitionBy("_b").orderBy("_v").rowsBetween(Window.unboundedPreceding, -1)
    ascending = (
        F.col("_offset").cast("double")
        + F.coalesce(F.sum("_ties").over(before), F.lit(0)).cast("double")
        + (F.col("_ties").cast("double") + 1.0) / 2.0
    )
    average_rank = ascending if higher_is_better else F.lit(float(n) + 1.0) - ascending
    quintile = F.least(F.greatest(F.ceil(average_rank / F.lit(float(n)) * 5.0), F.lit(1)), F.lit(5))
    ranked = bucketed.join(F.broadcast(offset_frame), on="_b").select(
        "_v", quintile.cast("long").alias(output)
    )
    joined = frame.join(ranked, on=value.eqNullSafe(F.col("_v")), how="left")
    return joined.drop("_v")


def _topics(
    spark: Any,
    counts: Any,
    every: list[str],
    n: int,
    *,
    max_topics: int = MAX_TOPICS,
    prior_messages: float = TOPIC_PRIOR_MESSAGES,
) -> tuple[Any, tuple[str, ...]]:
    """`intent_topics`: (user_id, topic_1..k) and the topic names; none when there is nothing to mix."""
    from pyspark.sql import functions as F

    m = len(every)
    if m < 2 or n < 2 or max_topics < 1:
        return None, ()
    names = [f"intent_{i}" for i in range(m)]
    sums = counts.agg(*(F.sum(c).cast("double").alias(c) for c in names)).first()
    column_sums = np.array([float(sums[c] or 0.0) for c in names])
    total = float(column_sums.sum())
    if total <= 0:
        return None, ()
    prior = column_sums / total
    row_total = sum((F.col(c) for c in names), F.lit(0)).cast("double") + F.lit(prior_messages)
    hellinger = counts.select(
        "user_id",
        *(
            F.sqrt((F.col(c).cast("double") + F.lit(prior_messages * prior[i])) / row_total).alias(f"h{i}")
            for i, c in enumerate(names)
        ),
    ).cache()
    means_row = hellinger.agg(*(F.avg(f"h{i}").alias(f"h{i}") for i in range(m))).first()
    means = [float(means_row[f"h{i}"]) for i in range(m)]
    centred = hellinger.select(
        "user_id", *((F.col(f"h{i}") - F.lit(means[i])).alias(f"c{i}") for i in range(m))
    ).cache()
    pairs = [(a, b) for a in range(m) for b in range(a, m)]
    products = centred.agg(*(F.sum(F.col(f"c{a}") * F.col(f"c{b}")).alias(f"p{a}_{b}") for a, b in pairs))
    row = products.first()
    covariance = np.zeros((m, m))
    for a, b in pairs:
        covariance[a, b] = covariance[b, a] = float(row[f"p{a}_{b}"]) / (n - 1)
    hellinger.unpersist()
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    keep = (eigenvalues > eigenvalues.mean()) & (eigenvalues > 1e-10)
    n_topics = min(int(keep.sum()), max_topics)
    vectors = eigenvectors[:, :n_topics]
    largest = np.abs(vectors).argmax(axis=0)
    vectors = vectors * np.sign(vectors[largest, np.arange(n_topics)])
    topics = tuple(f"{TOPIC_PREFIX}{k + 1}" for k in range(n_topics))
    scores = centred.select(
        "user_id",
        *(
            sum((F.col(f"c{i}") * F.lit(float(vectors[i, k])) for i in range(m)), F.lit(0.0)).alias(name)
            for k, name in enumerate(topics)
        ),
    )
    logger.info("intent topics: %d of %d intents' components kept", n_topics, m)
    return scores, topics


def spark_features(
    spark: Any,
    events: Any,
    *,
    as_of: datetime | None = None,
    window_days: int = 30,
    n_intents: int = 5,
    trend_days: int = TREND_DAYS,
    sent: Any | None = None,
    traits: TraitFeatures | None = None,
) -> SparkFeatures:
    """`compute_features` on a DataFrame of events (the events table's columns).

    Args:
        spark: The active session.
        events: Events with columns `EVENT_COLUMNS` (see `analytics.spark.sources`).
        sent: Optional DataFrame (user_id, n) of pushes actually sent per user before `as_of`
            (`store.analytics_queries.sent_deliveries`), the push-rate denominator when no
            push events were logged.
        traits: The linked users' encoded traits (`analytics.traits.load_traits` on the store):
            a small per-user table, joined in as the local engine joins it.
    """
    from pyspark.sql import functions as F

    as_of = as_of or datetime.now(UTC)
    recent_days = min(float(trend_days), window_days / 2.0)
    every = _message_intents(events, until=as_of)
    intents = tuple([i for i in every if i not in NON_QUESTION_INTENTS][:n_intents])
    products = _product_names(events, until=as_of)
    raw = _aggregates(
        events,
        as_of=as_of,
        window_start=as_of - timedelta(days=window_days),
        recent_start=as_of - timedelta(days=recent_days),
        every=every,
        products=products,
    ).cache()
    n = int(raw.count())
    now_days = to_epoch_days(as_of)
    if sent is not None:
        raw = raw.join(sent.select("user_id", F.col("n").alias("_sent")), on="user_id", how="left")
    else:
        raw = raw.withColumn("_sent", F.lit(0))
    c = F.col
    pushes = F.greatest(c("pushes").cast("double"), F.coalesce(c("_sent"), F.lit(0)).cast("double"))
    tenure = F.greatest(F.lit(now_days) - c("first_day"), F.lit(0.0))
    community = c("replies") + c("reactions") + c("poll_answers")
    mean_rating = c("mean_rating").cast("double")
    selected = [
        c("user_id").cast("long").alias("user_id"),
        F.greatest(F.lit(now_days) - c("last_day"), F.lit(0.0)).alias("recency_days"),
        tenure.alias("tenure_days"),
        c("active_days").cast("long").alias("active_days"),
        _trend(
            c("active_days"),
            c("recent_active_days"),
            tenure,
            window_days=window_days,
            recent_days=recent_days,
        ).alias("activity_trend"),
        c("events"),
        *(
            c(name)
            for name in (
                "messages",
                "questions",
                "unanswered",
                "feedbacks",
                "replies",
                "reactions",
                "poll_answers",
            )
        ),
        _ratio(c("unanswered"), c("messages")).alias("fallback_rate"),
        mean_rating.alias("mean_rating"),
        F.coalesce((mean_rating - 3.0) / 2.0, F.lit(0.0)).alias("rating_centered"),
        community.alias("community_actions"),
        _ratio(community, c("events")).alias("community_share"),
        _ratio(c("group_messages"), c("messages")).alias("group_share"),
        pushes.cast("long").alias("pushes"),
        F.least(_ratio(c("push_responses"), pushes), F.lit(1.0)).alias("push_response_rate"),
        *(_ratio(c(f"intent_{every.index(i)}"), c("messages")).alias(f"share_{i}") for i in intents),
        *(_ratio(c(f"hours_{name}"), c("events")).alias(f"hours_{name}") for name, _s, _e in DAYPARTS),
    ]
    monetary = "messages"
    joined_traits = None
    if traits is not None and (len(traits.frame.columns) or traits.monetary is not None):
        joined_traits = trait_frame(spark, traits, monetary=traits.monetary is not None)
    if traits is not None and traits.monetary is not None:
        monetary = f"trait:{traits.monetary}"
        assert joined_traits is not None
        raw = raw.join(joined_traits.select("user_id", "_money"), on="user_id", how="left")
        selected.append(F.coalesce(c("_money"), F.lit(0.0)).alias(MONETARY_COLUMN))
    elif n and raw.where(c("revenue").isNotNull()).limit(1).count():
        monetary = "events:revenue"
        selected.append(F.coalesce(c("revenue").cast("double"), F.lit(0.0)).alias(MONETARY_COLUMN))
    frame = raw.select(*selected)
    counts = raw.select(
        "user_id",
        *(f"intent_{i}" for i in range(len(every))),
        *(f"said_{i}" for i in range(len(every))),
        *(
            F.coalesce(c(f"product_{i}"), F.lit(0)).cast("long").alias(f"product_{i}")
            for i in range(len(products))
        ),
    )
    order = [name for name in frame.columns]
    money = MONETARY_COLUMN if monetary != "messages" else "messages"
    if n:
        frame = _with_quintile(frame, "recency_days", "rfm_r", higher_is_better=False, n=n)
        frame = _with_quintile(frame, "active_days", "rfm_f", higher_is_better=True, n=n)
        frame = _with_quintile(frame, money, "rfm_m", higher_is_better=True, n=n)
        frame = frame.withColumn("rfm_score", c("rfm_r") + c("rfm_f") + c("rfm_m")).withColumn(
            "rfm_code",
            F.concat(c("rfm_r").cast("string"), c("rfm_f").cast("string"), c("rfm_m").cast("string")),
        )
        order += ["rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_code"]
    scores, topics = _topics(spark, counts, every, n)
    if scores is not None:
        frame = frame.join(scores, on="user_id", how="left")
        order += list(topics)
    trait_columns: tuple[str, ...] = ()
    if joined_traits is not None and traits is not None and len(traits.frame.columns):
        trait_columns = tuple(str(col) for col in traits.frame.columns)
        frame = frame.join(
            joined_traits.drop("_money") if "_money" in joined_traits.columns else joined_traits,
            on="user_id",
            how="left",
        )
        order += list(trait_columns)
    frame = frame.select(*(quoted(name) for name in order)).cache()
    logger.info("Spark features for %d users as of %s", n, as_of.isoformat())
    return SparkFeatures(
        frame=frame,
        counts=counts,
        as_of=as_of,
        window_days=window_days,
        every=tuple(every),
        intents=intents,
        topics=topics,
        n_users=n,
        products=tuple(products),
        trait_columns=trait_columns,
        monetary=monetary,
    )
