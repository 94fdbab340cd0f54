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
from store.analytics_results import get_run, run_memberships, run_segments
from store.models import MembershipStaging

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


def _groups(engine: Engine, run_id: int) -> set[frozenset[int]]:
    users, segments = run_memberships(engine, run_id)
    return {frozenset(u for u, s in zip(users, segments, strict=True) if s == seg) for seg in set(segments)}


def _staged_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(MembershipStaging)).scalar_one())


def test_executor_writes_store_the_same_memberships_as_the_driver(spark: Any, pg: Engine) -> None:
    driver = run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, staged=False)
    executors = run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, staged=True)
    assert driver.n_users == executors.n_users == 120
    # The same users together (names differ: the second run carries names from the first).
    assert _groups(pg, executors.run_id) == _groups(pg, driver.run_id)
    run = get_run(pg)
    assert run is not None and run.id == executors.run_id and run.n_users == 120
    assert sum(s.size for s in run_segments(pg, run.id)) == 120
    assert _staged_rows(pg) == 0, "the move deletes the run's staged rows"


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
