"""Event import and export (CSV or JSONL): all or nothing, with every bad line named."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, insert, select

from store.account_events import AccountEvent, account_event, is_account_row, resolve
from store.db import unit_of_work
from store.errors import BadRow, ImportFileError
from store.events import insert_records, iter_events
from store.faults import is_row_fault
from store.models import ImportBatch, PendingProductEvent
from store.records import EventRecord
from store.sanitize import unstorable

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("user_id", "timestamp", "kind")
EXPORT_FIELDS = (
    "user_id",
    "timestamp",
    "kind",
    "intent",
    "confidence",
    "chat_id",
    "text",
    "attributes",
)
MAX_KIND_LENGTH = 32
MAX_INTENT_LENGTH = 128
BATCH_ROWS = 50_000


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    path: str
    imported: int
    skipped: list[BadRow]
    pending: int = 0
    """Product events of accounts not linked yet, kept until the link appears (not in `imported`)."""


_BIGINT = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")
_SHOWN = 40


def _shown(value: Any) -> str:
    """A bad value as a reason shows it: its repr, cut short (a reason is one line)."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."


def _parse_int(value: Any, name: str) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {_shown(value)}")
    if not _BIGINT[0] <= value <= _BIGINT[1]:
        raise ValueError(f"{name} {_shown(value)} is out of range (a 64-bit integer)")
    return value


def _from_epoch(seconds: float, original: Any) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError(f"timestamp must be a finite number, got {_shown(original)}")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"timestamp {_shown(original)} is out of range (years 1 to 9999)") from exc


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond any float
            seconds = math.inf
        return _from_epoch(seconds, value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"timestamp must be ISO 8601 or epoch seconds, got {_shown(value)}")
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _from_epoch(seconds, value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"timestamp is not ISO 8601: {_shown(value)}") from exc
    # A timestamp without an offset is taken as UTC, the log's own zone.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"timestamp {_shown(value)} is out of range in UTC (years 1 to 9999)") from exc


def _storable(value: Any, name: str) -> None:
    reason = unstorable(value)
    if reason is not None:
        raise ValueError(f"{name} {reason}")


def _parse_attributes(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"attributes is not valid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise ValueError("attributes is nested too deeply") from exc
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("attributes must be a JSON object")
    _storable(value, "attributes")
    return value


def parse_event(raw: dict[str, Any]) -> EventRecord:
    """Validate one raw record into an event; ValueError names what is wrong.

    Rows that no backend could store as they are (a NUL, a lone surrogate, NaN inside
    attributes, ids beyond 64 bits, dates beyond year 9999) are refused here, so a file
    imports the same on SQLite and PostgreSQL.
    """
    missing = [name for name in REQUIRED_FIELDS if raw.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    kind = raw["kind"]
    if not isinstance(kind, str) or len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"kind must be a string of at most {MAX_KIND_LENGTH} characters")
    _storable(kind, "kind")
    intent = raw.get("intent") or raw.get("topic") or None
    if intent is not None and (not isinstance(intent, str) or len(intent) > MAX_INTENT_LENGTH):
        raise ValueError(f"intent must be a string of at most {MAX_INTENT_LENGTH} characters")
    _storable(intent, "intent")
    chat_id = raw.get("chat_id")
    confidence = raw.get("confidence")
    if confidence in ("", None):
        confidence = None
    else:
        try:
            confidence = float(confidence)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"confidence must be a number, got {_shown(confidence)}") from exc
        if not math.isfinite(confidence):
            raise ValueError(f"confidence must be a finite number, got {_shown(raw.get('confidence'))}")
    attributes = _parse_attributes(raw.get("attributes"))
    text = raw.get("text") or None
    if text is not None and not isinstance(text, str):
        raise ValueError("text must be a string")
    _storable(text, "text")
    return EventRecord(
        user_id=_parse_int(raw["user_id"], "user_id"),
        chat_id=None if chat_id in (None, "") else _parse_int(chat_id, "chat_id"),
        ts=_parse_timestamp(raw["timestamp"]),
        kind=kind,
        intent=intent,
        confidence=confidence,
        text=text,
        attributes=attributes,
    )


