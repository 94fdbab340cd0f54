"""The event log as a Spark DataFrame: from PostgreSQL over JDBC, from Parquet files, or from the store.

Every reader gives the events table's columns (`EVENT_SCHEMA`), `attributes` as JSON text, so
the feature SQL does not care where the log lives. PostgreSQL is read in parallel slices of the
primary key; Parquet is what `rapport events export --format parquet` writes, one folder per UTC
day (`day=YYYY-MM-DD`), so the log can live in object storage and a job reads only the days it
needs. The store reader pulls rows through SQLAlchemy into the driver: it is for SQLite and small
logs (tests, a first try), not for a cluster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from analytics.spark.session import DEBIAN_JDBC_JAR, SparkUnavailableError
from store.db import unit_of_work
from store.models import Event

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_SCHEMA",
    "JDBC_JAR",
    "events_from_parquet",
    "events_from_postgres",
    "events_from_records",
    "events_from_store",
    "jdbc_options",
    "write_events_parquet",
]

logger = logging.getLogger(__name__)

JDBC_JAR = DEBIAN_JDBC_JAR
"""Debian's `libpostgresql-jdbc-java`; `spark_session` passes it to Spark with `spark.jars`."""
EVENT_COLUMNS = ("id", "user_id", "chat_id", "ts", "kind", "intent", "confidence", "text", "attributes")
EVENT_SCHEMA = (
    "id long, user_id long, chat_id long, ts timestamp, kind string, intent string, "
    "confidence double, text string, attributes string"
)
_BATCH = 50_000


def _attributes(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _store_rows(engine: Engine) -> Iterator[tuple[Any, ...]]:
    with unit_of_work(engine) as session:
        query = select(Event).order_by(Event.id).execution_options(yield_per=_BATCH)
        for e in session.scalars(query):
            yield (
                e.id,
                e.user_id,
                e.chat_id,
                e.ts,
                e.kind,
                e.intent,
                e.confidence,
                e.text,
                _attributes(e.attributes),
            )


def events_from_records(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    """A DataFrame of event tuples in `EVENT_COLUMNS` order (timestamps timezone-aware)."""
    return spark.createDataFrame(rows, EVENT_SCHEMA)


def events_from_store(spark: Any, engine: Engine) -> Any:
    """Every event of the store, pulled through the driver (small logs and SQLite only)."""
    rows = list(_store_rows(engine))
    logger.info("read %d events from the store into Spark", len(rows))
    return events_from_records(spark, rows)


def jdbc_options(database_url: str) -> dict[str, str]:
    """Spark JDBC options for a SQLAlchemy PostgreSQL URL (user, password, host, schema kept).

    Raises:
        SparkUnavailableError: the URL is not PostgreSQL (Spark reads SQLite with `events_from_store`).
    """
    url = make_url(database_url)
    if not url.get_backend_name().startswith("postgresql"):
        raise SparkUnavailableError(f"JDBC input needs a PostgreSQL database, not {url.get_backend_name()}")
    host = url.host or "127.0.0.1"
    port = url.port or 5432
    options = {
        "url": f"jdbc:postgresql://{host}:{port}/{url.database or ''}",
        "driver": "org.postgresql.Driver",
        "user": url.username or "postgres",
    }
    if url.password is not None:
        options["password"] = str(url.password)
    # The tests' URLs carry `options=-csearch_path=<schema>`: the JDBC driver calls it currentSchema.
    raw_options = url.query.get("options")
    for text in [raw_options] if isinstance(raw_options, str) else list(raw_options or ()):
        for part in parse_qs(text.replace(" ", "&").replace("-c", ""), keep_blank_values=True).get(
            "search_path", []
        ):
            options["currentSchema"] = part
    return options


def events_from_postgres(spark: Any, engine: Engine, *, partitions: int = 8) -> Any:
    """The events table read over JDBC in `partitions` parallel slices of its id range.

    The session must have the PostgreSQL driver on its class path (`spark.jars`, see `JDBC_JAR`).
    """
    with unit_of_work(engine) as session:
        low, high = session.execute(select(func.min(Event.id), func.max(Event.id))).one()
    reader = spark.read.format("jdbc").option("dbtable", "events").option("fetchsize", "10000")
    for key, value in jdbc_options(engine.url.render_as_string(hide_password=False)).items():
        reader = reader.option(key, value)
    if low is not None and high is not None and high > low:
        reader = (
            reader.option("partitionColumn", "id")
            .option("lowerBound", str(low))
            .option("upperBound", str(high + 1))
            .option("numPartitions", str(max(1, partitions)))
        )
    try:
        frame = reader.load()
    except Exception as exc:  # py4j wraps the driver's message (no driver, refused connection)
        raise SparkUnavailableError(f"cannot read events over JDBC: {str(exc).splitlines()[0]}") from exc
    return _typed(frame)


def _typed(frame: Any) -> Any:
    from pyspark.sql import functions as F

    kinds = dict(
        (name.strip().split(" ", 1)[0], name.strip().split(" ", 1)[1]) for name in EVENT_SCHEMA.split(",")
    )
    return frame.select(*(F.col(name).cast(kinds[name]).alias(name) for name in EVENT_COLUMNS))


def events_from_parquet(spark: Any, path: str | Path) -> Any:
    """Events from a Parquet folder written by `write_events_parquet` (the `day` partitions dropped)."""
    frame = spark.read.parquet(str(path))
    return _typed(frame)


def write_events_parquet(spark: Any, events: Any, path: str | Path, *, mode: str = "errorifexists") -> int:
    """Write events as Parquet partitioned by UTC day (`day=YYYY-MM-DD`); returns the count.

    `mode` is Spark's save mode: the default refuses to overwrite an existing export.
    """
    from pyspark.sql import functions as F

    events = events.cache()
    count = int(events.count())
    events.withColumn("day", F.date_format("ts", "yyyy-MM-dd")).repartition("day").write.mode(
        mode
    ).partitionBy("day").parquet(str(path))
    events.unpersist()
    logger.info("wrote %d events as Parquet to %s", count, path)
    return count
