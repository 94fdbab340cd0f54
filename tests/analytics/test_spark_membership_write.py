"""The executors' membership write on PostgreSQL: rows straight into `segment_memberships`.

It must store what the driver path stores; a running run's rows must stay invisible; a run
that fails mid-write, or loses a partition, must leave the previous run current and nothing of
its own; a user forgotten while the run computes must not come back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import analytics.spark.pipeline as spark_pipeline
from analytics.pipeline import AnalyticsConfig
from analytics.spark import SparkSettings, spark_session
from analytics.spark.jobs import with_jdbc_driver
from analytics.spark.pipeline import run_analytics_spark
from analytics.spark.sources import JDBC_JAR
from demo.synthetic import DEFAULT_END, populate
from store.analytics_queries import intents_by_segment
from store.analytics_results import (
    TOP_INTENTS,
    NewSegment,
    complete_run,
    complete_run_written,
    current_segment_names,
    get_run,
    insert_run_segments,
    run_memberships,
    run_segments,
    segment_top_intents,
    start_run,
)
from store.models import Segment, SegmentMembership, User
from store.users import forget_user

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


def _by_label(engine: Engine, run_id: int) -> dict[int, int]:
    labels = {s.id: s.label for s in run_segments(engine, run_id)}
    users, segments = run_memberships(engine, run_id)
    return {user: labels[segment] for user, segment in zip(users, segments, strict=True)}


def _by_name(engine: Engine, run_id: int) -> dict[int, str]:
    names = {s.id: s.name for s in run_segments(engine, run_id)}
    users, segments = run_memberships(engine, run_id)
    return {user: names[segment] for user, segment in zip(users, segments, strict=True)}


def _rows(engine: Engine, run_id: int) -> tuple[int, int]:
    """(memberships, segments) stored under a run, whatever its status."""
    with engine.connect() as connection:
        members = connection.execute(
            select(func.count()).select_from(SegmentMembership).where(SegmentMembership.run_id == run_id)
        ).scalar_one()
        segments = connection.execute(
            select(func.count()).select_from(Segment).where(Segment.run_id == run_id)
        ).scalar_one()
    return int(members), int(segments)


def _user_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(int(u) for u in connection.execute(select(User.id)).scalars())


def _labelling(user_ids: list[int]) -> tuple[list[int], list[NewSegment]]:
    """A fixed labelling of the users into three segments, and those segments."""
    labels = [(user * 7) % 3 for user in user_ids]
    segments = [
        NewSegment(label=k, name=f"s{k}", description="", size=labels.count(k), profile={}) for k in range(3)
    ]
    return labels, segments


def _driver_run(pg: Engine, user_ids: list[int], labels: list[int], segments: list[NewSegment]) -> int:
    """A completed run stored through the driver path (`complete_run`); its id."""
    run_id = start_run(pg, algorithm="kmeans", params={})
    complete_run(
        pg, run_id, message="ok", metrics={}, n_events=0, segments=segments, user_ids=user_ids,
        labels=labels, rules=[],
    )  # fmt: skip
    return run_id


def _write(
    spark: Any, pg: Engine, run_id: int, pairs: list[tuple[int, int]], segments: list[NewSegment], **kw: Any
) -> dict[int, int]:
    """Store the run's segments and have the executors write the (user, label) pairs; label -> id."""
    label_to_id = insert_run_segments(pg, run_id, segments)
    frame = spark.createDataFrame(pairs, "user_id long, segment int")
    spark_pipeline.write_memberships(
        frame.repartition(kw.get("partitions", 2)), pg, run_id, label_to_id, **kw
    )
    return label_to_id


def _complete(
    pg: Engine, run_id: int, segments: list[NewSegment], label_to_id: dict[int, int]
) -> tuple[int, int]:
    return complete_run_written(
        pg,
        run_id,
        message="ok",
        metrics={},
        n_events=0,
        n_written=120,
        segments=segments,
        label_to_id=label_to_id,
        rules=[],
    )


def test_executor_writes_store_the_same_memberships_as_the_driver(spark: Any, pg: Engine) -> None:
    """One fixed labelling, stored once through each path: the same rows, sizes and current run."""
    user_ids = _user_ids(pg)
    assert len(user_ids) == 120
    labels, segments = _labelling(user_ids)
    driver = _driver_run(pg, user_ids, labels, segments)
    executors = start_run(pg, algorithm="kmeans", params={})
    pairs = list(zip(user_ids, labels, strict=True))
    label_to_id = _write(spark, pg, executors, pairs, segments, partitions=4, batch_size=7)
    with Session(pg) as session:
        assert set(current_segment_names(session).values()) <= {"s0", "s1", "s2"}
    current = get_run(pg)
    assert current is not None and current.id == driver, "written rows are invisible before completion"
    assert _complete(pg, executors, segments, label_to_id) == (120, 0)
    assert _by_label(pg, executors) == _by_label(pg, driver) == dict(zip(user_ids, labels, strict=True))
    run = get_run(pg)
    assert run is not None and run.id == executors and run.n_users == 120
    assert sorted(s.size for s in run_segments(pg, executors)) == sorted(
        s.size for s in run_segments(pg, driver)
    )


