"""Spark SQL features equal the local engine's column by column; MLlib segments agree with scikit-learn's.

One synthetic history (plus hand-written push, reply and rating events, a group message and a
sent delivery, so every column has something to compute) is written to SQLite, aggregated by
the local engine, and read into Spark for the Spark engine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sqlalchemy import Engine, insert

from analytics.features import (
    CLUSTER_COLUMNS,
    UserFeatures,
    category_groups,
    cluster_columns,
    cluster_matrix,
    compute_features,
)
from analytics.naming import describe_segments
from analytics.segmentation import UserSegmenter, share_scales
from analytics.traits import load_traits
from demo.synthetic import DEFAULT_END, populate
from store import create_db_engine, upgrade
from store.db import unit_of_work
from store.events import insert_records
from store.models import Campaign, Delivery
from store.product import LinkSource, link_account, type_trait, upsert_traits
from store.records import EventRecord
from store.vocabulary import DeliveryStatus, EventKind

pytest.importorskip("pyspark", reason="the Spark engine is an optional extra: pip install 'rapport[spark]'")

from analytics.spark import SparkSettings, spark_session
from analytics.spark.features import SparkFeatures, spark_features
from analytics.spark.pipeline import sent_frame
from analytics.spark.segmentation import SparkSegmentation, _scaled, segment_profiles, segment_users
from analytics.spark.sources import events_from_store

pytestmark = pytest.mark.slow
AS_OF = DEFAULT_END
SMALL = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with spark_session(SparkSettings(master="local[2]", conf=SMALL)) as session:
        yield session


def _extras(engine: Engine) -> None:
    """Events the synthetic history lacks: pushes and answers, replies, a rating, a group message."""
    day = AS_OF - timedelta(days=3)
    records = [
        EventRecord(user_id=1, ts=day, kind=EventKind.PUSH_RECEIVED),
        EventRecord(user_id=1, ts=day + timedelta(hours=1), kind=EventKind.PUSH_RESPONSE),
        EventRecord(user_id=2, ts=day, kind=EventKind.PUSH_RECEIVED),
        EventRecord(
            user_id=3,
            ts=day,
            kind=EventKind.MESSAGE,
            intent="pricing",
            chat_id=-100,
            attributes={"reply": True},
        ),
        EventRecord(
            user_id=3, ts=day + timedelta(minutes=5), kind=EventKind.FEEDBACK, attributes={"rating": 2}
        ),
        EventRecord(user_id=None, ts=day, kind=EventKind.MESSAGE, intent="pricing"),
        # After as_of: neither engine may count it.
        EventRecord(user_id=4, ts=AS_OF + timedelta(hours=1), kind=EventKind.MESSAGE, intent="pricing"),
    ]
    # Product data: linked accounts with traits (a number, a date, a category past the cap of
    # five, one value of another type), product events with and without a numeric revenue.
    plans = ("free", "pro", "team", "free", "edu", "max", "lab")
    with unit_of_work(engine) as session:
        for user in range(1, 121):
            account = f"acct-{user}"
            link_account(session, account, user, source=LinkSource.IMPORT)
            typed = [
                type_trait("seats", user % 7),
                type_trait("signup", (AS_OF - timedelta(days=user)).isoformat()),
                type_trait("plan", plans[user % len(plans)] if user != 5 else 3),
            ]
            upsert_traits(session, account, typed, AS_OF - timedelta(days=1))
    for user in range(1, 60):
        attributes: dict[str, Any] = {
            "source": "product",
            "event": "upgrade" if user % 3 else "api_error_429",
        }
        if user % 4 == 0:
            attributes["properties"] = {"revenue": user * 1.5 if user % 8 else "9 EUR"}
        records.append(
            EventRecord(
                user_id=user, ts=day - timedelta(hours=user), kind=EventKind.PRODUCT, attributes=attributes
            )
        )
    with engine.begin() as connection:
        insert_records(connection, records)
        campaign = connection.execute(
            insert(Campaign)
            .values(name="c", kind="reengagement", segment="all", text="t")
            .returning(Campaign.id)
        ).scalar_one()
        connection.execute(
            insert(Delivery),
            [
                {
                    "campaign_id": campaign,
                    "user_id": 2,
                    "chat_id": 2,
                    "text": "t",
                    "status": DeliveryStatus.SENT,
                    "sent_at": day,
                },
                {
                    "campaign_id": campaign,
                    "user_id": 5,
                    "chat_id": 5,
                    "text": "t",
                    "status": DeliveryStatus.SENT,
                    "sent_at": day,
                },
            ],
        )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("spark-features") / "rapport.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    populate(engine, 240, events_per_user=None, days=60)  # the types' own rates: stable segments
    _extras(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def local(history: Engine) -> UserFeatures:
    return compute_features(history, as_of=AS_OF)


@pytest.fixture(scope="module")
def distributed(spark: Any, history: Engine) -> SparkFeatures:
    events = events_from_store(spark, history)
    traits = load_traits(history, as_of=AS_OF)
    return spark_features(spark, events, as_of=AS_OF, sent=sent_frame(spark, history, AS_OF), traits=traits)


@pytest.fixture(scope="module")
def distributed_frame(distributed: SparkFeatures) -> pd.DataFrame:
    return distributed.to_pandas()


def test_every_feature_column_equals_the_local_engine(
    local: UserFeatures, distributed: SparkFeatures, distributed_frame: pd.DataFrame
) -> None:
    expected, found = local.frame, distributed_frame
    assert list(found.columns) == list(expected.columns)
    assert found.index.equals(expected.index)
    assert distributed.intents == local.intents
    assert any(c.startswith("topic_") for c in expected.columns)
    assert {"num:seats", "age:signup", "cat:plan=free", "cat:plan=(other)", "monetary"} <= set(
        expected.columns
    )
    assert distributed.products == ("upgrade", "api_error_429")
    assert distributed.monetary == local.monetary == "events:revenue"
    for column in expected.columns:
        if column == "rfm_code":
            assert (found[column] == expected[column]).all()
            continue
        a, b = expected[column].astype(float).to_numpy(), found[column].astype(float).to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        a, b = np.nan_to_num(a), np.nan_to_num(b)
        worst = np.abs(a - b).max()
        if column.startswith("topic_"):
            worst = min(worst, np.abs(a + b).max())
        assert worst <= 1e-9, (column, worst)


def test_the_hand_written_events_reach_the_spark_features(distributed_frame: pd.DataFrame) -> None:
    """Guards against a comparison that passes because both sides miss the same rows."""
    assert distributed_frame.loc[1, "push_response_rate"] == 1.0
    assert distributed_frame.loc[2, "pushes"] == 1  # a push event and a sent delivery: the max
    assert distributed_frame.loc[3, "replies"] >= 1 and distributed_frame.loc[3, "group_share"] > 0
    assert distributed_frame["mean_rating"].notna().any()
    assert 5 not in distributed_frame.index or distributed_frame.loc[5, "pushes"] >= 1


def test_an_empty_log_has_no_users(spark: Any) -> None:
    from analytics.spark.sources import events_from_records

    features = spark_features(spark, events_from_records(spark, []), as_of=AS_OF)
    assert features.n_users == 0 and features.topics == ()
    segmentation = segment_users(features)
    assert segmentation.n_clusters == 0


def test_mllib_segments_agree_with_the_local_segmenter(
    local: UserFeatures, distributed: SparkFeatures
) -> None:
    """On the behaviour columns, whose synthetic types are well apart (the fixture's traits are noise)."""
    behaviour = local.frame.drop(columns=list(distributed.trait_columns))
    segmenter = UserSegmenter(k_min=2, k_max=6, random_state=0).fit(cluster_matrix(behaviour))
    segmentation = segment_users(
        replace(distributed, trait_columns=()), k_min=2, k_max=6, random_state=0, n_init=3
    )
    pairs = dict(tuple(row) for row in segmentation.labels.collect())
    labels = pd.Series(pairs).reindex(local.frame.index)
    assert labels.notna().all()
    assert set(segmentation.columns) <= set(local.frame.columns)
    ari = adjusted_rand_score(segmenter.labels_, labels.to_numpy())
    assert ari >= 0.95, (ari, segmenter.n_clusters_, segmentation.n_clusters)


def test_the_scaled_matrix_with_traits_equals_the_local_one(
    local: UserFeatures, distributed: SparkFeatures
) -> None:
    """Trait columns: signed log1p, the holders' mean for the others, then standardised, as locally."""
    columns = cluster_columns(local.frame)
    assert columns == (*CLUSTER_COLUMNS, *distributed.topics, *distributed.trait_columns)
    scaled, _constant = _scaled(distributed, columns)
    rows = sorted(
        (int(r["user_id"]), [float(r[f"z{i}"]) for i in range(len(columns))]) for r in scaled.collect()
    )
    found = np.array([values for _user, values in rows])
    matrix = cluster_matrix(local.frame)
    scaler = StandardScaler().fit(matrix)
    share_scales(scaler, category_groups(columns))
    expected = scaler.transform(matrix)
    assert [user for user, _values in rows] == local.frame.index.tolist()
    for i, column in enumerate(columns):
        worst = np.abs(found[:, i] - expected[:, i]).max()
        if column.startswith("topic_"):
            worst = min(worst, np.abs(found[:, i] + expected[:, i]).max())
        assert worst <= 1e-9, (column, worst)
    assert np.isnan(local.frame["num:seats"]).any()  # unlinked users were filled, not dropped


def test_spark_medians_name_segments_as_the_local_naming_does(
    spark: Any, local: UserFeatures, distributed: SparkFeatures
) -> None:
    """Given the same labels, names, descriptions, sizes and median profiles are identical."""
    frame = local.frame
    labels = np.array(frame["recency_days"] > frame["recency_days"].median(), dtype=np.int64)
    labels[frame["community_actions"].to_numpy() > 5] = 2
    pairs = spark.createDataFrame(
        [(int(u), int(x)) for u, x in zip(frame.index, labels, strict=True)], "user_id long, segment long"
    )
    found = segment_profiles(distributed, SparkSegmentation(pairs, 3, ()))
    expected = describe_segments(frame, labels)
    assert found == expected


def test_bad_k_range_is_refused(distributed: SparkFeatures) -> None:
    with pytest.raises(ValueError, match="k_min"):
        segment_users(distributed, k_min=5, k_max=3)
