"""Engine creation and units of work: how every other module reaches the database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; the busy timeout waits instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def dialect_insert(dialect: str, table: Any) -> Any:
    """An INSERT on `table` in the dialect's own construct, for `ON CONFLICT` (SQLite and PostgreSQL alike).

    Both dialects' inserts take `on_conflict_do_nothing`/`on_conflict_do_update` with the same
    arguments; the generic `sqlalchemy.insert` has neither.
    """
    if dialect == "sqlite":
        return sqlite_insert(table)
    if dialect == "postgresql":
        return postgresql_insert(table)
    raise NotImplementedError(f"unsupported database backend {dialect!r}")  # pragma: no cover


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given: it has no parsable password
        return url


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the engine for `url`; SQLite files get their directory, WAL and a busy timeout."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        }
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def check_connection(engine: Engine) -> None:
    """Fail with one clear line when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailableError(
            f"cannot connect to database {safe_url(str(engine.url))}: {reason}"
        ) from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker whose objects stay readable after commit (they are handed to callers)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Session]:
    """One read-only transaction in which every query sees the same committed state.

    A planner that reads users, pushes and histories in several queries must not see a push
    committed between two of them. PostgreSQL's default (READ COMMITTED) gives each statement its
    own snapshot, so this runs REPEATABLE READ; pysqlite opens no transaction for SELECTs, so on
    SQLite an explicit BEGIN holds one WAL read snapshot from the first query on. Nothing may be
    written: the transaction is always rolled back.
    """
    with Session(engine, expire_on_commit=False) as session:
        backend = engine.dialect.name
        if backend == "postgresql":
            session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
        elif backend == "sqlite":
            session.connection().exec_driver_sql("BEGIN")
        try:
            yield session
        finally:
            session.rollback()
