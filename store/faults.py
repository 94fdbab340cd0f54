"""Which write failures are the rows' fault and which are the database's.

The event writer retries a failed batch later when the database is at fault (down,
restarting, locked, schema missing) and isolates the guilty rows when the data is (a NUL,
a number out of range, anything our own code cannot turn into a row). Raw COPY errors on
PostgreSQL come from psycopg unwrapped, so both SQLAlchemy's and the drivers' classes count.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

__all__ = ["is_row_fault"]

_ROW_FAULTS: tuple[type[BaseException], ...] = (
    DataError,
    IntegrityError,
    psycopg.DataError,
    psycopg.IntegrityError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
)
_DATABASE_FAULTS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    psycopg.Error,
    sqlite3.Error,
    OSError,
    MemoryError,
)


def is_row_fault(exc: BaseException) -> bool:
    """True when retrying the same rows can never succeed: the data is to blame.

    Errors that are not database errors at all (ValueError, UnicodeEncodeError, TypeError,
    OverflowError...) are raised while turning a row into parameters, so they are row faults
    too; SQLAlchemy's StatementError is judged by the error it wraps.
    """
    if isinstance(exc, _ROW_FAULTS):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return exc.orig is not None and is_row_fault(exc.orig)
    return not isinstance(exc, _DATABASE_FAULTS)
