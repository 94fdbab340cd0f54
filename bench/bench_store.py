"""Event ingestion: bulk import events/s and single-event logging latency, SQLite and PostgreSQL.

Usage: python -m bench.bench_store [--events 200000] [--single 2000] [--backends sqlite,postgresql]

For each backend it prints our bulk path (`store.append_events`, what `rapport events import`
and the bot's writer use) beside a plain DB-API `executemany` of the same rows into the same
table (the floor), and the latency of single events logged through the bot's `EventWriter`:
enqueue (what a handler pays) and commit (until the row is durable).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from store import EventRecord, EventWriter, append_events, create_db_engine, upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INTENTS = ["pricing", "api_keys", "billing", "models", "docs", None]


def make_rows(n: int, *, seed_user: int = 0) -> list[dict[str, Any]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "user_id": seed_user + i % 5000,
            "chat_id": seed_user + i % 5000,
            "ts": t0 + timedelta(seconds=i),
            "kind": "message",
            "intent": INTENTS[i % len(INTENTS)],
            "confidence": 0.9,
            "text": None,
            "attributes": {"chat_type": "private"},
        }
        for i in range(n)
    ]


def plain_executemany(engine: Engine, rows: list[dict[str, Any]]) -> float:
    """The floor: the driver's executemany of the same rows (tuples built in the timing), no users."""
    start = time.perf_counter()
    if engine.dialect.name == "sqlite":
        params = [
            (
                r["user_id"],
                r["chat_id"],
                f"{r['ts']:%Y-%m-%d %H:%M:%S}.000000",
                r["kind"],
                r["intent"],
                r["confidence"],
                None,
                json.dumps(r["attributes"]),
            )
            for r in rows
        ]
        sql = (
            "INSERT INTO events (user_id, chat_id, ts, kind, intent, confidence, text, attributes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
    else:
        params = [
            (
                r["user_id"],
                r["chat_id"],
                r["ts"],
                r["kind"],
                r["intent"],
                r["confidence"],
                None,
                json.dumps(r["attributes"]),
            )
            for r in rows
        ]
        sql = (
            "INSERT INTO events (user_id, chat_id, ts, kind, intent, confidence, text, attributes)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(sql, params)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


def ours(engine: Engine, rows: list[dict[str, Any]]) -> float:
    records = [EventRecord(**row) for row in rows]  # an import parses straight into records
    start = time.perf_counter()
    for offset in range(0, len(records), 50_000):
        append_events(engine, records[offset : offset + 50_000])
    return time.perf_counter() - start


def single_latency(engine: Engine, n: int) -> tuple[list[float], list[float]]:
    """Log events one at a time at a bot-like pace; time enqueue and commit separately."""
    writer = EventWriter(engine)
    writer.start()
    enqueue, commit = [], []
    t0 = datetime.now(UTC)
    for i in range(n):
        record = EventRecord(
            user_id=10_000_000 + i % 50,
            ts=t0 + timedelta(milliseconds=i),
            kind="message",
            intent="pricing",
            confidence=0.8,
        )
        before = writer.written
        start = time.perf_counter()
        writer.log(record)
        enqueue.append(time.perf_counter() - start)
        while writer.written <= before:
            time.sleep(0.00005)
        commit.append(time.perf_counter() - start)
    writer.close()
    return enqueue, commit


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def engine_for(backend: str, tmp: Path) -> tuple[Engine, str | None]:
    if backend == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}")
        upgrade(engine)
        return engine, None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    engine = create_db_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    upgrade(engine)
    return engine, schema


def drop(schema: str | None) -> None:
    if schema:
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = make_rows(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            engine, schema = engine_for(backend, Path(tmp))
            try:
                floor = plain_executemany(engine, rows)
                engine2, schema2 = engine_for(backend, Path(tmp))
                try:
                    ours_s = ours(engine2, rows)
                    enqueue, commit = single_latency(engine2, args.single)
                finally:
                    engine2.dispose()
                    drop(schema2)
            finally:
                engine.dispose()
                drop(schema)
            print(
                f"[{backend}] bulk import: {args.events / ours_s:,.0f} events/s "
                f"(plain executemany {args.events / floor:,.0f} events/s; "
                f"ratio ours/plain = {floor / ours_s:.2f})"
            )
            print(
                f"[{backend}] single event via EventWriter: enqueue p50 {pct(enqueue, 50):.3f} ms "
                f"p99 {pct(enqueue, 99):.3f} ms; commit p50 {pct(commit, 50):.2f} ms "
                f"p99 {pct(commit, 99):.2f} ms (n={args.single})"
            )


if __name__ == "__main__":
    main()
