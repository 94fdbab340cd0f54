"""Benchmark: the local analytics engine against Spark `local[2]` on the same synthetic log.

    python -m bench.bench_spark --users 20000                     # a few minutes
    nice python -m bench.bench_spark --users 1000000 --source jdbc   # the issue's 1M / ~20M
    python -m bench.bench_spark --estimate var/bench_spark_200000.json var/bench_spark_1000000.json

The log is written once per size (PostgreSQL schema `bench_spark_<users>`, or a SQLite file
with `--db sqlite:///…`) by `bench.fastgen` (populate's rows at COPY speed), and exported once
as day-partitioned Parquet by Spark (over JDBC on PostgreSQL), what a cluster would read from
object storage. Each engine then runs in its own child process: the local one is
`run_analytics` on the database, the Spark one `run_analytics_spark` on the Parquet export.
Peak memory is the child's process tree (Python and the JVM) sampled every 0.25 s; the
PostgreSQL server, which does the local engine's aggregation, is not in it.

The Spark child tags every job by step and by MLlib call (`bench.spark_probe`), and the run's
figures go to `var/bench_spark_<users>.json`. `--estimate` reads two or more of those (different
sizes) and separates each part's fixed cost from its per-row cost (`bench.spark_estimate`) to
size a cluster for 100M users / 2B events in 30 minutes.
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

from sqlalchemy import create_engine, text

from bench.spark_probe import SPARK_UI_CONF, SparkProbe, TreeMemory, descendants

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _load() -> str:
    """The 1, 5 and 15-minute load averages (what `uptime` prints)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def database_url(url: str | None, users: int) -> str:
    """The engine URL for this size: PostgreSQL schema `bench_spark_<users>` (created), or as given."""
    url = url or POSTGRES_URL
    if not url.startswith("postgresql") or "search_path" in url:
        return url
    schema = f"bench_spark_{users}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _spark_conf(args: argparse.Namespace) -> dict[str, str]:
    return {
        "spark.sql.shuffle.partitions": str(args.partitions),
        "spark.driver.memory": args.driver_memory,
        "spark.local.dir": str(Path("var/spark-tmp").resolve()),
    }


