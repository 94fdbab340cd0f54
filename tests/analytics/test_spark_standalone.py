"""The `spark://` path: a Spark standalone master and one worker on 127.0.0.1 run the rule mining."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.rules import mine_rules

pyspark = pytest.importorskip("pyspark", reason="the Spark engine is an optional extra")

from analytics.spark import SparkSettings, SparkUnavailableError, spark_session  # noqa: E402
from analytics.spark.rules import mine_rules_spark  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime"),
]
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `spark-class ...Master` and `...Worker` (PySpark ships no start-master.sh), stop both after."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(SPARK_CLASS.parents[1])}
    port = _free_port()
    logs = tmp_path_factory.mktemp("spark-standalone")
    master_url = f"spark://127.0.0.1:{port}"
    processes = [
        subprocess.Popen(
            [
                str(SPARK_CLASS),
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(_free_port()),
            ],
            env=env,
            stdout=(logs / "master.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        _wait_for_port(port, 90)
        processes.append(
            subprocess.Popen(
                [
                    str(SPARK_CLASS),
                    "org.apache.spark.deploy.worker.Worker",
                    master_url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--webui-port",
                    str(_free_port()),
                    "--work-dir",
                    str(logs / "work"),
                ],
                env=env,
                stdout=(logs / "worker.log").open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        yield master_url
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_rules_mined_on_a_standalone_cluster_match_the_local_engine(standalone: str) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    baskets = [["a", "b"], ["a", "b", "c"], ["a", "c"], ["b", "c"], ["a", "b"], ["c"]] * 20
    conf = {"spark.cores.max": "1", "spark.executor.memory": "512m", "spark.driver.host": "127.0.0.1"}
    with spark_session(SparkSettings(master=standalone, conf=conf)) as spark:
        assert spark.sparkContext.master == standalone
        found = mine_rules_spark(spark, baskets, min_support=0.1, min_confidence=0.3, min_lift=0.0)
    local = mine_rules(baskets, min_support=0.1, min_confidence=0.3, min_lift=0.0)
    assert {(r.antecedents, r.consequents) for r in found} == {(r.antecedents, r.consequents) for r in local}


def test_a_missing_pyspark_or_java_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SparkUnavailableError, match="Java runtime"), spark_session(SparkSettings()):
        pass


def test_the_analytics_run_on_a_standalone_cluster_is_stored(
    standalone: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The whole Spark run (features, KMeans, FPGrowth, store) against `spark://`, not only `local`."""
    from analytics.pipeline import AnalyticsConfig
    from analytics.spark.pipeline import run_analytics_spark
    from demo.synthetic import DEFAULT_END, populate
    from store import create_db_engine, upgrade
    from store.analytics_results import get_run, run_segments

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('standalone-run') / 'rapport.db'}")
    upgrade(engine)
    populate(engine, 80, events_per_user=15, days=40)
    conf = {
        "spark.cores.max": "1",
        "spark.executor.memory": "512m",
        "spark.driver.host": "127.0.0.1",
        "spark.sql.shuffle.partitions": "2",
    }
    config = AnalyticsConfig(k_max=3, min_support=0.05, min_lift=1.0)
    with spark_session(SparkSettings(master=standalone, conf=conf)) as spark:
        summary = run_analytics_spark(engine, spark, config=config, as_of=DEFAULT_END)
    run = get_run(engine)
    assert summary.status == "done" and run is not None and run.id == summary.run_id
    assert sum(s.size for s in run_segments(engine, run.id)) == 80
    engine.dispose()