def test_rows_that_arrive_after_their_users_forget_are_dropped_from_their_own_segments(
    spark: Any, pg: Engine
) -> None:
    user_ids = _user_ids(pg)
    labels, segments = _labelling(user_ids)
    gone = [u for u, label in zip(user_ids, labels, strict=True) if label == 2][:2]
    for user in gone:
        forget_user(pg, user)
    run_id = start_run(pg, algorithm="kmeans", params={})
    label_to_id = _write(spark, pg, run_id, list(zip(user_ids, labels, strict=True)), segments, partitions=2)
    assert _complete(pg, run_id, segments, label_to_id) == (118, 2)
    sizes = {s.label: s.size for s in run_segments(pg, run_id)}
    assert sizes == {0: labels.count(0), 1: labels.count(1), 2: labels.count(2) - 2}
    assert not set(gone) & set(run_memberships(pg, run_id)[0])


def test_the_pipeline_stores_every_user_and_the_segment_intents_sql_would_count(
    spark: Any, pg: Engine
) -> None:
    result = run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, executors_write=True)
    assert result.n_users == 120
    run = get_run(pg)
    assert run is not None and run.id == result.run_id and run.n_users == 120
    assert sum(s.size for s in run_segments(pg, run.id)) == 120
    assert len(run_memberships(pg, run.id)[0]) == 120
    assert run.metrics["timings"]["membership_write_s"] > 0
    with Session(pg) as session:
        table = intents_by_segment(session, run_id=run.id, as_of=DEFAULT_END, limit=TOP_INTENTS)
    expected: dict[int, list[tuple[str, int]]] = {}
    for segment_id, intent, n in table.rows:
        expected.setdefault(int(segment_id), []).append((str(intent), int(n)))
    assert expected, "the synthetic users asked questions"
    assert segment_top_intents(run) == expected


def test_a_run_failing_mid_write_leaves_the_previous_memberships_current(
    spark: Any, pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_ids = _user_ids(pg)
    labels, segments = _labelling(user_ids)
    first = _driver_run(pg, user_ids, labels, segments)  # the current run, stored the cheap way
    before = _by_name(pg, first)
    real = spark_pipeline.write_memberships

    def half_then_fail(
        labels: Any, engine: Engine, run_id: int, label_to_id: dict[int, int], **kw: Any
    ) -> None:
        real(labels.orderBy("user_id").limit(60), engine, run_id, label_to_id, **kw)
        assert _rows(engine, run_id)[0] == 60
        with Session(engine) as session:
            assert current_segment_names(session) == before, "a running run's rows are invisible"
        raise RuntimeError("executor lost mid-write")

    monkeypatch.setattr(spark_pipeline, "write_memberships", half_then_fail)
    with pytest.raises(RuntimeError, match="executor lost"):
        run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, executors_write=True)
    current = get_run(pg)
    assert current is not None and current.id == first
    assert _by_name(pg, first) == before
    failed = get_run(pg, first + 1)
    assert failed is not None and failed.status == "failed"
    assert _rows(pg, failed.id) == (0, 0), "a failed run's memberships and segments are discarded"


def test_users_forgotten_while_the_run_computes_are_left_out_with_sizes_per_segment(
    spark: Any, pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forgotten before the write, a user's row arrives after the forget (the anti-join drops it);
    after the write, the forget deletes the running run's row itself (the count is short).
    Either way they are gone and every segment's size is its members."""
    real = spark_pipeline.write_memberships
    before, after = _user_ids(pg)[:2], _user_ids(pg)[2:5]

    def write_between_forgets(
        labels: Any, engine: Engine, run_id: int, label_to_id: dict[int, int], **kw: Any
    ) -> None:
        for victim in before:
            forget_user(engine, victim)
        real(labels, engine, run_id, label_to_id, **kw)
        for victim in after:
            forget_user(engine, victim)

    monkeypatch.setattr(spark_pipeline, "write_memberships", write_between_forgets)
    result = run_analytics_spark(pg, spark, config=CONFIG, as_of=DEFAULT_END, executors_write=True)
    run = get_run(pg)
    assert run is not None and run.id == result.run_id
    users, segments = run_memberships(pg, run.id)
    assert not set(before + after) & set(users)
    assert len(users) == run.n_users == 115
    sizes = {s.id: s.size for s in run_segments(pg, run.id)}
    assert sizes == {segment: segments.count(segment) for segment in sizes}
    assert "5 user(s) deleted during the run were left out" in (run.message or "")
