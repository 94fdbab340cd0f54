"""What `rapport analytics run --engine spark` and `rules --engine spark` do: open a session, run, stop.

The session gets the PostgreSQL JDBC driver on its class path when the store is PostgreSQL
(Debian's jar, unless `spark.jars` in RAPPORT_SPARK_CONF already names one).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from analytics.errors import AnalyticsError
from analytics.pipeline import AnalyticsConfig, Progress, RunSummary
from analytics.rules import AssociationRule, read_baskets
from analytics.spark.pipeline import run_analytics_spark
from analytics.spark.rules import mine_rules_spark
from analytics.spark.session import SparkSettings, SparkUnavailableError, spark_session
from analytics.spark.sources import JDBC_JAR, events_from_parquet

__all__ = ["export_parquet", "mine_basket_file_spark", "run_spark_job", "with_jdbc_driver"]

logger = logging.getLogger(__name__)


def with_jdbc_driver(settings: SparkSettings, *, jar: Path = JDBC_JAR) -> SparkSettings:
    """The settings with the PostgreSQL JDBC jar added to `spark.jars` (kept if one is there).

    Raises:
        SparkUnavailableError: no driver is configured and `jar` does not exist.
    """
    jars = settings.conf.get("spark.jars", "")
    if "postgresql" in jars:
        return settings
    if not jar.is_file():
        raise SparkUnavailableError(
            f"reading PostgreSQL from Spark needs the JDBC driver at {jar}: "
            "apt-get install libpostgresql-jdbc-java (or set spark.jars in RAPPORT_SPARK_CONF)"
        )
    return replace(settings, conf={**settings.conf, "spark.jars": ",".join(filter(None, (jars, str(jar))))})


def run_spark_job(
    engine: Engine,
    settings: SparkSettings,
    *,
    parquet: Path | None = None,
    config: AnalyticsConfig | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """One Spark analytics run stored in `engine`; events from `parquet` if given, else the store.

    Raises:
        AnalyticsError: a configuration the Spark engine cannot run (checked before Spark starts).
    """
    if config is not None and config.algorithm != "kmeans":
        raise AnalyticsError(f"the Spark engine segments with kmeans only, not {config.algorithm!r}")
    if parquet is None and engine.dialect.name == "postgresql":
        settings = with_jdbc_driver(settings)
    with spark_session(settings) as spark:
        events = events_from_parquet(spark, parquet) if parquet is not None else None
        return run_analytics_spark(engine, spark, events, config=config, as_of=as_of, progress=progress)


def mine_basket_file_spark(
    path: str | Path, settings: SparkSettings, **options: Any
) -> list[AssociationRule]:
    """`mine_basket_file` on Spark: the same baskets, options and rules."""
    baskets = read_baskets(path)
    with spark_session(settings) as spark:
        return mine_rules_spark(spark, baskets, **options)


def export_parquet(engine: Engine, settings: SparkSettings, path: Path) -> int:
    """`rapport events export --format parquet`: the store's events as Parquet, one folder per UTC day.

    Spark writes the files (PyArrow is not a dependency); an existing `path` is refused.
    """
    from analytics.spark.pipeline import store_events
    from analytics.spark.sources import write_events_parquet

    if path.exists():
        raise SparkUnavailableError(f"{path} already exists: Parquet exports never overwrite")
    if engine.dialect.name == "postgresql":
        settings = with_jdbc_driver(settings)
    with spark_session(settings) as spark:
        return write_events_parquet(spark, store_events(spark, engine), path)
