"""The append-only interaction log: bulk inserts, per-user time-ordered reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from store.db import unit_of_work
from store.models import Event, User
from store.records import EventRecord
from store.sanitize import storable_json, storable_text

logger = logging.getLogger(__name__)


def _sqlite_ts(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text form, so raw and ORM writes sort the same."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is C code: much faster than strftime on the bulk-import path.
    return value.isoformat(sep=" ", timespec="microseconds")[:26]


_EVENTS: Any = Event.__table__
_KIND_LENGTH: int = _EVENTS.c.kind.type.length
_INTENT_LENGTH: int = _EVENTS.c.intent.type.length


def _params(record: EventRecord) -> tuple[Any, ...]:
    """The column values of one record, cleaned so that no backend refuses them.

    This is the store boundary for the log: text PostgreSQL cannot hold (NUL, lone
    surrogates) is cleaned here, and kind and intent are cut to their columns' lengths.
    """
    return (
        record.user_id,
        record.chat_id,
        record.ts,
        storable_text(record.kind, limit=_KIND_LENGTH),
        storable_text(record.intent, limit=_INTENT_LENGTH),
        record.confidence,
        storable_text(record.text),
        storable_json(record.attributes),
        record.update_id,
    )


def _insert_rows(connection: Connection, records: Sequence[EventRecord]) -> None:
    """Insert event records on an open transaction, by each backend's fastest path.

    SQLite gets DB-API executemany, PostgreSQL COPY: imports and the bot's buffered
    writer both go through here.
    """
    backend = connection.dialect.name
    if backend == "sqlite":
        params = []
        for record in records:
            values = _params(record)
            params.append((*values[:2], _sqlite_ts(record.ts), *values[3:]))
        connection.exec_driver_sql(
            "INSERT INTO events (user_id, chat_id, ts, kind, intent, confidence, text, attributes, update_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params,  # type: ignore[arg-type]
        )
    elif backend == "postgresql":
        raw: Any = connection.connection.dbapi_connection
        assert raw is not None
        with (
            raw.cursor() as cursor,
            cursor.copy(  # type: ignore[attr-defined]
                "COPY events (user_id, chat_id, ts, kind, intent, confidence, text, attributes, update_id)"
                " FROM STDIN"
            ) as copy,
        ):
            for record in records:
                copy.write_row(_params(record))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database backend {backend!r}")


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


def insert_records(connection: Connection, records: Sequence[EventRecord]) -> int:
    """Insert event records and their users on an open transaction (for atomic imports)."""
    if not records:
        return 0
    spans: dict[int, tuple[datetime, datetime]] = {}
    for record in records:
        user_id = record.user_id
        if user_id is None:
            continue
        ts = record.ts
        span = spans.get(user_id)
        if span is None:
            spans[user_id] = (ts, ts)
        elif ts < span[0]:
            spans[user_id] = (ts, span[1])
        elif ts > span[1]:
            spans[user_id] = (span[0], ts)
    _ensure_users(connection, spans)
    _insert_rows(connection, records)
    return len(records)


def append_events(engine: Engine, records: Sequence[EventRecord]) -> int:
    """Insert events (`ts` UTC-aware) and create or widen their users, atomically."""
    if not records:
        return 0
    with engine.begin() as connection:
        return insert_records(connection, records)


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
    update_id: int | None = None


SEQUENCE_ORDER: tuple[Any, ...] = (Event.ts, Event.update_id.asc().nulls_first(), Event.id)
"""How one user's events are ordered: time, then Telegram's update order, then insertion.

Replicas stamp the events of an update with Telegram's time of it in whole seconds (see
`bot.replicas`), so two updates of one user handled by two replicas in the other order share
a timestamp and their `update_id` puts them back in Telegram's order; `id` (insertion order)
only decides among the events of one update, or those without one. NULLs are put first on
both backends (SQLite and PostgreSQL disagree by default). The `(user_id, ts)` index still
does the work: only events with equal timestamps are sorted further.
"""
SEQUENCE_ORDER_DESC: tuple[Any, ...] = (Event.ts.desc(), Event.update_id.desc().nulls_last(), Event.id.desc())
"""`SEQUENCE_ORDER` reversed (the latest first)."""


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
        update_id=event.update_id,
    )


def user_events(engine: Engine, user_id: int, *, limit: int | None = None) -> list[StoredEvent]:
    """One user's events in time order (their interaction sequence); the latest `limit`."""
    with unit_of_work(engine) as session:
        query = select(Event).where(Event.user_id == user_id)
        if limit is not None:
            latest = list(session.scalars(query.order_by(*SEQUENCE_ORDER_DESC).limit(limit)))
            return [_stored(e) for e in reversed(latest)]
        return [_stored(e) for e in session.scalars(query.order_by(*SEQUENCE_ORDER))]


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
        query = query.order_by(Event.user_id, *SEQUENCE_ORDER).execution_options(yield_per=batch_size)
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
