"""`bench.bench_spark --users N` works at a tiny size; its cluster estimate does the arithmetic it shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.spark_estimate import (
    DATABASE_CORES,
    TARGET_EVENTS,
    TARGET_SECONDS,
    TARGET_USERS,
    estimate,
    fit_parts,
)

ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}
    return subprocess.run(
        [sys.executable, "-m", "bench.bench_spark", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_users_path_runs_the_local_engine_on_the_generated_log(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'tiny.db'}"
    out = tmp_path / "tiny.json"
    done = _bench(tmp_path, "--users", "150", "--db", db, "--engines", "local", "--out", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text(encoding="utf-8"))
    local = record["local"]
    assert record["users"] == local["users"] == 150
    assert local["events"] == record["prepared"]["events"] > 150 * 5
    assert local["segments"] >= 1 and local["seconds"] > 0
    assert local["tree_peak_mb"] > 50, "the child's resident memory was sampled"
    assert "local " in done.stdout and "spark" not in record
    # A second run reuses the log instead of writing it again.
    again = _bench(tmp_path, "--users", "150", "--db", db, "--engines", "local", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "generate_s" not in json.loads(out.read_text(encoding="utf-8"))["prepared"]
    wrong = _bench(tmp_path, "--users", "150", "--db", db, "--engines", "locl")
    assert wrong.returncode != 0 and "--engines takes local and/or spark" in wrong.stderr
    jdbc = _bench(tmp_path, "--users", "150", "--db", db, "--source", "jdbc")
    assert jdbc.returncode != 0 and "--source jdbc reads PostgreSQL" in jdbc.stderr


def _run(users: int, events: int, iterations: int, *, per_event: float, per_user: float) -> dict[str, Any]:
    """A Spark record whose parts cost 2 core-s fixed plus the given per-row time, on 2 cores."""
    kmeans_rows = users * iterations
    tasks = {
        "features": 2 + per_event * events,
        "kmeans": 2 + per_user * kmeans_rows,
        "silhouette": 2 + per_user * users,
        "segmentation": 2 + per_user * users,
        "rules": 2 + per_user * users,
        "store": 0.0,
    }
    # Wall: tasks spread over 2 cores, plus 3 s of serial time per part and 1e-5 s per user in the store.
    wall = {name: value / 2 + 3 for name, value in tasks.items()}
    wall["store"] = 3 + 1e-5 * users
    return {
        "users": users,
        "events": events,
        "session_s": 10.0,
        "kmeans_iterations": [[2, iterations]],
        "groups": {name: {"task_s": value} for name, value in tasks.items()},
        "wall": {"kmeans": wall["kmeans"], "silhouette": wall["silhouette"]},
        "timings": {
            "features_s": wall["features"],
            "segmentation_s": wall["segmentation"] + wall["kmeans"] + wall["silhouette"],
            "rules_s": wall["rules"],
            "store_s": wall["store"],
        },
    }


def test_estimate_separates_fixed_from_per_row_costs() -> None:
    records = [
        {"cores": 2, "spark": _run(users, users * 20, iterations, per_event=1e-5, per_user=4e-5)}
        for users, iterations in ((100_000, 30), (1_000_000, 40))
    ]
    parts = {p.name.split(" ")[0]: p for p in fit_parts(records)}
    assert parts["features"].per_row_core_s == pytest.approx(1e-5)
    assert parts["features"].fixed_core_s == pytest.approx(2)
    assert parts["KMeans"].per_row_core_s == pytest.approx(4e-5)
    assert parts["KMeans"].target_rows == TARGET_USERS * 40, "the largest run's iterations"
    assert parts["features"].fixed_serial_s == pytest.approx(3)
    assert parts["features"].per_row_serial_s == pytest.approx(0, abs=1e-12)
    assert parts["store"].per_row_serial_s == pytest.approx(1e-5)
    parallel = 1e-5 * TARGET_EVENTS + 4e-5 * TARGET_USERS * (40 + 3)
    serial = 6 * 3 + 1e-5 * TARGET_USERS
    text = estimate(records)
    cores = parallel / (TARGET_SECONDS - serial - 10)
    assert f"= {cores:,.0f} " in text
    assert f"{parallel:,.0f} core-s" in text


def test_estimate_says_when_the_driver_alone_misses_the_target() -> None:
    records: list[dict[str, Any]] = [
        {"cores": 2, "spark": _run(users, users * 20, 30, per_event=1e-5, per_user=4e-5)}
        for users in (100_000, 1_000_000)
    ]
    for record in records:  # 1e-4 s a user in the store: 10,000 s at 100M users
        spark = record["spark"]
        spark["timings"]["store_s"] = 3 + 1e-4 * spark["users"]
    assert "no core count meets 30 minutes" in estimate(records)
    with pytest.raises(ValueError, match="Spark run"):
        estimate([{"cores": 2, "local": {}}])


@pytest.mark.slow
def test_users_path_runs_both_engines_and_tags_spark_jobs(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="the Spark engine is an optional extra")
    db = f"sqlite:///{tmp_path / 'tiny.db'}"
    out = tmp_path / "tiny.json"
    done = _bench(
        tmp_path,
        "--users",
        "150",
        "--db",
        db,
        "--partitions",
        "2",
        "--driver-memory",
        "1g",
        "--k-max",
        "3",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text(encoding="utf-8"))
    local, spark = record["local"], record["spark"]
    assert local["users"] == spark["users"] == 150
    assert local["events"] == spark["events"] == record["prepared"]["events"]
    assert spark["tree_peak_mb"] > local["tree_peak_mb"], "the JVM is in the Spark child's tree"
    for group in ("features", "kmeans", "silhouette", "fpgrowth"):
        assert spark["groups"][group]["task_s"] > 0, group
    assert [k for k, _ in spark["kmeans_iterations"]] == [2, 3]
    assert local["segments"] <= 3 and spark["segments"] <= 3, "--k-max reaches both engines"
    assert spark["wall"]["collect:segmentation"] > 0
    assert "spark / local: time" in done.stdout
    assert (tmp_path / "var" / "bench_spark_150.parquet").is_dir()


def test_sizes_that_disagree_fall_back_to_the_largest_through_the_origin() -> None:
    # The smaller run was slowed by load: its features cost more task time than the larger's.
    records: list[dict[str, Any]] = [
        {"cores": 2, "spark": _run(users, users * 20, 30, per_event=per_event, per_user=4e-5)}
        for users, per_event in ((100_000, 2e-4), (1_000_000, 1e-5))
    ]
    features = next(p for p in fit_parts(records) if p.name.startswith("features"))
    largest = records[1]["spark"]
    assert features.fixed_core_s == 0
    assert features.per_row_core_s == pytest.approx(
        largest["groups"]["features"]["task_s"] / largest["events"]
    )
    assert features.per_row_serial_s >= 0


def test_the_executors_membership_write_is_sized_on_the_database_not_the_cluster() -> None:
    records: list[dict[str, Any]] = [
        {"cores": 2, "spark": _run(users, users * 20, 40, per_event=1e-5, per_user=4e-5)}
        for users in (100_000, 1_000_000)
    ]
    before = estimate(records)
    for record in records:  # 14 µs of PostgreSQL's CPU per user, 1e-5 s a user of wall on 2 cores
        spark = record["spark"]
        spark["db_cpu"] = {"membership_write": 14e-6 * spark["users"]}
        spark["wall"]["membership_write"] = 1e-5 * spark["users"]
        spark["timings"]["segmentation_s"] += spark["wall"]["membership_write"]
    text = estimate(records)
    assert "14.00 µs of server CPU per user" in text
    database_s = 14e-6 * TARGET_USERS / DATABASE_CORES
    assert f"{database_s:,.0f} s, counted as serial" in text
    parallel = 1e-5 * TARGET_EVENTS + 4e-5 * TARGET_USERS * (40 + 3)
    serial = 6 * 3 + 1e-5 * TARGET_USERS + database_s
    assert f"= {parallel / (TARGET_SECONDS - serial - 10):,.0f} " in text
    assert f"= {parallel / (TARGET_SECONDS - serial - 10):,.0f} " not in before


def test_stage_time_splits_the_driver_from_stages_that_left_cores_idle() -> None:
    records: list[dict[str, Any]] = [
        {"cores": 2, "spark": _run(users, users * 20, 40, per_event=1e-5, per_user=4e-5)}
        for users in (100_000, 1_000_000)
    ]
    for record in records:  # every part: stages ran 1 s longer than their tasks over 2 cores
        spark = record["spark"]
        for values in spark["groups"].values():
            values["stage_s"] = values["task_s"] / 2 + 1.0
    parts = {p.name.split(" ")[0]: p for p in fit_parts(records)}
    assert parts["features"].fixed_serial_s == pytest.approx(2), "3 s of gap, 1 s of it inside stages"
    assert parts["features"].fixed_idle_s == pytest.approx(1)
    assert parts["KMeans"].target_idle_s == pytest.approx(1)
    text = estimate(records)
    assert "stages that ran on fewer cores than the machine had: 6 s at the target" in text
