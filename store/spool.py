"""Events kept on disk: the spool (written later) and the dead letters (never written, and why).

The spool holds events the database could not take before a clean shutdown; `replay_spool`
writes them at the next start. A dead letter is an event the database refused for what it
contains, or a spool line that cannot be read back: it is kept, with the reason, in
`<spool>/dead-letter/events.jsonl` for an operator, instead of stopping the log. Both are
JSON Lines of `EventRecord` fields. Replaying never raises: start-up must not depend on the
contents of a file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from store.events import append_events
from store.faults import is_row_fault
from store.records import USER_ID_ATTRIBUTES, EventRecord

logger = logging.getLogger(__name__)

SPOOL_PATTERN = "events-*.jsonl"
DEAD_LETTER_DIR = "dead-letter"
DEAD_LETTER_FILE = "events.jsonl"
_file_lock = threading.Lock()
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "user_id": int,
    "chat_id": int,
    "intent": str,
    "confidence": (int, float),
    "text": str,
    "attributes": dict,
    "update_id": int,
}


def record_to_json(record: EventRecord) -> str:
    """One JSON line; values JSON cannot encode are written as their repr (kept, not lost)."""
    fields = asdict(record)
    fields["ts"] = record.ts.isoformat()
    return json.dumps(fields, default=repr)


def record_from_json(line: str) -> EventRecord:
    """The record of one spool line; ValueError names what is wrong with it."""
    try:
        fields = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    # A dead letter reads as its event, so an operator can move fixed ones back into the spool.
    if "event" in fields and isinstance(fields["event"], dict):
        fields = fields["event"]
    try:
        ts = datetime.fromisoformat(fields.pop("ts"))
        record = EventRecord(ts=ts if ts.tzinfo else ts.replace(tzinfo=UTC), **fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an event: {exc}") from exc
    for name, types in _FIELD_TYPES.items():
        value = getattr(record, name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise ValueError(f"not an event: {name} is {type(value).__name__}")
    if not isinstance(record.kind, str):
        raise ValueError("not an event: kind is not a string")
    return record


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class DeadLetters:
    """The dead-letter file of one spool directory (or only the log, without one)."""

    def __init__(self, spool_dir: Path | None) -> None:
        self.directory = None if spool_dir is None else spool_dir / DEAD_LETTER_DIR
        self.count = 0

    @property
    def path(self) -> Path | None:
        """Where dead letters are appended."""
        return None if self.directory is None else self.directory / DEAD_LETTER_FILE

    def add(self, record: EventRecord | str, reason: str | BaseException) -> None:
        """Keep one refused event (or unreadable spool line) with the reason; never raises."""
        why = reason if isinstance(reason, str) else _one_line(reason)
        self.count += 1
        kind = record.kind if isinstance(record, EventRecord) else "?"
        logger.error("event log: dead-lettered an event of kind %r: %s", kind[:32], why)
        if self.directory is None:
            return
        try:
            entry: dict[str, Any] = {"failed_at": datetime.now(UTC).isoformat(), "reason": why}
            if isinstance(record, EventRecord):
                entry["event"] = json.loads(record_to_json(record))
            else:
                entry["line"] = record
            line = json.dumps(entry, default=repr)
            with _file_lock:
                self.directory.mkdir(parents=True, exist_ok=True)
                with (self.directory / DEAD_LETTER_FILE).open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
        except Exception as exc:  # a dead letter that cannot be kept is logged, never raised
            logger.error(
                "event log: could not keep the dead letter in %s: %s", self.directory, _one_line(exc)
            )

    def quarantine(self, path: Path, reason: str) -> None:
        """Move a whole unreadable spool file beside the dead letters; never raises."""
        self.count += 1
        logger.warning("event log: spool file %s is unreadable (%s); moved to dead letters", path, reason)
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.replace(self.directory / path.name)
        except OSError as exc:
            logger.error("event log: could not move %s aside: %s", path, exc)


def write_isolating(
    engine: Engine,
    records: Sequence[EventRecord],
    dead_letters: DeadLetters,
    *,
    append: Callable[[Engine, Sequence[EventRecord]], int] = append_events,
) -> tuple[int, list[EventRecord]]:
    """Write `records`, dead-lettering the rows the database refuses; (written, left over).

    A batch that fails for a row-level reason (bad data, or any error that is not the
    database being unavailable) is retried in halves until the bad rows stand alone, so
    one poison event costs about 2·log2(batch) transactions and no other event. When the
    database itself fails (`store.faults.is_row_fault` is False), the records not yet
    written come back, in order, for the caller to retry later.
    """
    try:
        return append(engine, records), []
    except Exception as exc:
        if not is_row_fault(exc):
            logger.warning("event log: write of %d events failed: %s", len(records), _one_line(exc))
            return 0, list(records)
        if len(records) == 1:
            dead_letters.add(records[0], exc)
            return 0, []
        failure = exc
    middle = len(records) // 2
    logger.warning("event log: a batch of %d was refused (%s); isolating", len(records), _one_line(failure))
    written, left = write_isolating(engine, records[:middle], dead_letters, append=append)
    if left:
        return written, [*left, *records[middle:]]
    more, left = write_isolating(engine, records[middle:], dead_letters, append=append)
    return written + more, left


def write_spool(spool_dir: Path, records: Sequence[EventRecord]) -> Path:
    """Write unwritten events to a new spool file (replayed at the next start)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / f"events-{time.time_ns()}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record_to_json(record) + "\n")
    return path