def _child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one engine and return its figures (the child process's side)."""
    from analytics import AnalyticsConfig, run_analytics
    from demo.synthetic import DEFAULT_END
    from store import create_db_engine

    engine = create_db_engine(args.db)
    config = AnalyticsConfig(min_support=args.min_support, k_max=args.k_max)
    extra: dict[str, Any] = {}
    started = time.perf_counter()
    if args.only == "local":
        summary = run_analytics(engine, config=config, as_of=DEFAULT_END)
        elapsed = time.perf_counter() - started
    else:
        from analytics.spark import SparkSettings, spark_session
        from analytics.spark.pipeline import run_analytics_spark
        from analytics.spark.sources import events_from_parquet

        conf = {**_spark_conf(args), **SPARK_UI_CONF}
        with spark_session(SparkSettings(master=args.master, conf=conf)) as spark:
            session_s = time.perf_counter() - started
            probe = SparkProbe(spark)
            probe.install()
            import analytics.spark.pipeline as spark_pipeline

            for function, part in (
                ("write_memberships", "membership_write"),
                ("_match_written", "db_overlap"),
                ("complete_run_written", "db_complete"),
            ):
                probe.wrap_function(spark_pipeline, function, part)
            # JDBC: the pipeline's own PostgreSQL reader (8 slices of the id range), as
            # `rapport analytics run --engine spark` does without --events-parquet.
            events = (
                events_from_parquet(spark, args.parquet).repartition(args.partitions)
                if args.source == "parquet"
                else None
            )
            summary = run_analytics_spark(
                engine, spark, events, config=config, as_of=DEFAULT_END, progress=probe.progress
            )
            elapsed = time.perf_counter() - started
            probe.uninstall()
            extra = {
                "session_s": session_s,
                "groups": probe.tasks(),
                "wall": dict(probe.wall),
                "calls": dict(probe.calls),
                "kmeans_iterations": probe.kmeans_iterations,
                "db_cpu": dict(probe.db_cpu),
                "jvm_hwm_mb": sum(_hwm_mb(pid) for pid in descendants(os.getpid())),
            }
    engine.dispose()
    return {
        "engine": args.only,
        "seconds": elapsed,
        "python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "users": summary.n_users,
        "events": summary.n_events,
        "segments": summary.n_segments,
        "rules": summary.n_rules,
        "timings": summary.timings,
        **extra,
    }


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Write the synthetic history (once) and its Parquet export (once); say what it cost."""
    from bench.fastgen import fast_populate
    from store import count_events, create_db_engine, upgrade

    engine = create_db_engine(args.db)
    upgrade(engine)
    prepared: dict[str, Any] = {}
    if count_events(engine) == 0:
        started = time.perf_counter()

        def progress(users: int, events: int) -> None:
            if users % 100_000 == 0 or users == args.users:
                rate = events / (time.perf_counter() - started)
                print(f"  generated {users:,} users, {events:,} events ({rate:,.0f}/s)", flush=True)

        history = fast_populate(
            engine, args.users, events_per_user=args.events_per_user, seed=args.seed, progress=progress
        )
        prepared["generate_s"] = time.perf_counter() - started
        print(
            f"wrote {history.n_events:,} events in {prepared['generate_s']:.0f} s (load {_load()})",
            flush=True,
        )
    # A running deployment folds the dashboard's rollups every minute (the scheduler's `rollups`
    # job); a freshly generated log has none, and the local engine's run would fold all of it
    # first (`refresh_rollups`), ~7 minutes at 20M events, which is not analytics work.
    from store.rollups import refresh_rollups

    started = time.perf_counter()
    folded = refresh_rollups(engine)
    if folded.events:
        prepared["rollups_s"] = time.perf_counter() - started
        seconds = prepared["rollups_s"]
        print(f"folded {folded.events:,} events into the dashboard's rollups in {seconds:.0f} s")
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE events")
            connection.exec_driver_sql("ANALYZE users")
    if "spark" in args.engines and args.source == "parquet" and not Path(args.parquet).exists():
        from analytics.spark import SparkSettings, spark_session
        from analytics.spark.pipeline import store_events
        from analytics.spark.sources import write_events_parquet

        started = time.perf_counter()
        with spark_session(SparkSettings(master=args.master, conf=_spark_conf(args))) as spark:
            write_events_parquet(spark, store_events(spark, engine), args.parquet)
        prepared["export_s"] = time.perf_counter() - started
        print(
            f"exported Parquet to {args.parquet} in {prepared['export_s']:.0f} s (load {_load()})", flush=True
        )
    prepared["events"] = count_events(engine)
    engine.dispose()
    return prepared


def _run(args: argparse.Namespace, only: str) -> dict[str, Any]:
    """One engine in a child process, its tree's memory sampled from here."""
    command = [sys.executable, "-m", "bench.bench_spark", "--only", only]
    for key in (
        "users",
        "db",
        "parquet",
        "source",
        "master",
        "partitions",
        "min_support",
        "k_max",
        "driver_memory",
    ):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    load_before = _load()
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child,
        TreeMemory(child.pid) as memory,
    ):
        out, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"the {only} engine failed (exit {child.returncode})")
    figures = dict(json.loads(out.strip().splitlines()[-1]))
    # The sampler can miss a short peak; the child's own high-water mark is a floor for the tree's.
    figures["tree_peak_mb"] = max(memory.peak_mb, figures["python_peak_mb"])
    figures["load"] = f"{load_before} before, {_load()} after"
    return figures


