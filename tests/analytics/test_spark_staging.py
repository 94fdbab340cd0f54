"""The executors' membership write (staging table + one INSERT ... SELECT) on PostgreSQL.

It must store what the driver path stores, and a run that fails mid-write must leave the
previous run's memberships current and nothing of its own visible.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

import analytics.spark.pipeline as spark_pipeline
from analytics.pipeline import AnalyticsConfig
from analytics.spark import SparkSettings, spark_session
from analytics.spark.jobs import with_jdbc_driver
from analytics.spark.pipeline import run_analytics_spark
from analytics.spark.sources import JDBC_JAR
from demo.synthetic import DEFAULT_END, populate
from store.analytics_results import (
    NewSegment,
    complete_run,
    complete_run_staged,
    get_run,
    run_memberships,
    run_segments,
    start_run,
)
from store.models import MembershipStaging, User

pytest.importorskip("pyspark", reason="the Spark engine is an optional extra: pip install 'rapport[spark]'")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CONFIG = AnalyticsConfig(k_max=4, min_support=0.05, min_lift=1.0)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if not JDBC_JAR.is_file():
        pytest.skip("the PostgreSQL JDBC driver is not installed")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = SparkSettings(conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    with spark_session(with_jdbc_driver(settings)) as session:
        yield session


@pytest.fixture
def pg(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("the executors write over JDBC to PostgreSQL only")
    populate(engine, 120, events_per_user=15, days=40)
    return engine


def _by_name(engine: Engine, run_id: int) -> dict[int, str]:
    names = {s.id: s.name for s in run_segments(engine, run_id)}
    users, segments = run_memberships(engine, run_id)
    return {user: names[segment] for user, segment in zip(users, segments, strict=True)}


def _staged_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(MembershipStaging)).scalar_one())


def _by_label(engine: Engine, run_id: int) -> dict[int, int]:
    labels = {s.id: s.label for s in run_segments(engine, run_id)}
    users, segments = run_memberships(engine, run_id)
    return {user: labels[segment] for user, segment in zip(users, segments, strict=True)}


def test_executor_writes_store_the_same_memberships_as_the_driver(spark: Any, pg: Engine) -> None:
    """One fixed labelling, stored once through each path: the same rows, sizes and current run."""
    with pg.connect() as connection:
        user_ids = sorted(int(u) for u in connection.execute(select(User.id)).scalars())
    assert len(user_ids) == 120
    labels = [(user * 7) % 3 for user in user_ids]
    segments = [
        NewSegment(label=k, name=f"s{k}", description="", size=labels.count(k), profile={}) for k in range(3)
    ]
    driver = start_run(pg, algorithm="kmeans", params={})
    complete_run(
        pg,
        driver,
        message="ok",
        metrics={},
        n_events=0,
        segments=segments,
        user_ids=user_ids,
        labels=labels,
        rules=[],
    )
    executors = start_run(pg, algorithm="kmeans", params={})
    frame = spark.createDataFrame(list(zip(user_ids, labels, strict=True)), "user_id long, segment int")
    spark_pipeline.write_staged_memberships(frame.repartition(4), pg, executors, partitions=4, batch_size=7)
    assert _staged_rows(pg) == 120
    stored, dropped = complete_run_staged(
        pg, executors, message="ok", metrics={}, n_events=0, segments=segments, rules=[]
    )
    assert (stored, dropped) == (120, 0)
    assert _by_label(pg, executors) == _by_label(pg, driver) == dict(zip(user_ids, labels, strict=True))
    run = get_run(pg)
    assert run is not None and run.id == executors and run.n_users == 120
    assert sorted(s.size for s in run_segments(pg, executors)) == sorted(
        s.size for s in run_segments(pg, driver)
    )
    assert _staged_rows(pg) == 0, "the move deletes the run's staged rows"


def test_the_pipeline_on_postgresql_stores_every_user_through_the_executors(spark: Any, pg: Engine) -> None:
    result = run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, staged=True)
    assert result.n_users == 120
    run = get_run(pg)
    assert run is not None and run.id == result.run_id and run.n_users == 120
    assert sum(s.size for s in run_segments(pg, run.id)) == 120
    assert len(run_memberships(pg, run.id)[0]) == 120
    assert _staged_rows(pg) == 0


def test_a_run_failing_mid_write_leaves_the_previous_memberships_current(
    spark: Any, pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, staged=True)
    before = _by_name(pg, first.run_id)
    real = spark_pipeline.write_staged_memberships

    def half_then_fail(labels: Any, engine: Engine, run_id: int, **kwargs: Any) -> None:
        real(labels.orderBy("user_id").limit(60), engine, run_id, **kwargs)
        assert _staged_rows(engine) == 60
        raise RuntimeError("executor lost mid-write")

    monkeypatch.setattr(spark_pipeline, "write_staged_memberships", half_then_fail)
    with pytest.raises(RuntimeError, match="executor lost"):
        run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, staged=True)
    current = get_run(pg)
    assert current is not None and current.id == first.run_id
    assert _by_name(pg, first.run_id) == before
    failed = [r for r in (get_run(pg, first.run_id + 1),) if r is not None]
    assert failed and failed[0].status == "failed"
    assert run_memberships(pg, failed[0].id) == ([], [])
    assert _staged_rows(pg) == 0, "a failed run's staged rows are discarded"
