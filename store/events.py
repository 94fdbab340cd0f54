"""The append-only interaction log: bulk inserts, per-user time-ordered reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.db import unit_of_work
from store.models import Event, User

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("user_id", "chat_id", "ts", "kind", "intent", "confidence", "text", "attributes")


def _sqlite_ts(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text form, so raw and ORM writes sort the same."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is C code: much faster than strftime on the bulk-import path.
    return value.isoformat(sep=" ", timespec="microseconds")[:26]


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
        raw: Any = connection.connection.dbapi_connection
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
    """Create missing users and widen first/last seen, in one upsert for the whole batch."""
    users: Any = User.__table__
    backend = connection.dialect.name
    if backend == "sqlite":
        statement: Any = sqlite_insert(users)
        earliest: Any = func.min
        latest: Any = func.max
    elif backend == "postgresql":
        statement = postgresql_insert(users)
        earliest, latest = func.least, func.greatest
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database backend {backend!r}")
    statement = statement.on_conflict_do_update(
        index_elements=[users.c.id],
        set_={
            "first_seen": earliest(users.c.first_seen, statement.excluded.first_seen),
            "last_seen": latest(users.c.last_seen, statement.excluded.last_seen),
        },
    )
    if not spans:  # a batch of events without users (e.g. channel posts) has nobody to upsert
        return
    # Sorted ids keep concurrent writers from deadlocking on PostgreSQL.
    rows = [
        {"id": user_id, "first_seen": first, "last_seen": last, "opted_out": False, "blocked": False}
        for user_id, (first, last) in sorted(spans.items())
    ]
    connection.execute(statement, rows)


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
        span = spans.get(user_id)
        if span is None:
            spans[user_id] = (ts, ts)
        elif ts < span[0]:
            spans[user_id] = (ts, span[1])
        elif ts > span[1]:
            spans[user_id] = (span[0], ts)
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