def _print(figures: dict[str, Any]) -> None:
    steps = ", ".join(f"{k} {v:.1f}" for k, v in figures["timings"].items())
    print(
        f"{figures['engine']:<6} {figures['seconds']:8.1f} s   peak {figures['tree_peak_mb']:7.0f} MiB "
        f"(process tree; python {figures['python_peak_mb']:.0f})   {figures['users']:,} users, "
        f"{figures['events']:,} events, {figures['segments']} segments, {figures['rules']} rules   "
        f"[{steps}]   load {figures['load']}",
        flush=True,
    )
    if figures["engine"] == "spark":
        print(
            f"  session start {figures['session_s']:.1f} s; "
            f"KMeans (k, iterations) {figures['kmeans_iterations']}"
        )
        for group, values in sorted(figures["groups"].items()):
            wall = figures["wall"].get(group)
            print(
                f"  {group:<13} tasks {values.get('task_s', 0):8.1f} core-s "
                f"(cpu {values.get('cpu_s', 0):7.1f})  jobs {values.get('jobs', 0):4.0f}  "
                f"stages {values.get('stages', 0):4.0f}  shuffle {values.get('shuffle_write_mb', 0):8.1f} MiB"
                + (f"  wall {wall:7.1f} s" if wall is not None else "")
            )
        for part, cpu in sorted(figures.get("db_cpu", {}).items()):
            print(f"  {part:<16} wall {figures['wall'].get(part, 0.0):7.1f} s, PostgreSQL CPU {cpu:7.1f} s")
        collects = {k: v for k, v in figures["wall"].items() if k.startswith("collect:")}
        print("  driver collects: " + ", ".join(f"{k[8:]} {v:.1f} s" for k, v in collects.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events-per-user", type=float, default=20.0)
    parser.add_argument("--db", default=None, help=f"Default: {POSTGRES_URL}, schema bench_spark_<users>")
    parser.add_argument("--parquet", default=None, help="Default: var/bench_spark_<users>.parquet")
    parser.add_argument(
        "--source",
        choices=("parquet", "jdbc"),
        default="parquet",
        help="Where Spark reads the events: the Parquet export, or PostgreSQL over JDBC.",
    )
    parser.add_argument("--k-max", type=int, default=8, help="Largest k tried (both engines).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--min-support", type=float, default=0.02)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--engines", default="local,spark", help="Which to run, comma-separated.")
    parser.add_argument("--out", default=None, help="Figures as JSON; default var/bench_spark_<users>.json")
    parser.add_argument("--prepare-only", action="store_true", help="Write the log and its export, stop.")
    parser.add_argument("--estimate", nargs="+", metavar="JSON", help="Size a cluster from these runs.")
    parser.add_argument("--only", choices=("local", "spark"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.estimate:
        from bench.spark_estimate import estimate

        print(estimate([json.loads(Path(p).read_text(encoding="utf-8")) for p in args.estimate]))
        return
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.only:
        print(json.dumps(_child(args)))
        return
    Path("var/spark-tmp").mkdir(parents=True, exist_ok=True)
    args.db = database_url(args.db, args.users)
    if args.source == "jdbc" and not args.db.startswith("postgresql"):
        raise SystemExit("--source jdbc reads PostgreSQL; give a postgresql+psycopg:// --db")
    args.parquet = args.parquet or f"var/bench_spark_{args.users}.parquet"
    print(
        f"{args.users:,} users, {args.master}, driver memory {args.driver_memory}; load {_load()}", flush=True
    )
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or set(engines) - {"local", "spark"}:
        raise SystemExit(f"--engines takes local and/or spark, not {args.engines!r}")
    args.engines = engines
    prepared = _prepare(args)
    if args.prepare_only:
        return
    results = {engine: _run(args, engine) for engine in engines}
    for figures in results.values():
        _print(figures)
    if {"local", "spark"} <= results.keys():
        local, spark = results["local"], results["spark"]
        print(
            f"spark / local: time {spark['seconds'] / local['seconds']:.2f}x, "
            f"peak memory {spark['tree_peak_mb'] / local['tree_peak_mb']:.2f}x"
        )
    inside = args.master.removeprefix("local[").removesuffix("]")
    record = {
        "users": args.users,
        "master": args.master,
        "source": args.source,
        "cores": int(inside) if inside.isdigit() else os.cpu_count() or 2,
        "prepared": prepared,
        **results,
    }
    out = Path(args.out or f"var/bench_spark_{args.users}.json")
    out.write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
