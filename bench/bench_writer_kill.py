"""What a SIGKILL costs the event log: events lost, and how old the oldest lost one was.

Usage: python -m bench.bench_writer_kill [--rate 200] [--seconds 3] [--runs 5] [--backend sqlite]

A child process logs events through `EventWriter` at `--rate` per second, as the bot does
(the bot's batch delay, `bot.app.WRITER_BATCH_DELAY_S`), and prints each event's number once
`log()` returned. The parent kills it with SIGKILL, then counts what reached the database.
The peer is the same writer without the batch delay (`max_delay_s=0`): each event is
written as soon as the thread is free. The README's durability bound comes from here.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from store import count_events, create_db_engine, upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_CHILD = """
import sys, time
from datetime import UTC, datetime
from store import EventRecord, EventWriter, create_db_engine
url, delay, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
writer = EventWriter(create_db_engine(url), max_delay_s=delay)
writer.start()
print("ready", flush=True)
n, start = 0, time.perf_counter()
while True:
    writer.log(EventRecord(user_id=1 + n % 50, ts=datetime.now(UTC), kind="message", attributes={"n": n}))
    print(n, flush=True)
    n += 1
    time.sleep(max(0.0, start + n / rate - time.perf_counter()))
"""


def _database(backend: str, directory: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{directory / f'kill-{uuid.uuid4().hex[:6]}.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(POSTGRES_URL).begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def one_kill(url: str, *, delay: float, rate: float, seconds: float) -> tuple[int, int, float]:
    """(events logged, events lost, age in ms of the oldest lost event at the kill)."""
    engine = create_db_engine(url)
    upgrade(engine)
    before = count_events(engine)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, str(delay), str(rate)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    logged_at: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        logged_at.append(time.monotonic())
    os.kill(child.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    child.wait()
    # Lines still in the pipe are events confirmed before the kill that we had not read yet:
    # logged at most our read lag before it (counted as logged at the kill).
    unread = len(child.stdout.read().split())
    logged = len(logged_at) + unread
    stored = count_events(engine) - before
    engine.dispose()
    lost = max(0, logged - stored)
    # Events are written in order, so the lost ones are the last `lost` confirmed.
    oldest = (killed_at - logged_at[-(lost - unread)]) * 1000 if lost > unread else 0.0
    return logged, lost, oldest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    from bot.app import WRITER_BATCH_DELAY_S  # the bot's own setting, so the figure stays true

    with tempfile.TemporaryDirectory() as tmp:
        url, schema = _database(args.backend, Path(tmp))
        try:
            started = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
            print(f"{started} {args.backend}, {args.rate:.0f} events/s, {args.runs} kills")
            results: dict[str, float] = {}
            for label, delay in (("bot writer", WRITER_BATCH_DELAY_S), ("no batch delay", 0.0)):
                runs = [
                    one_kill(url, delay=delay, rate=args.rate, seconds=args.seconds) for _ in range(args.runs)
                ]
                lost = [r[1] for r in runs]
                window = max(r[2] for r in runs)
                results[label] = window
                print(
                    f"  {label:15s} (max_delay_s={delay:.3f}): lost per kill {min(lost)}-{max(lost)} "
                    f"of ~{runs[0][0]}, oldest lost event logged {window:.0f} ms before the kill"
                )
            peer = results["no batch delay"]
            if peer:
                print(f"  window ratio bot / peer: {results['bot writer'] / peer:.1f}x")
        finally:
            if schema is not None:
                with create_engine(POSTGRES_URL).begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
