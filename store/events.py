"""The append-only interaction log: bulk inserts, per-user time-ordered reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from store.db import unit_of_work
from store.models import Event, User

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("user_id", "chat_id", "ts", "kind", "intent", "confidence", "text", "attributes")


def _sqlite_ts(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text form, so raw and ORM writes sort the same."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond:06d}"


def _insert_rows(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert event rows on an open transaction, by each backend's fastest path.

    SQLite gets DB-API executemany, PostgreSQL COPY: imports and the bot's buffered
    writer both go through here.
    """
    backend = connection.dialect.name
    if backend == "sqlite":
        params = [
            (
                row.get("user_id"),
                row.get("chat_id"),
                _sqlite_ts(row["ts"]),
                row["kind"],
                row.get("intent"),
                row.get("confidence"),
                row.get("text"),
                None if row.get("attributes") is None else json.dumps(row["attributes"]),
            )
            for row in rows
        ]
        connection.exec_driver_sql(
            "INSERT INTO events (user_id, chat_id, ts, kind, intent, confidence, text, attributes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            params,  # type: ignore[arg-type]
        )
    elif backend == "postgresql":
        raw = connection.connection.dbapi_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(  # type: ignore[attr-defined]
                "COPY events (user_id, chat_id, ts, kind, intent, confidence, text, attributes) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                attributes = row.get("attributes")
                copy.write_row(
                    (
                        row.get("user_id"),
                        row.get("chat_id"),
                        row["ts"],
                        row["kind"],
                        row.get("intent"),
                        row.get("confidence"),
                        row.get("text"),
                        None if attributes is None else json.dumps(attributes),
                    )
                )
    else:
        connection.execute(insert(Event), list(rows))


def _ensure_users(connection: Connection, spans: dict[int, tuple[datetime, datetime]]) -> None:
    """Create missing users and widen first/last seen from the events' time span."""
    users = User.__table__
    ids = list(spans)
    existing: dict[int, tuple[datetime, datetime]] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for user_id, first, last in connection.execute(
            select(User.id, User.first_seen, User.last_seen).where(User.id.in_(chunk))
        ):
            existing[user_id] = (first, last)
    new_rows = []
    for user_id, (first, last) in spans.items():
        if user_id not in existing:
            new_rows.append(
                {
                    "id": user_id,
                    "first_seen": first,
                    "last_seen": last,
                    "opted_out": False,
                    "blocked": False,
                }
            )
            continue
        old_first, old_last = existing[user_id]
        if first < old_first or last > old_last:
            connection.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(first_seen=min(first, old_first), last_seen=max(last, old_last))
            )
    if new_rows:
        connection.execute(insert(users), new_rows)


def append_rows(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert event rows and their users on an open transaction (for atomic imports)."""
    if not rows:
        return 0
    spans: dict[int, tuple[datetime, datetime]] = {}
    for row in rows:
        user_id = row.get("user_id")
        if user_id is None:
            continue
        ts = row["ts"]
        first, last = spans.get(user_id, (ts, ts))
        spans[user_id] = (min(first, ts), max(last, ts))
    _ensure_users(connection, spans)
    _insert_rows(connection, rows)
    return len(rows)


def append_events(engine: Engine, rows: Sequence[dict[str, Any]]) -> int:
    """Insert event rows (keys as EVENT_COLUMNS, `ts` UTC-aware) and their users, atomically."""
    if not rows:
        return 0
    with engine.begin() as connection:
        return append_rows(connection, rows)


@dataclass(frozen=True)
class StoredEvent:
    """An event read back from the log."""

    id: int
    user_id: int | None
    chat_id: int | None
    ts: datetime
    kind: str
    intent: str | None
    confidence: float | None
    text: str | None
    attributes: dict[str, Any] | None


def _stored(event: Event) -> StoredEvent:
    return StoredEvent(
        id=event.id,
        user_id=event.user_id,
        chat_id=event.chat_id,
        ts=event.ts,
        kind=event.kind,
        intent=event.intent,
        confidence=event.confidence,
        text=event.text,
        attributes=event.attributes,
    )


def user_events(engine: Engine, user_id: int, *, limit: int | None = None) -> list[StoredEvent]:
    """One user's events in time order (their interaction sequence); the latest `limit`."""
    with unit_of_work(engine) as session:
        query = select(Event).where(Event.user_id == user_id)
        if limit is not None:
            latest = list(session.scalars(query.order_by(Event.ts.desc(), Event.id.desc()).limit(limit)))
            return [_stored(e) for e in reversed(latest)]
        return [_stored(e) for e in session.scalars(query.order_by(Event.ts, Event.id))]


def iter_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = 10_000,
) -> Iterator[StoredEvent]:
    """Stream every event ordered by user then time, without loading the log into memory."""
    with unit_of_work(engine) as session:
        query = select(Event).where(Event.user_id.is_not(None))
        if since is not None:
            query = query.where(Event.ts >= since)
        if until is not None:
            query = query.where(Event.ts < until)
        query = query.order_by(Event.user_id, Event.ts, Event.id).execution_options(yield_per=batch_size)
        for event in session.scalars(query):
            yield _stored(event)


def iter_user_sequences(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[int, list[StoredEvent]]]:
    """Stream `(user_id, events in time order)` for every user with events."""
    current: int | None = None
    bucket: list[StoredEvent] = []
    for event in iter_events(engine, since=since, until=until):
        if event.user_id != current and bucket:
            assert current is not None
            yield current, bucket
            bucket = []
        current = event.user_id
        bucket.append(event)
    if bucket and current is not None:
        yield current, bucket


def count_events(engine: Engine, *, kind: str | None = None) -> int:
    """How many events are stored (of one kind, if given)."""
    with unit_of_work(engine) as session:
        query = select(func.count()).select_from(Event)
        if kind is not None:
            query = query.where(Event.kind == kind)
        return int(session.scalar(query) or 0)


def rows_from_records(records: Iterable[Any], *, store_text: bool) -> list[dict[str, Any]]:
    """Insert rows from `EventRecord`s."""
    return [record.as_row(store_text=store_text) for record in records]
