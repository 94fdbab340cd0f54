"""Delivery-engine benchmark: broadcasts through the local Bot API enforcing Telegram's limits.

Usage:
    python -m bench.bench_scheduler [--users 10000] [--rate 30] [--fast-rate 1000] [--fast-lanes 1,16]
                                    [--restarts 20] [--restart-users 200] [--database-url URL]

Scenarios (each on a fresh database and a fresh server; the engine runs in its own process,
the server in a thread of this one):
1. `--users` recipients at Telegram's limit (`--rate`/s overall, 1/s per chat, enforced by the
   server): achieved rate / allowed rate (server-side, first to last message), 429s received,
   duplicates and lost recipients.
2. The same with the limit raised to `--fast-rate`/s: the engine's own ceiling, per lane count.
3. `--restarts` runs of `--restart-users` recipients: the sending process is SIGKILLed at a
   random point and a fresh one started; duplicates, losses and ambiguous rows are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text

from fakeapi import LocalBotAPI, RateLimits, WaitTimeout
from scheduler.engine import DEFAULT_LANES
from scheduler.planning import create_broadcast
from store import EventRecord, append_events, create_db_engine, upgrade
from store.db import unit_of_work
from store.models import Delivery

ROOT = Path(__file__).resolve().parents[1]
FIRST_USER = 100_000
WORKER_FILES: dict[int, tuple[str, str]] = {}


@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a new schema on the PostgreSQL `url`."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = f"sqlite:///{tmp}/bench.db"
            engine = create_db_engine(path)
            upgrade(engine)
            engine.dispose()
            yield path
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = f"{url}?options=-csearch_path%3D{schema}"
    engine = create_db_engine(scoped)
    upgrade(engine)
    engine.dispose()
    try:
        yield scoped
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def populate(engine: Engine, api: LocalBotAPI, users: list[int]) -> int:
    """Users in the database (one `join` event each) and on the server; a broadcast to all of them."""
    now = datetime.now(UTC)
    append_events(engine, [EventRecord(user_id=u, chat_id=u, ts=now, kind="join") for u in users])
    for user_id in users:
        api.add_user(user_id, f"User {user_id}")
    return create_broadcast(engine, segment="all", text="Rapport bench broadcast", at=now, now=now)


def spawn(
    url: str, api: LocalBotAPI, rate: float, lanes: int, campaign_id: int, limit: float
) -> subprocess.Popen[str]:
    """Start a scheduler process (`bench.scheduler_worker`); its output goes to temporary files.

    Files, not pipes: a killed worker's pipes are never drained, and a full pipe would stall it.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PTB_TIMEDELTA": "1"}
    args = [url, api.base_url, api.token, str(rate), str(lanes), str(campaign_id), str(limit)]
    out = tempfile.NamedTemporaryFile("w+", suffix=".out", delete=False)  # noqa: SIM115 - closed in finish()
    err = tempfile.NamedTemporaryFile("w+", suffix=".err", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.scheduler_worker", *args],
        cwd=tempfile.gettempdir(), env=env, stdout=out, stderr=err, text=True,
    )  # fmt: skip
    WORKER_FILES[process.pid] = (out.name, err.name)
    out.close()
    err.close()
    return process