def _read_spool(path: Path, dead_letters: DeadLetters) -> list[EventRecord] | None:
    """The file's records (bad lines dead-lettered), or None when the file cannot be read."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        dead_letters.quarantine(path, _one_line(exc))
        return None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(record_from_json(line))
        except ValueError as exc:
            dead_letters.add(line, f"{path.name}:{number}: {exc}")
    return records


def replay_spool(engine: Engine, spool_dir: Path) -> int:
    """Write events spooled by an earlier run, then delete the files; never raises.

    A line that cannot be read, or an event the database refuses, goes to the dead letters
    with a warning. When the database is unavailable, what is left stays spooled for the
    next start.
    """
    if not spool_dir.is_dir():
        return 0
    dead_letters = DeadLetters(spool_dir)
    total = 0
    for path in sorted(spool_dir.glob(SPOOL_PATTERN)):
        try:
            records = _read_spool(path, dead_letters)
            if records is None:
                continue
            written, left = write_isolating(engine, records, dead_letters)
            total += written
            if left:
                write_spool(spool_dir, left)
                path.unlink()
                logger.warning("event log: database unavailable, %d spooled events kept for later", len(left))
                break
            path.unlink()
            logger.info("replayed %d spooled events from %s", written, path)
        except Exception:  # start-up must not fail on a spool file
            logger.exception("event log: could not replay %s; left in place", path)
    if dead_letters.count:
        logger.warning(
            "event log: %d spooled events were dead-lettered to %s", dead_letters.count, dead_letters.path
        )
    return total


def _scrubbed(fields: dict[str, Any], user_id: int) -> dict[str, Any] | None:
    """An event's fields without `user_id` in its attributes; None when it is that user's event."""
    if user_id in (fields.get("user_id"), fields.get("chat_id")):
        return None
    attributes = fields.get("attributes")
    if isinstance(attributes, dict):
        fields = {
            **fields,
            "attributes": {
                key: None if key in USER_ID_ATTRIBUTES and value == user_id else value
                for key, value in attributes.items()
            },
        }
    return fields


def _purged_line(line: str, user_id: int) -> str | None:
    """The line without the user (None: drop it); an unreadable line that may hold the id is dropped."""
    try:
        entry = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        entry = None
    if not isinstance(entry, dict):
        return None if str(user_id) in line else line
    if isinstance(entry.get("event"), dict):  # a dead letter: the event inside it
        event = _scrubbed(entry["event"], user_id)
        return None if event is None else json.dumps({**entry, "event": event})
    if "line" in entry and str(user_id) in str(entry["line"]):
        return None
    fields = _scrubbed(entry, user_id)
    return None if fields is None else json.dumps(fields)


def purge_user(spool_dir: Path, user_id: int) -> int:
    """Drop one user's events from the spool and the dead letters, and their id from others'.

    Forgetting a user calls this, so that a spooled event does not bring them back at the
    next start. Returns how many lines were dropped or changed.
    """
    files = [*sorted(spool_dir.glob(SPOOL_PATTERN)), spool_dir / DEAD_LETTER_DIR / DEAD_LETTER_FILE]
    changed = 0
    with _file_lock:
        for path in files:
            if not path.is_file():
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            kept = []
            for line in lines:
                purged = _purged_line(line, user_id) if str(user_id) in line else line
                if purged != line:
                    changed += 1
                if purged is not None:
                    kept.append(purged)
            if len(kept) != len(lines) or changed:
                path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return changed
