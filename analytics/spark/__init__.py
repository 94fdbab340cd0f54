"""The analytics on Apache Spark, for communities that outgrow one machine.

The local engine (scikit-learn, mlxtend) stays the default; this one computes the same results
with Spark SQL and MLlib, so the store, the bot and the reports use either unchanged. PySpark is an
optional dependency (`pip install rapport[spark]`, plus a Java runtime): nothing here imports it at
module level, and `SparkUnavailableError` says what is missing when it cannot start.
"""

from __future__ import annotations

from analytics.spark.session import SparkSettings, SparkUnavailableError, spark_session

__all__ = ["SparkSettings", "SparkUnavailableError", "spark_session"]
