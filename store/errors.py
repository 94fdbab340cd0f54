"""Errors raised by the store.

StoreError(Exception)
├── DatabaseUnavailableError   the database cannot be reached or opened
├── EventLogBehindError        the event writer did not catch up in time (forget refused)
└── ImportFileError(ValueError) an import file has bad rows (each listed)
"""

from __future__ import annotations

from dataclasses import dataclass


class StoreError(Exception):
    """Base of the store's errors; catch this at the CLI or bot boundary."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached; the message says which URL (password hidden)."""


class EventLogBehindError(StoreError):
    """Events logged earlier are not in the database yet, so acting on the log now would miss them.

    Forgetting a user is refused with this rather than done early: an event of theirs that
    landed after the delete would bring them back.
    """


@dataclass(frozen=True)
class BadRow:
    """One rejected line of an import file."""

    line: int
    reason: str


class ImportFileError(StoreError, ValueError):
    """An import file was rejected; `bad_rows` lists every bad line and why."""

    def __init__(self, path: str, bad_rows: list[BadRow], *, detail: str | None = None) -> None:
        self.path = path
        self.bad_rows = bad_rows
        lines = ", ".join(f"line {row.line}: {row.reason}" for row in bad_rows[:20])
        more = f" (and {len(bad_rows) - 20} more)" if len(bad_rows) > 20 else ""
        summary = detail or f"{len(bad_rows)} bad row(s): {lines}{more}"
        super().__init__(f"{path}: {summary}")
