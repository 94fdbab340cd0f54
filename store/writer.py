"""A buffered event writer: the bot logs without blocking its event loop, and the log never stops.

Events go into an in-memory queue and one background thread writes them in batches. When the
database is unavailable the thread retries with backoff; an event the database refuses for
what it contains is isolated (the batch is retried in halves) and kept as a dead letter, so
one poison message costs only itself. At `close()` anything still unwritten is spooled to a
JSONL file that `replay_spool` loads on the next start. No exception ends the thread.

Durability: an event is committed about `max_delay_s` plus one or two batch inserts after
`log()`; a process killed with SIGKILL loses what was logged in that window (README, "Storage").
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from store.errors import EventLogBehindError
from store.events import append_events
from store.records import EventRecord, ForgetReport
from store.spool import DeadLetters, purge_user, replay_spool, write_isolating, write_spool
from store.users import forget_user

__all__ = ["EventWriter", "forget_stored_user", "replay_spool"]

logger = logging.getLogger(__name__)

_STOP = object()
_MAX_BACKOFF_S = 5.0


class EventWriter:
    """Batching writer thread in front of `append_events`.

    Args:
        engine: Where events go.
        store_text: Keep message text (off: `text` is dropped before it is queued).
        spool_dir: Where unwritten events are spooled at close, and dead letters kept.
        max_batch: Events per insert at most.
        max_delay_s: How long the thread gathers events before an insert.
        on_written: Called with the count after each successful insert.
    """

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
        # Public: webhook replicas set it to 0 at start (they wait for every event to be durable
        # before answering, so gathering would only add latency; batches still form under load).
        self.max_delay_s = max_delay_s
        self._on_written = on_written
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: list[EventRecord] = []
        self._idle = threading.Condition()
        # Events are taken from the queue in order and a batch is finished (written,
        # dead-lettered or spooled) before the next is taken, so "the first `_done` events
        # logged are finished" holds, which is what `flush` waits for.
        self._logged = 0
        self._done = 0
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._thread: threading.Thread | None = None
        self._dead_letters = DeadLetters(spool_dir)
        self.written = 0
        self.failures = 0

    @property
    def dead_lettered(self) -> int:
        """Events the database refused, kept in the dead-letter file instead."""
        return self._dead_letters.count

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rapport-event-writer", daemon=True)
            self._thread.start()

    def log(self, record: EventRecord) -> None:
        """Queue one event; returns at once."""
        if not self._store_text and record.text is not None:
            record = dataclasses.replace(record, text=None)
        with self._idle:
            self._logged += 1
            self._queue.put(record)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every event logged before this call is written; False on timeout.

        Events logged meanwhile are not waited for, so a steady stream of updates cannot
        keep a flush from finishing.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            target = self._logged
            while self._done < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every event logged before this call is finished (written or spooled).

        Called at once when they are; otherwise from the writer thread (or `close`), so an async
        caller hops back with `call_soon_threadsafe`. Unlike `flush`, nobody blocks a thread
        waiting: many updates can wait for their events at once.
        """
        with self._idle:
            if self._done < self._logged:
                self._waiters.append((self._logged, callback))
                return
        callback()

    def forget(self, user_id: int, *, timeout: float = 10.0, attempts: int = 2) -> ForgetReport:
        """Forget a user once their logged events are in the database, so none lands after.

        Raises:
            EventLogBehindError: the log did not catch up in `attempts` × `timeout` seconds
                (the database is down or slow); nothing was deleted, the caller says so.
        """
        for attempt in range(1, attempts + 1):
            if self.flush(timeout=timeout):
                break
            logger.warning(
                "forget %d: event log not flushed after %.0f s (try %d)", user_id, timeout, attempt
            )
        else:
            raise EventLogBehindError(
                f"the event log did not catch up within {attempts * timeout:.0f} s; nothing was deleted"
            )
        return forget_stored_user(self._engine, user_id, spool_dir=self._spool_dir)

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

    def _drain(self) -> list[EventRecord]:
        records: list[EventRecord] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return records
            if item is not _STOP:
                records.append(item)

    def _finish(self, count: int) -> None:
        with self._idle:
            self._done += count
            self._idle.notify_all()
            ready = [callback for target, callback in self._waiters if target <= self._done]
            if ready:
                self._waiters = [(t, c) for t, c in self._waiters if t > self._done]
        for callback in ready:
            try:
                callback()
            except Exception:
                logger.exception("event writer: a when_done callback failed")

    def _run(self) -> None:
        """The thread: write batches until stopped; an unexpected error is logged, never fatal."""
        backoff = 0.1
        while True:
            try:
                stopping, backoff = self._step(backoff)
            except Exception as exc:
                logger.exception("event writer: unexpected error; its batch goes to the dead letters")
                self._abandon(exc)
                stopping = False
            if stopping:
                return

    def _abandon(self, exc: Exception) -> None:
        """Dead-letter the current batch, so that an error that keeps recurring cannot stall the log."""
        batch, self._pending = self._pending, []
        for record in batch:
            self._dead_letters.add(record, exc)
        self._finish(len(batch))

    def _gather(self) -> bool:
        """Fill `_pending` from the queue; True when the stop marker was seen."""
        if not self._pending:
            item = self._queue.get()
            if item is _STOP:
                return True
            self._pending.append(item)
        # Take whatever else is queued; wait up to max_delay_s only if asked to.
        deadline = time.monotonic() + self.max_delay_s
        while len(self._pending) < self._max_batch:
            try:
                remaining = deadline - time.monotonic()
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            self._pending.append(item)
        return False

    def _step(self, backoff: float) -> tuple[bool, float]:
        """Write one batch; (stop now, next backoff)."""
        stopping = self._gather()
        if not self._pending:
            return stopping, backoff
        batch = self._pending
        written, left = write_isolating(self._engine, batch, self._dead_letters, append=_append)
        # What is left is a suffix of the batch: everything before it is written or dead-lettered.
        self._pending = left
        self._finish(len(batch) - len(left))
        if written:
            self.written += written
            if self._on_written:
                try:
                    self._on_written(written)
                except Exception:
                    logger.exception("event writer: on_written callback failed")
        if not left:
            return stopping, 0.1
        self.failures += 1
        logger.warning("event log write failed (%d events buffered), retrying in %.1fs", len(left), backoff)
        if stopping:
            return True, backoff  # `close` spools what is left
        time.sleep(backoff)
        return False, min(backoff * 2, _MAX_BACKOFF_S)

    def _spool(self, records: list[EventRecord]) -> None:
        try:
            if self._spool_dir is None:
                logger.error("%d events could not be written and no spool directory is set", len(records))
                return
            path = write_spool(self._spool_dir, records)
            logger.error("database unavailable: spooled %d events to %s", len(records), path)
        except Exception:
            logger.exception("event log: could not spool %d events; they are lost", len(records))
        finally:
            self._finish(len(records))


def forget_stored_user(engine: Engine, user_id: int, *, spool_dir: Path | None) -> ForgetReport:
    """`forget_user` in the database, then in the spool and dead-letter files.

    A spooled event of the user would otherwise bring them back at the next start.
    """
    report = forget_user(engine, user_id)
    if spool_dir is not None and spool_dir.is_dir():
        purged = purge_user(spool_dir, user_id)
        if purged:
            report.deleted["spooled events"] = purged
    return report


def _append(engine: Engine, records: Sequence[EventRecord]) -> int:
    """`append_events`, looked up at call time (tests replace it to inject faults)."""
    return append_events(engine, records)
