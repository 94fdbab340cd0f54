"""Benchmark: storing a run's memberships, the driver path against the executors' direct write.

    nice python -m bench.bench_membership_write --users 200000

The analytics run's last step stores one (user, segment) row per user. The driver path collects
the labels and writes them through `store.analytics_results.complete_run` (50,000-row executemany
chunks in one transaction); the Spark path stores the run's segments first, has the executors
write the rows with their segment ids straight into `segment_memberships` over JDBC
(`analytics.spark.pipeline.write_memberships`), matches names to the previous run with one
grouped overlap in SQL (`written_overlap`), and completes with a count and an anti-join
(`complete_run_written`). Both store the same labelling of the same users (PostgreSQL schema
`bench_members_<users>`, made fresh), in the same run; the figure is seconds per user and the
ratio, with each step timed apart: the write spreads over a cluster's executors (and the
database's connections), the overlap and the completion are single PostgreSQL statements.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.pgcpu import postgres_cpu_s
from store import create_db_engine, upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _fresh_schema(users: int) -> str:
    schema = f"bench_members_{users}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--segments", type=int, default=6)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    from analytics.spark import SparkSettings, spark_session
    from analytics.spark.jobs import with_jdbc_driver
    from analytics.spark.pipeline import write_memberships
    from store.analytics_results import (
        NewSegment,
        complete_run,
        complete_run_written,
        insert_run_segments,
        start_run,
        written_overlap,
    )

    url = _fresh_schema(args.users)
    engine = create_db_engine(url)
    upgrade(engine)
    user_ids = list(range(1, args.users + 1))
    labels = [(user * 7919) % args.segments for user in user_ids]
    buffer = io.StringIO("".join(f"{u}\tf\tf\t2026-01-01 00:00:00\t2026-01-01 00:00:00\n" for u in user_ids))
    raw = engine.raw_connection()
    try:
        columns = "id, opted_out, blocked, first_seen, last_seen"
        with raw.cursor() as cursor, cursor.copy(f"COPY users ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            copy.write(buffer.getvalue())
        raw.commit()
    finally:
        raw.close()
    segments = [
        NewSegment(label=k, name=f"s{k}", description="", size=labels.count(k), profile={})
        for k in range(args.segments)
    ]
    print(f"{args.users:,} users, {args.segments} segments; load {_load()}")

    driver_run = start_run(engine, algorithm="kmeans", params={})
    run = driver_run
    started, cpu = time.perf_counter(), postgres_cpu_s()
    complete_run(
        engine,
        run,
        message="driver",
        metrics={},
        n_events=0,
        segments=segments,
        user_ids=user_ids,
        labels=labels,
        rules=[],
    )
    driver_s, driver_cpu = time.perf_counter() - started, postgres_cpu_s() - cpu

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = SparkSettings(
        master="local[2]",
        conf={"spark.sql.shuffle.partitions": str(args.partitions), "spark.ui.showConsoleProgress": "false"},
    )
    with spark_session(with_jdbc_driver(settings)) as spark:
        frame = spark.createDataFrame(list(zip(user_ids, labels, strict=True)), "user_id long, segment int")
        frame = frame.repartition(args.partitions).cache()
        frame.count()  # materialised before the clock starts: the labels exist in a real run
        run = start_run(engine, algorithm="kmeans", params={})
        started, cpu = time.perf_counter(), postgres_cpu_s()
        label_to_id = insert_run_segments(engine, run, segments)
        write_memberships(frame, engine, run, label_to_id, partitions=args.partitions)
        write_s, write_cpu = time.perf_counter() - started, postgres_cpu_s() - cpu
    started = time.perf_counter()
    overlap = written_overlap(engine, run, driver_run, label_to_id)
    overlap_s = time.perf_counter() - started
    assert sum(overlap.values()) == args.users, overlap
    started = time.perf_counter()
    stored, _ = complete_run_written(
        engine,
        run,
        message="executors",
        metrics={},
        n_events=0,
        n_written=args.users,
        segments=segments,
        label_to_id=label_to_id,
        rules=[],
    )
    complete_s = time.perf_counter() - started
    assert stored == args.users, stored
    engine.dispose()

    per = 1e6 / args.users
    print(f"driver path (complete_run):            {driver_s:8.2f} s  {driver_s * per:6.2f} us/user")
    print(f"  of which PostgreSQL's CPU:             {driver_cpu:8.2f} s  {driver_cpu * per:6.2f} us/user")
    print(f"executors' JDBC write ({args.partitions} tasks):  {write_s:8.2f} s  {write_s * per:6.2f} us/user")
    print(
        f"  of which PostgreSQL's CPU:             {write_cpu:8.2f} s  {write_cpu * per:6.2f} us/user"
        f"  ({write_s * args.partitions * per:.2f} task-us/user)"
    )
    print(f"name matching (overlap in SQL):        {overlap_s:8.2f} s  {overlap_s * per:6.2f} us/user")
    print(f"completion (count + anti-join):        {complete_s:8.2f} s  {complete_s * per:6.2f} us/user")
    total = write_s + overlap_s + complete_s
    print(f"executor path total: {total:.2f} s = {total / driver_s:.2f}x the driver path; load {_load()}")


if __name__ == "__main__":
    main()
