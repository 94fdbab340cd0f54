"""A buffered event writer: the bot logs without blocking its event loop, nothing is lost.

Events go into an in-memory queue and one background thread writes them in batches.
When the database is unreachable the thread retries with backoff; at `close()` anything
still unwritten is spooled to a JSONL file that `replay_spool` loads on the next start.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from store.events import append_events
from store.records import EventRecord

logger = logging.getLogger(__name__)

_STOP = object()


class EventWriter:
    """Batching writer thread in front of `append_events`."""

    def __init__(
        self,
        engine: Engine,
        *,
        store_text: bool = False,
        spool_dir: Path | None = None,
        max_batch: int = 500,
        max_delay_s: float = 0.0,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._store_text = store_text
        self._spool_dir = spool_dir
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        self._on_written = on_written
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: list[dict[str, Any]] = []
        self._idle = threading.Condition()
        self._unwritten = 0
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rapport-event-writer", daemon=True)
            self._thread.start()

    def log(self, record: EventRecord) -> None:
        """Queue one event; returns at once."""
        with self._idle:
            self._unwritten += 1
        self._queue.put(record.as_row(store_text=self._store_text))

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued event is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unwritten:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush and stop; whatever cannot be written is spooled to disk."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        leftovers = self._pending + self._drain()
        self._pending = []
        if leftovers:
            self._spool(leftovers)

    def _drain(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return rows
            if item is not _STOP:
                rows.append(item)

    def _run(self) -> None:
        backoff = 0.1
        stopping = False
        while True:
            if not self._pending:
                item = self._queue.get()
                if item is _STOP:
                    return
                self._pending.append(item)
            # Take whatever else is queued; wait up to max_delay_s only if asked to.
            deadline = time.monotonic() + self._max_delay_s
            while len(self._pending) < self._max_batch:
                try:
                    remaining = deadline - time.monotonic()
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                self._pending.append(item)
            try:
                append_events(self._engine, self._pending)
            except SQLAlchemyError as exc:
                self.failures += 1
                logger.warning(
                    "event log write failed (%d events buffered), retrying in %.1fs: %s",
                    len(self._pending),
                    backoff,
                    exc.__class__.__name__,
                )
                if stopping:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            count = len(self._pending)
            self._pending = []
            self.written += count
            with self._idle:
                self._unwritten -= count
                self._idle.notify_all()
            if self._on_written:
                self._on_written(count)
            if stopping:
                return

    def _spool(self, rows: list[dict[str, Any]]) -> None:
        if self._spool_dir is None:
            logger.error("%d events could not be written and no spool directory is set", len(rows))
            return
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        path = self._spool_dir / f"events-{time.time_ns()}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({**row, "ts": row["ts"].isoformat()}) + "\n")
        logger.error("database unavailable: spooled %d events to %s", len(rows), path)
        with self._idle:
            self._unwritten -= len(rows)
            self._idle.notify_all()


def replay_spool(engine: Engine, spool_dir: Path) -> int:
    """Write events spooled by an earlier run into the database, then delete the files."""
    if not spool_dir.is_dir():
        return 0
    total = 0
    for path in sorted(spool_dir.glob("events-*.jsonl")):
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["ts"] = datetime.fromisoformat(row["ts"])
                rows.append(row)
        append_events(engine, rows)
        path.unlink()
        total += len(rows)
        logger.info("replayed %d spooled events from %s", len(rows), path)
    return total
