"""Dashboard server time per page at the demo's size: p50/p95 of each page, and the cache's effect.

Usage: python -m bench.bench_dashboard [--users 400] [--events-per-user 60] [--repeat 30] [--database-url URL]
    [--reuse]  (bulk sizes: time the pages on the population a previous run loaded, after migrating it)

From `--users 100000` on (PostgreSQL only) the population is COPYed in (`bench.bulkload`: about
`--events-per-user` events each, 20 by default there: 1M users, 20M events), no analytics run
(the segment and campaign pages are left out), and the rollups' first build and their
incremental cost per 10k new events are timed before the pages.

It writes a synthetic population (`demo.synthetic.populate`) into a fresh SQLite file (or the
given database), runs analytics once, creates a broadcast, then times every page through the
ASGI app in-process (no network: what the server spends). The overview is timed twice: with its
5-minute cache (what managers get, after the one request per 5 minutes that fills it) and with
the cache off (its peer: the grouped SQL that one request pays). Its reads are also timed
against their peer in the same run: the seven per-figure queries the overview made before
issue 15's scans: the rollups (`store.overview_queries`, `store.rollups`), so the ratio holds however
loaded the machine is.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from starlette.exceptions import StarletteDeprecationWarning

from analytics import current_segments, run_analytics
from bench.bulkload import copy_new_events, copy_population
from dashboard import DashboardConfig, create_app
from demo.synthetic import populate
from scheduler import create_broadcast
from store import create_db_engine, upgrade
from store.analytics_queries import (
    active_users_by,
    activity_heatmap,
    distinct_users_between,
    period_counts,
    retention_cohorts,
)
from store.dashboard_queries import reach_counts
from store.db import read_snapshot
from store.logins import issue_login_token
from store.overview_queries import active_by, cohort_rows, hour_events, period_messages, rolling_active_users
from store.rollups import refresh_rollups

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ADMIN = 1
TARGET_P95_MS = 300.0
TARGET_LARGE_P95_MS = 1000.0
BULK_USERS = 100_000


def _prepare(engine: Engine, users: int, events_per_user: float) -> tuple[int, int, int]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    population = populate(engine, users, events_per_user=events_per_user, end=now, seed=7)
    print(f"populated {users} users, {population.n_events} events in {time.perf_counter() - started:.1f} s")
    print(f"rollups, first build: {refresh_rollups(engine).summary()}")
    run_analytics(engine)
    segment = current_segments(engine)[0]
    campaign = create_broadcast(engine, segment="all", text="bench", at=now + timedelta(hours=1), now=now)
    return segment.id, campaign, 1


def _time(client: TestClient, path: str, repeat: int) -> list[float]:
    """Milliseconds per request after one warm-up request (templates compiled, cache filled)."""
    client.get(path)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 303), (path, response.status_code)
    return timings


def _overview_before(engine: Engine, days: int) -> None:
    """The overview's reads before issue 15: one query per figure (the peer)."""
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    with read_snapshot(engine) as db:
        period_counts(db, since=since, until=until, top=8)
        active_users_by(db, period_days=1, since=since, until=until)
        active_users_by(db, period_days=7, since=since, until=until)
        retention_cohorts(db, until=until)
        activity_heatmap(db, since=since, until=until)
        for d in (1, 7, 30):
            distinct_users_between(db, since=until - timedelta(days=d), until=until)
    reach_counts(engine)


def _overview_now(engine: Engine, days: int) -> None:
    """The overview's reads now: the rollups, the windows' partial ends from the log's indexes."""
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    with read_snapshot(engine) as db:
        period_messages(db, since=since, until=until, top=8)
        hour_events(db, since=since, until=until)
        rolling_active_users(db, until=until, days=(1, 7, 30))
        active_by(db, period_days=1, since=since, until=until)
        active_by(db, period_days=7, since=since, until=until)
        cohort_rows(db)
    reach_counts(engine)


def _time_reads(
    engine: Engine, repeat: int, peer_repeat: int | None = None
) -> list[tuple[str, float, float]]:
    """p50/p95 of both read paths, interleaved so that both see the same load.

    Also their CPU time (this thread's, in the process and SQLite): what a request costs
    however many other processes share the cores, the figure to compare across machines.
    """
    found = []
    for days in (30, 90):
        timings: dict[str, list[float]] = {"before": [], "now": [], "before, CPU": [], "now, CPU": []}
        for i in range(repeat):
            for label, reads in (("before", _overview_before), ("now", _overview_now)):
                if label == "before" and peer_repeat is not None and i >= peer_repeat:
                    continue  # the log scans at a million users: a few samples are enough
                started, cpu = time.perf_counter(), time.thread_time()
                reads(engine, days)
                timings[label].append((time.perf_counter() - started) * 1000)
                timings[f"{label}, CPU"].append((time.thread_time() - cpu) * 1000)
        for label, values in timings.items():
            found.append((f"overview reads {days} d ({label})", _p(values, 50), _p(values, 95)))
    return found