def parse_row(raw: dict[str, Any]) -> EventRecord | AccountEvent:
    """An event row keyed by `user_id`, or a product event keyed by `account_id` (resolved later).

    Raises:
        ValueError: naming what is wrong, as `parse_event` and `account_event` do.
    """
    has_user = raw.get("user_id") not in (None, "")
    if has_user and raw.get("account_id") not in (None, ""):
        raise ValueError("give user_id or account_id, not both")
    if not is_account_row(raw):
        if not has_user:
            raise ValueError("missing user_id (or account_id, for a product event)")
        return parse_event(raw)
    missing = [name for name in ("timestamp", "kind") if raw.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return account_event(raw, _parse_timestamp(raw["timestamp"]), _parse_attributes(raw.get("attributes")))


def raw_records(
    path: Path,
    handle: TextIO,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    one_of: tuple[str, ...] = (),
) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yield (line number, raw record or None, error) from a CSV or JSONL file.

    A CSV header that lacks one of `required`, or names none of `one_of`, fails the whole file;
    the product-data imports (`store.product_import`) read their files through this too.
    """
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, f"invalid JSON: {exc.msg}"
                continue
            except RecursionError:
                yield number, None, "invalid JSON: nested too deeply"
                continue
            if not isinstance(value, dict):
                yield number, None, "not a JSON object"
                continue
            yield number, value, ""
        return
    reader = csv.DictReader(handle)
    fields = set(reader.fieldnames or [])
    absent = [name for name in required if name not in fields]
    if one_of and not fields & set(one_of):
        absent.append(" or ".join(one_of))
    if absent:
        raise ImportFileError(
            str(path),
            [BadRow(1, f"header lacks {', '.join(absent)}")],
            detail=f"CSV header must name {', '.join(required)}; missing {', '.join(absent)}",
        )
    for record in reader:
        if None in record:
            yield reader.line_num, None, "more fields than the header names"
            continue
        yield reader.line_num, dict(record), ""


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_events(
    engine: Engine,
    path: Path,
    *,
    skip_invalid: bool = False,
    store_text: bool = False,
    allow_duplicate: bool = False,
) -> ImportReport:
    """Import a CSV or JSONL event file in one transaction-per-file, all or nothing.

    The whole file is validated first; any bad row rejects it (each named) unless
    `skip_invalid`. The same file (by content hash) is refused a second time unless
    `allow_duplicate`, so re-running an import does not double the log.
    """
    if not path.is_file():
        raise ImportFileError(str(path), [], detail="file does not exist")
    if path.stat().st_size == 0:
        raise ImportFileError(str(path), [], detail="no events in file (it is empty)")
    sha = _file_sha256(path)
    with unit_of_work(engine) as session:
        previous = session.scalar(select(ImportBatch).where(ImportBatch.sha256 == sha))
    if previous is not None and not allow_duplicate:
        raise ImportFileError(
            str(path),
            [],
            detail=f"already imported on {previous.imported_at:%Y-%m-%d %H:%M} UTC "
            f"({previous.rows} events); pass --allow-duplicate to import it again",
        )
    rows: list[EventRecord] = []
    accounts: list[AccountEvent] = []
    bad: list[BadRow] = []
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            records = raw_records(path, handle, ("timestamp", "kind"), one_of=("user_id", "account_id"))
            for number, raw, error in records:
                if raw is None:
                    bad.append(BadRow(number, error))
                    continue
                if not store_text:  # text that is not kept is not checked either
                    raw.pop("text", None)
                try:
                    row = parse_row(raw)
                except ValueError as exc:
                    bad.append(BadRow(number, str(exc)))
                    continue
                if isinstance(row, AccountEvent):
                    accounts.append(row)
                else:
                    rows.append(row)
    except UnicodeDecodeError as exc:
        raise ImportFileError(str(path), [], detail=f"not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ImportFileError(str(path), [], detail=f"malformed CSV: {exc}") from exc
    if bad and not skip_invalid:
        raise ImportFileError(str(path), bad)
    if not rows and not accounts and bad:
        raise ImportFileError(str(path), bad, detail=f"every row is invalid ({len(bad)} bad row(s))")
    if not rows and not accounts:
        raise ImportFileError(str(path), [], detail="no events in file")
    logged, pending = _insert_atomically(engine, rows, accounts, sha=sha, source=str(path), skipped=len(bad))
    logger.info(
        "imported %d events from %s (%d waiting for an account link, %d skipped)",
        logged,
        path,
        pending,
        len(bad),
    )
    return ImportReport(path=str(path), imported=logged, skipped=bad, pending=pending)


def _insert_atomically(
    engine: Engine,
    rows: list[EventRecord],
    accounts: list[AccountEvent],
    *,
    sha: str,
    source: str,
    skipped: int,
) -> tuple[int, int]:
    """Insert all rows and the import record in one transaction, or nothing: (logged, pending).

    Raises:
        ImportFileError: the database refused the rows (nothing was written).
    """
    try:
        return _insert(engine, rows, accounts, sha=sha, source=source, skipped=skipped)
    except Exception as exc:
        if not is_row_fault(exc):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ImportFileError(source, [], detail=f"the database refused the rows: {first[:200]}") from exc


def _insert(
    engine: Engine,
    rows: list[EventRecord],
    accounts: list[AccountEvent],
    *,
    sha: str,
    source: str,
    skipped: int,
) -> tuple[int, int]:
    now = datetime.now(UTC)
    with engine.begin() as connection:
        linked, waiting = resolve(connection, accounts, now=now) if accounts else ([], [])
        rows = [*rows, *linked]
        for start in range(0, len(rows), BATCH_ROWS):
            insert_records(connection, rows[start : start + BATCH_ROWS])
        connection.execute(
            insert(ImportBatch),
            [
                {
                    "sha256": sha,
                    "source": source,
                    "rows": len(rows) + len(waiting),
                    "skipped": skipped,
                    "imported_at": now,
                }
            ],
        )
        for start in range(0, len(waiting), BATCH_ROWS):
            connection.execute(insert(PendingProductEvent), waiting[start : start + BATCH_ROWS])
    return len(rows), len(waiting)


def export_events(engine: Engine, out: TextIO, *, fmt: str = "jsonl") -> int:
    """Write every event as JSONL or CSV (the import format); returns the count."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for event in iter_events(engine):
        record = {
            "user_id": event.user_id,
            "timestamp": event.ts.isoformat(),
            "kind": event.kind,
            "intent": event.intent,
            "confidence": event.confidence,
            "chat_id": event.chat_id,
            "text": event.text,
            "attributes": event.attributes,
        }
        if writer is not None:
            record["attributes"] = json.dumps(event.attributes) if event.attributes else ""
            writer.writerow(record)
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def export_to_string(engine: Engine, *, fmt: str = "jsonl") -> str:
    """Export into a string (tests, small logs)."""
    buffer = io.StringIO()
    export_events(engine, buffer, fmt=fmt)
    return buffer.getvalue()
