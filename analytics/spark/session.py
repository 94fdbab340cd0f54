"""Starting and stopping a Spark session from Rapport's settings, with one clear error when it cannot."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.errors import AnalyticsError
from store.settings import Settings

__all__ = ["SparkSettings", "SparkUnavailableError", "spark_session"]

logger = logging.getLogger(__name__)

# Small local sessions: Spark's default of 200 shuffle partitions costs seconds of scheduling on
# 2 cores for tables of thousands of rows. A cluster's operator overrides it in RAPPORT_SPARK_CONF.
_DEFAULT_CONF = {
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    # The CLI says which step it is on; Spark's progress bars on stderr would interleave with
    # the log lines (and fill a log file with carriage returns). RAPPORT_SPARK_CONF turns them on.
    "spark.ui.showConsoleProgress": "false",
}


DEBIAN_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
"""Debian's `libpostgresql-jdbc-java`, the PostgreSQL driver for reading the event log over JDBC."""


class SparkUnavailableError(AnalyticsError):
    """PySpark or a Java runtime is missing, or the master cannot be reached."""


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs and how: `local[2]` on this machine or `spark://host:7077` for a cluster."""

    master: str = "local[2]"
    conf: Mapping[str, str] = field(default_factory=dict)
    app_name: str = "rapport-analytics"

    @classmethod
    def from_settings(cls, settings: Settings) -> SparkSettings:
        """`RAPPORT_SPARK_MASTER` and `RAPPORT_SPARK_CONF`."""
        return cls(master=settings.spark_master, conf=dict(settings.spark_conf))


@contextmanager
def spark_session(settings: SparkSettings) -> Iterator[Any]:
    """A `SparkSession` for the block, stopped afterwards.

    Raises:
        SparkUnavailableError: without PySpark, without `java` on PATH, or when the session
            cannot start (the master's message is kept).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "the Spark engine needs PySpark: pip install 'rapport[spark]' (and a Java 17+ runtime)"
        ) from exc
    if shutil.which("java") is None:
        raise SparkUnavailableError(
            "the Spark engine needs a Java runtime on PATH: apt-get install openjdk-17-jre-headless"
        )
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    conf = {**_DEFAULT_CONF, **settings.conf}
    if "spark.jars" not in conf and DEBIAN_JDBC_JAR.exists():
        # The driver's class path is fixed when the first session of a process starts the JVM:
        # a later session could not add the PostgreSQL driver, so every session carries it.
        conf["spark.jars"] = str(DEBIAN_JDBC_JAR)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j and Spark raise many kinds; the message is what helps
        raise SparkUnavailableError(f"cannot start Spark at {settings.master}: {exc}") from exc
    session.sparkContext.setLogLevel("WARN")
    logger.info("Spark %s session on %s", session.version, settings.master)
    try:
        yield session
    finally:
        session.stop()
