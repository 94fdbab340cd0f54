"""Shared CLI plumbing: settings, logging, the engine, and one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:  # the store pulls in SQLAlchemy and pandas: imported when a command needs it
    from sqlalchemy import Engine

    from store import Settings

console = Console(stderr=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print one red line to stderr and exit non-zero (no traceback for the user)."""
    # The message is plain text (it may quote user data such as "[/x]"), never markup.
    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def configure_logging(level: str) -> None:
    """Configure the root logger once, for the CLI process; the HTTP client stays quiet."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Bot API request URLs contain the token: never log them.
    for name in ("httpx", "httpcore", "telegram.request", "apscheduler.executors.default", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def get_settings(ctx: typer.Context | None = None) -> Settings:
    """The settings of this invocation (built once in the root callback)."""
    from pydantic import ValidationError

    from store import Settings, load_settings

    if ctx is not None and isinstance(ctx.obj, Settings):
        return ctx.obj
    try:
        return load_settings()
    except ValidationError as exc:
        fail(f"invalid settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")


def open_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    """Connect (one clear line when the database is down) and bring the schema up to date."""
    from store import StoreError, check_connection, create_db_engine
    from store.migrate import is_up_to_date, upgrade

    engine = create_db_engine(settings.resolved_database_url)
    try:
        check_connection(engine)
        if migrate and not is_up_to_date(engine):
            upgrade(engine)
    except StoreError as exc:
        fail(str(exc))
    return engine


@contextmanager
def engine_scope(settings: Settings, *, migrate: bool = True) -> Iterator[Engine]:
    """An engine disposed of when the command ends."""
    engine = open_engine(settings, migrate=migrate)
    try:
        yield engine
    finally:
        engine.dispose()
