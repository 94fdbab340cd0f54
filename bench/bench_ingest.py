"""Product-event ingestion: the Segment-spec HTTP API beside the bulk event import, same run.

Usage: python -m bench.bench_ingest [--events 20000] [--batch 100] [--singles 1000]
       [--concurrency 4] [--db sqlite|postgresql]

A real uvicorn serves `ingest.create_app` on 127.0.0.1; httpx clients (`--concurrency`
threads) post `/v1/batch` calls of `--batch` track calls each, then `--singles` single
`/v1/track` calls, every event of a linked account so that it enters the event log. Printed:
events/s and request latency (p50, p99) for both, and the events/s of `rapport events import`
(`store.import_events`) on a JSONL file of the same number of events into a fresh database of
the same kind, with the ratio API / import.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine, create_engine, text

from ingest import create_app
from store import count_events, create_db_engine, import_events, load_settings, upgrade
from store.db import unit_of_work
from store.product import LinkSource, link_account

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEY = "bench_write_key"
ACCOUNTS = 2000
T0 = datetime(2026, 11, 1, tzinfo=UTC)
EVENT_NAMES = ["api_call", "api_error_429", "Plan Upgraded", "Invoice Paid", "Key Created"]


@contextmanager
def database(kind: str, tmp: Path, name: str) -> Iterator[Engine]:
    """A fresh migrated database (SQLite file or PostgreSQL schema), dropped afterwards."""
    if kind == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp / f'{name}.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_db_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def track_call(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"acct_{i % ACCOUNTS}",
        "event": EVENT_NAMES[i % len(EVENT_NAMES)],
        "properties": {"endpoint": "/v1/chat/completions", "tokens": i % 4000},
        "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
        "messageId": f"m-{i}",
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(engine: Engine, data_dir: Path) -> Iterator[str]:
    """uvicorn serving the ingest app on 127.0.0.1 in a thread; yields its base URL."""
    settings = load_settings(write_keys=[KEY], data_dir=data_dir, ingest_rate_per_s=1e9)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def post_all(
    base: str, path: str, bodies: list[dict[str, Any]], concurrency: int
) -> tuple[float, list[float]]:
    """Post every body (split over `concurrency` clients); wall seconds and per-request latencies."""
    auth = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(share: list[dict[str, Any]]) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=base, headers={"Authorization": auth}, timeout=60) as client:
            for body in share:
                start = time.perf_counter()
                response = client.post(
                    path, content=json.dumps(body), headers={"Content-Type": "application/json"}
                )
                mine.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    shares = [bodies[k::concurrency] for k in range(concurrency)]
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, shares))
    return time.perf_counter() - start, latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with database(args.db, tmp, "api") as engine:
            with unit_of_work(engine) as session:
                for a in range(ACCOUNTS):
                    link_account(session, f"acct_{a}", 10_000 + a, source=LinkSource.IMPORT)
            calls = [track_call(i) for i in range(args.events)]
            batches = [{"batch": calls[k : k + args.batch]} for k in range(0, len(calls), args.batch)]
            singles = [track_call(args.events + i) | {"type": "track"} for i in range(args.singles)]
            with serve(engine, tmp) as base:
                batch_s, batch_lat = post_all(base, "/v1/batch", batches, args.concurrency)
                single_s, single_lat = post_all(base, "/v1/track", singles, args.concurrency)
            logged = count_events(engine)
            assert logged == args.events + args.singles, f"{logged} events in the log"
        path = tmp / "events.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for i in range(args.events):
                handle.write(
                    json.dumps(
                        {
                            "user_id": 10_000 + i % ACCOUNTS,
                            "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                            "kind": "product",
                            "attributes": {"source": "product", "event": EVENT_NAMES[i % 5]},
                        }
                    )
                    + "\n"
                )
        with database(args.db, tmp, "import") as engine:
            start = time.perf_counter()
            import_events(engine, path)
            import_s = time.perf_counter() - start
    batch_rate, single_rate, import_rate = (
        args.events / batch_s,
        args.singles / single_s,
        args.events / import_s,
    )
    print(f"backend {args.db}, {args.events} events, concurrency {args.concurrency}")
    print(
        f"HTTP /v1/batch ({args.batch}/call): {batch_rate:,.0f} events/s, "
        f"p50 {p(batch_lat, 50) * 1000:.1f} ms, p99 {p(batch_lat, 99) * 1000:.1f} ms per call"
    )
    print(
        f"HTTP /v1/track (single): {single_rate:,.0f} events/s, "
        f"p50 {p(single_lat, 50) * 1000:.1f} ms, p99 {p(single_lat, 99) * 1000:.1f} ms per call"
    )
    print(f"bulk import (rapport events import): {import_rate:,.0f} events/s")
    print(
        f"ratio batch API / bulk import: {batch_rate / import_rate:.3f}; single API / bulk import: "
        f"{single_rate / import_rate:.4f}"
    )


if __name__ == "__main__":
    main()
