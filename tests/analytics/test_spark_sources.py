"""Spark reads the event log from PostgreSQL over JDBC and from a day-partitioned Parquet export."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from store import create_db_engine, upgrade
from store.events import insert_records
from store.records import EventRecord
from store.vocabulary import EventKind

pytest.importorskip("pyspark", reason="the Spark engine is an optional extra: pip install 'rapport[spark]'")

from analytics.spark import SparkSettings, SparkUnavailableError, spark_session
from analytics.spark.jobs import with_jdbc_driver
from analytics.spark.sources import (
    EVENT_COLUMNS,
    JDBC_JAR,
    events_from_parquet,
    events_from_postgres,
    events_from_store,
    jdbc_options,
    write_events_parquet,
)

pytestmark = pytest.mark.slow
START = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)


def _records() -> list[EventRecord]:
    """Events over three UTC days, one at 23:59:59 and one at midnight, with attributes and nulls."""
    return [
        EventRecord(
            user_id=1, ts=START, kind=EventKind.MESSAGE, intent="pricing", attributes={"reply": True}
        ),
        EventRecord(user_id=1, ts=START.replace(hour=23, minute=59, second=59), kind=EventKind.REACTION),
        EventRecord(
            user_id=2,
            ts=START + timedelta(hours=1, minutes=30),
            kind=EventKind.FEEDBACK,
            attributes={"rating": 4},
        ),
        EventRecord(
            user_id=2, ts=START + timedelta(days=1), kind=EventKind.MESSAGE, chat_id=-5, text="héllo"
        ),
        EventRecord(user_id=None, ts=START + timedelta(days=2), kind=EventKind.MESSAGE, intent="greet"),
    ]


def _fill(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        insert_records(connection, _records())


def _session(jdbc: bool) -> Any:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = SparkSettings(conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    return spark_session(with_jdbc_driver(settings) if jdbc else settings)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One session with the JDBC driver (when Debian's jar is there) for every test of the file."""
    with _session(JDBC_JAR.is_file()) as session:
        yield session


def _rows(frame: Any) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(row[c] for c in EVENT_COLUMNS if c != "id") for row in frame.collect()),
        key=lambda r: (r[2], r[0] or 0, r[3]),
    )


def test_parquet_export_is_partitioned_by_day_and_reads_back_the_same_events(
    spark: Any, tmp_path: Path
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    _fill(engine)
    events = events_from_store(spark, engine)
    out = tmp_path / "events.parquet"
    assert write_events_parquet(spark, events, out) == 5
    days = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert days == ["day=2026-03-01", "day=2026-03-02", "day=2026-03-03"]
    back = events_from_parquet(spark, out)
    assert back.columns == list(EVENT_COLUMNS)
    assert _rows(back) == _rows(events)
    assert back.where("text = 'héllo'").count() == 1
    with pytest.raises(Exception, match="already exists"):
        write_events_parquet(spark, events, out)
    engine.dispose()


@pytest.mark.skipif(not JDBC_JAR.is_file(), reason=f"no PostgreSQL JDBC driver at {JDBC_JAR}")
def test_postgres_events_over_jdbc_equal_the_store_rows(spark: Any, engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("JDBC input is for PostgreSQL; SQLite is read through the store")
    _fill(engine)
    assert "currentSchema" in jdbc_options(engine.url.render_as_string(hide_password=False))
    over_jdbc = events_from_postgres(spark, engine, partitions=2)
    assert over_jdbc.rdd.getNumPartitions() == 2
    assert _rows(over_jdbc) == _rows(events_from_store(spark, engine))


def test_jdbc_options_refuse_sqlite_and_keep_credentials() -> None:
    options = jdbc_options("postgresql+psycopg://ann:s3cret@db.example:6543/rapport")
    assert options["url"] == "jdbc:postgresql://db.example:6543/rapport"
    assert (options["user"], options["password"]) == ("ann", "s3cret")
    with pytest.raises(SparkUnavailableError, match="PostgreSQL"):
        jdbc_options("sqlite:///x.db")


def test_a_missing_jdbc_driver_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SparkUnavailableError, match="libpostgresql-jdbc-java"):
        with_jdbc_driver(SparkSettings(), jar=tmp_path / "none.jar")
    configured = SparkSettings(conf={"spark.jars": "/opt/postgresql-42.jar"})
    assert with_jdbc_driver(configured, jar=tmp_path / "none.jar") == configured


def test_sessions_print_no_progress_bars_unless_the_operator_asks(spark: Any) -> None:
    """The CLI's own step lines are the progress; Spark's bars would interleave with them."""
    assert spark.conf.get("spark.ui.showConsoleProgress") == "false"