def finish(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Wait for a worker and parse its report."""
    process.wait(timeout)
    out_path, err_path = WORKER_FILES.pop(process.pid)
    out, err = Path(out_path).read_text(), Path(err_path).read_text()
    Path(out_path).unlink()
    Path(err_path).unlink()
    if process.returncode != 0 or not out.strip():
        raise RuntimeError(f"worker failed ({process.returncode}): {err[-3000:]}")
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if not report["active"]:
        raise RuntimeError(f"worker never held the lease: {err[-3000:]}")
    return report


def discard(process: subprocess.Popen[str]) -> None:
    """Forget a killed worker's output files."""
    for path in WORKER_FILES.pop(process.pid, ()):
        Path(path).unlink(missing_ok=True)


def tally(engine: Engine, api: LocalBotAPI, users: list[int]) -> dict[str, int]:
    """Duplicates, losses and ambiguous rows, from the server's count and the delivery rows."""
    per_chat = api.messages_per_chat
    with unit_of_work(engine) as session:
        rows = {
            u: (s, r)
            for u, s, r in session.execute(select(Delivery.user_id, Delivery.status, Delivery.reason))
        }
    ambiguous = [u for u, (_, reason) in rows.items() if reason == "ambiguous"]
    return {
        "delivered": sum(1 for u in users if per_chat.get(u, 0) >= 1),
        "duplicates": sum(max(0, per_chat.get(u, 0) - 1) for u in users),
        "lost": sum(1 for u in users if per_chat.get(u, 0) == 0 and u not in ambiguous),
        "ambiguous": len(ambiguous),
        "ambiguous_delivered": sum(1 for u in ambiguous if per_chat.get(u, 0) == 1),
        "not_sent_rows": sum(1 for s, _ in rows.values() if s != "sent"),
    }


@contextmanager
def broadcast_setup(
    url: str | None, ids: list[int], rate: float
) -> Iterator[tuple[str, Engine, LocalBotAPI, int]]:
    """A fresh database and server (Telegram's limits at `rate`/s) with a broadcast to `ids` pending."""
    with fresh_database(url) as db_url:
        engine = create_db_engine(db_url)
        api = LocalBotAPI()
        try:
            with api.serve_in_thread():
                api.enforce_rate_limits(RateLimits(global_per_second=rate, private_per_second=1.0))
                yield db_url, engine, api, populate(engine, api, ids)
        finally:
            engine.dispose()


def broadcast_run(url: str | None, users: int, rate: float, lanes: int) -> dict[str, Any]:
    """One uninterrupted broadcast at `rate` with the server enforcing `rate`/s overall."""
    ids = list(range(FIRST_USER, FIRST_USER + users))
    with broadcast_setup(url, ids, rate) as (db_url, engine, api, campaign_id):
        report = finish(
            spawn(db_url, api, rate, lanes, campaign_id, users / rate * 3 + 120), users / rate * 3 + 180
        )
        times = sorted(record.time for record in api.sent)
        achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        return {
            "users": users,
            "allowed_rate": rate,
            "lanes": lanes,
            "achieved_rate": round(achieved, 2),
            "ratio": round(achieved / rate, 3),
            "http_429": api.rate_limited_count,
            "worker_seconds": round(report["seconds"], 1),
            "worker_active": report["active"],
            "worker_outcomes": report["outcomes"],
            **tally(engine, api, ids),
        }


def restart_runs(url: str | None, runs: int, users: int, rate: float, seed: int) -> dict[str, Any]:
    """Kill the sending process at a random point, start another; count what went wrong."""
    rng = random.Random(seed)
    totals: Counter[str] = Counter()
    per_run = []
    for run in range(runs):
        ids = list(range(FIRST_USER, FIRST_USER + users))
        with broadcast_setup(url, ids, rate) as (db_url, engine, api, campaign_id):
            first = spawn(db_url, api, rate, DEFAULT_LANES, campaign_id, 120)
            kill_after = rng.randint(1, users - 10)
            try:
                api.sent.wait_for_blocking(lambda _record: True, timeout=120, since=kill_after - 1)
            except WaitTimeout:
                first.kill()
                first.wait(30)
                log = Path(WORKER_FILES[first.pid][1]).read_text()[-3000:]
                raise RuntimeError(f"the first worker stalled: {log}") from None
            time.sleep(rng.random() / rate)  # anywhere within the next send interval
            first.send_signal(signal.SIGKILL)
            first.wait(30)
            discard(first)
            second = finish(spawn(db_url, api, rate, DEFAULT_LANES, campaign_id, 120), 240)
            counts = tally(engine, api, ids)
            counts["reported_ambiguous"] = len(second["ambiguous"])
            counts["http_429"] = api.rate_limited_count
        totals.update(counts)
        per_run.append({"run": run, "killed_after": kill_after, **counts})
        print(f"  restart run {run + 1}/{runs}: killed after {kill_after} messages: {counts}", flush=True)
    return {"runs": runs, "users_per_run": users, "rate": rate, "totals": dict(totals), "per_run": per_run}


def main() -> None:
    """Parse arguments, run the scenarios, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--fast-rate", type=float, default=1000.0)
    parser.add_argument("--fast-lanes", default="1,16", help="lane counts to try at the fast rate")
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--restart-users", type=int, default=200)
    parser.add_argument("--restart-rate", type=float, default=100.0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--skip", default="", help="comma-separated scenarios to skip: limit,fast,restart")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"backend: {backend}")
    if "limit" not in skip:
        result = broadcast_run(args.database_url, args.users, args.rate, DEFAULT_LANES)
        print(f"broadcast at Telegram's limit: {json.dumps(result)}", flush=True)
    if "fast" not in skip:
        for lanes in (int(x) for x in args.fast_lanes.split(",") if x.strip()):
            result = broadcast_run(args.database_url, args.users, args.fast_rate, lanes)
            print(f"broadcast with the limit raised: {json.dumps(result)}", flush=True)
    if "restart" not in skip:
        result = restart_runs(
            args.database_url, args.restarts, args.restart_users, args.restart_rate, args.seed
        )
        print(f"kill and restart: {json.dumps({k: v for k, v in result.items() if k != 'per_run'})}")


if __name__ == "__main__":
    main()