def _cpu_against_the_old_index(users: int, events_per_user: float, repeat: int) -> None:
    """CPU per overview read, as it was (nine queries, the old `ts` index) and as it is now.

    Two SQLite files with the same population: one with the index 0006_dash replaced restored,
    read the old way; one as migrated, read the new way. Thread CPU time, so the ratio does not
    depend on how many other processes share the cores.
    """
    with tempfile.TemporaryDirectory() as tmp:
        figures = {}
        for label, old in (
            ("before (old index, nine queries)", True),
            ("now (0007_rollup, rollups)", False),
        ):
            engine = create_db_engine(f"sqlite:///{Path(tmp) / f'{old}.db'}")
            upgrade(engine)
            populate(engine, users, events_per_user=events_per_user, end=datetime.now(UTC), seed=7)
            refresh_rollups(engine)
            if old:
                with engine.begin() as connection:
                    connection.exec_driver_sql("DROP INDEX ix_events_ts_user")
                    connection.exec_driver_sql("CREATE INDEX ix_events_ts ON events (ts)")
            with engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
            reads = _overview_before if old else _overview_now
            for days in (30, 90):
                cpu = []
                for _ in range(repeat):
                    started = time.thread_time()
                    reads(engine, days)
                    cpu.append((time.thread_time() - started) * 1000)
                figures[(label, days)] = _p(cpu, 50)
            engine.dispose()
    for days in (30, 90):
        before, now = (figures[(label, days)] for label in sorted({k[0] for k in figures}))
        print(
            f"overview reads, {days} days, CPU p50: {now:.1f} ms now vs {before:.1f} ms before 0006_dash "
            f"({before / now:.2f}x)"
        )


def _p(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def _prepare_bulk(engine: Engine, users: int, events_per_user: float) -> None:
    """COPY the population in, then time the rollups' first build and an incremental refresh."""
    now = datetime.now(UTC)
    loaded = copy_population(engine, users, events_per_user=events_per_user, end=now)
    print(f"copied {loaded.users} users, {loaded.events} events in {loaded.seconds:.1f} s (indexes rebuilt)")
    first = refresh_rollups(engine, batch=500_000)
    print(f"rollups, first build (the nightly/first-run cost): {first.summary()}")
    for _ in range(2):
        copy_new_events(engine, 10_000, users=users, end=now)
        print(f"rollups, 10,000 new events (10% late): {refresh_rollups(engine).summary()}")
    with engine.connect() as connection:  # as autovacuum would after the load and the first build
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--events-per-user", type=float, default=None, help="60; 20 from --users 100000 on")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="bulk only: time the pages on the population already in --database-url (no reload)",
    )
    args = parser.parse_args()
    bulk = args.users >= BULK_USERS
    per_user = args.events_per_user or (20.0 if bulk else 60.0)
    if bulk and not (args.database_url or "").startswith("postgresql"):
        parser.error(f"--users {args.users} needs --database-url postgresql+psycopg://... (COPY)")
    target = TARGET_LARGE_P95_MS if bulk else TARGET_P95_MS
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_db_engine(url)
        upgrade(engine)
        user_id = 1
        if bulk and args.reuse:
            print(f"reused the loaded population; rollups caught up: {refresh_rollups(engine).summary()}")
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        elif bulk:
            _prepare_bulk(engine, args.users, per_user)
        else:
            segment_id, campaign_id, user_id = _prepare(engine, args.users, per_user)
        results: list[tuple[str, float, float]] = []
        for label, ttl in (("cached", 300.0), ("no cache", 0.0)):
            config = DashboardConfig(
                engine=engine,
                secret=b"bench",
                admin_ids=frozenset({ADMIN}),
                base_url="http://b",
                cache_ttl_s=ttl,
            )
            client = TestClient(create_app(config), follow_redirects=False)
            token = issue_login_token(engine, config.secret, user_id=ADMIN, now=datetime.now(UTC))
            assert client.post("/login", data={"token": token}).status_code == 303
            pages = ["/", "/?days=90"]
            if label == "cached":
                pages += [
                    "/campaigns",
                    "/broadcast",
                    "/insights",
                    "/users?q=a",
                    f"/users/{user_id}",
                    "/audit",
                ]
                if not bulk:
                    pages += [
                        f"/campaigns/{campaign_id}",
                        "/broadcast/recipients?segment=all",
                        "/segments",
                        f"/segments/{segment_id}",
                        f"/segments/{segment_id}?q=1",
                    ]
            for page in pages:
                timings = _time(client, page, args.repeat)
                results.append(
                    (
                        f"{page} ({label})" if page.startswith("/?") or page == "/" else page,
                        _p(timings, 50),
                        _p(timings, 95),
                    )
                )
        results += _time_reads(engine, args.repeat, peer_repeat=1 if bulk else None)
        print(f"\n{'page':45s} {'p50 ms':>8s} {'p95 ms':>8s} {'p95/target':>10s}")
        for page, p50, p95 in results:
            print(f"{page:45s} {p50:8.1f} {p95:8.1f} {p95 / target:10.2f}")
        worst = max(p95 for page, _, p95 in results if "reads" not in page)
        print(f"\nworst p95 (uncached included): {worst:.1f} ms; target {target:.0f} ms")
        cached = {p: p50 for p, p50, _ in results}
        for path in ("/", "/?days=90"):
            cold, warm = cached[f"{path} (no cache)"], cached[f"{path} (cached)"]
            print(f"overview {path}: uncached p50 {cold:.1f} ms vs cached {warm:.1f} ms ({cold / warm:.1f}x)")
        for days in (30, 90):
            for kind in (", CPU", ""):
                before, now = (
                    cached[f"overview reads {days} d (before{kind})"],
                    cached[f"overview reads {days} d (now{kind})"],
                )
                print(
                    f"overview reads, {days} days{kind}: p50 {now:.1f} ms from the rollups "
                    f"vs {before:.1f} ms scanning the log ({before / now:.2f}x)"
                )
        engine.dispose()
    if not args.database_url:
        _cpu_against_the_old_index(args.users, per_user, args.repeat)


if __name__ == "__main__":
    main()
