"""Benchmark: the local analytics engine against Spark `local[2]` on the same synthetic log.

    python -m bench.bench_spark --users 20000                      # this machine, a few minutes
    python -m bench.bench_spark --users 1000000 --db sqlite:///var/bench1m.db   # the issue's 1M / ~20M

Each engine runs in its own child process (so one's memory never counts for the other): the
local one is `run_analytics`, the Spark one `run_analytics_spark` with events read from a Parquet
export (what a cluster would read from object storage; the export is written once and reused).
Peak memory is the child's maximum RSS, plus for Spark the JVM's high-water mark (VmHWM).

The cluster estimate assumes Spark's work grows linearly: the feature step with events, the
segmentation and rule steps with users. From this run's throughput per core it prints how many
cores (and 8-core executors) would do 100M users / 2B events in 30 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_USERS = 100_000_000
TARGET_EVENTS = 2_000_000_000
TARGET_SECONDS = 30 * 60


def _descendants(root: int) -> list[int]:
    """Every process below `root` (the JVM that PySpark starts), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        children = [pid for pid, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one engine and return its figures (the child process's side)."""
    from analytics import AnalyticsConfig, run_analytics
    from demo.synthetic import DEFAULT_END
    from store import create_db_engine

    engine = create_db_engine(args.db)
    config = AnalyticsConfig(min_support=args.min_support)
    started = time.perf_counter()
    if args.only == "local":
        summary = run_analytics(engine, config=config, as_of=DEFAULT_END)
        jvm = 0.0
    else:
        from analytics.spark import SparkSettings, spark_session
        from analytics.spark.pipeline import run_analytics_spark
        from analytics.spark.sources import events_from_parquet

        conf = {
            "spark.sql.shuffle.partitions": str(args.partitions),
            "spark.driver.memory": args.driver_memory,
        }
        with spark_session(SparkSettings(master=args.master, conf=conf)) as spark:
            events = events_from_parquet(spark, args.parquet).repartition(args.partitions)
            summary = run_analytics_spark(engine, spark, events, config=config, as_of=DEFAULT_END)
            jvm = sum(_hwm_mb(pid) for pid in _descendants(os.getpid()))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {
        "engine": args.only,
        "seconds": elapsed,
        "python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jvm_peak_mb": jvm,
        "users": summary.n_users,
        "events": summary.n_events,
        "segments": summary.n_segments,
        "rules": summary.n_rules,
        "timings": summary.timings,
    }


def _prepare(args: argparse.Namespace) -> None:
    """Write the synthetic history (once) and its Parquet export (once)."""
    from demo.synthetic import populate
    from store import count_events, create_db_engine, upgrade

    engine = create_db_engine(args.db)
    upgrade(engine)
    if count_events(engine) == 0:
        started = time.perf_counter()
        populate(engine, args.users, events_per_user=args.events_per_user, seed=args.seed)
        print(f"populated {args.users} users in {time.perf_counter() - started:.0f} s", flush=True)
    if not Path(args.parquet).exists():
        from analytics.spark import SparkSettings, spark_session
        from analytics.spark.pipeline import store_events
        from analytics.spark.sources import write_events_parquet

        with spark_session(SparkSettings(master=args.master)) as spark:
            write_events_parquet(spark, store_events(spark, engine), args.parquet)
    engine.dispose()


def _run(args: argparse.Namespace, only: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bench_spark", "--only", only]
    for key in ("users", "db", "parquet", "master", "partitions", "min_support", "driver_memory"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _estimate(spark: dict[str, Any], cores: int) -> None:
    timings = spark["timings"]
    events_per_core_s = spark["events"] / (timings["features_s"] * cores)
    user_steps = timings["segmentation_s"] + timings["rules_s"]
    users_per_core_s = spark["users"] / (user_steps * cores)
    core_seconds = TARGET_EVENTS / events_per_core_s + TARGET_USERS / users_per_core_s
    needed = core_seconds / TARGET_SECONDS
    print(
        f"per-partition throughput: features {events_per_core_s:,.0f} events/s per core, "
        f"segmentation + rules {users_per_core_s:,.0f} users/s per core"
    )
    print(
        f"estimate for {TARGET_USERS / 1e6:.0f}M users / {TARGET_EVENTS / 1e9:.0f}B events in "
        f"{TARGET_SECONDS // 60} min: {needed:,.0f} cores ≈ {needed / 8:,.0f} executors of 8 cores "
        "(linear scaling assumed; the store step and the collect of (user, segment) not included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events-per-user", type=float, default=20.0)
    parser.add_argument("--db", default=None, help="Default: sqlite:///var/bench_spark_<users>.db")
    parser.add_argument("--parquet", default=None, help="Default: var/bench_spark_<users>.parquet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--min-support", type=float, default=0.02)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--prepare-only", action="store_true", help="Write the log and its export, stop.")
    parser.add_argument("--only", choices=("local", "spark"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.db = args.db or f"sqlite:///var/bench_spark_{args.users}.db"
    args.parquet = args.parquet or f"var/bench_spark_{args.users}.parquet"
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.only:
        print(json.dumps(_child(args)))
        return
    Path("var").mkdir(exist_ok=True)
    _prepare(args)
    if args.prepare_only:
        return
    local, spark = _run(args, "local"), _run(args, "spark")
    for figures in (local, spark):
        memory = figures["python_peak_mb"] + figures["jvm_peak_mb"]
        steps = ", ".join(f"{k} {v:.1f}" for k, v in figures["timings"].items())
        print(
            f"{figures['engine']:<6} {figures['seconds']:8.1f} s   peak {memory:7.0f} MiB "
            f"(python {figures['python_peak_mb']:.0f}, jvm {figures['jvm_peak_mb']:.0f})   "
            f"{figures['users']} users, {figures['events']} events, {figures['segments']} segments, "
            f"{figures['rules']} rules   [{steps}]"
        )
    print(f"spark / local time: {spark['seconds'] / local['seconds']:.2f}x")
    inside = args.master.removeprefix("local[").removesuffix("]")
    cores = int(inside) if inside.isdigit() else os.cpu_count() or 2
    _estimate(spark, cores)
    print("1M users / ~20M events: python -m bench.bench_spark --users 1000000 --events-per-user 20")


if __name__ == "__main__":
    main()
