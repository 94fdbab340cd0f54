"""Shared CLI plumbing: settings, logging, the engine, and one-line errors."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

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


# A Telegram bot token: the bot's numeric id, a colon, and 35 URL-safe characters (no word
# boundary before it: in a URL it follows "bot").
_TOKEN_PATTERN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
REDACTED = "<bot-token>"


class TokenRedactingFilter(logging.Filter):
    """Replaces every bot token (and so every `bot<token>` URL) in a record by `<bot-token>`.

    Installed on every handler rather than by quietening chosen loggers: whichever library
    logs a Bot API URL or an error carrying one (PTB's "Set Bot API URL" at DEBUG, httpx's
    request lines, a traceback's message), the handler never writes the token. The record
    is rewritten in place (message, arguments and traceback text), so handlers later in line
    see it redacted too.

    Args:
        secrets: Exact strings to redact besides anything shaped like a token.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` without tokens."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_PATTERN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_token_filter(
    secrets: Iterable[str | None] = (), *, logger: logging.Logger | None = None
) -> TokenRedactingFilter:
    """Put one `TokenRedactingFilter` on every handler of `logger` (default: the root logger)."""
    token_filter = TokenRedactingFilter(secrets)
    for handler in (logger or logging.getLogger()).handlers:
        for old in [f for f in handler.filters if isinstance(f, TokenRedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(token_filter)
    return token_filter


def configure_logging(level: str, *, secrets: Iterable[str | None] = ()) -> None:
    """Configure the root logger once, for the CLI process: no handler ever writes a bot token.

    Args:
        secrets: The configured bot token(s), redacted even if not shaped like a token.
    """
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_token_filter(secrets)
    # Bot API request URLs contain the token: they are redacted, and noisy besides.
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
        fail("; ".join(setting_problem(error) for error in exc.errors()))


def setting_problem(error: Mapping[str, Any]) -> str:
    """One pydantic error as the operator set it: `RAPPORT_FLOOD_WINDOW_S='soon': <why>`."""
    from store.envfile import env_name
    from store.settings import Settings

    location = error.get("loc") or ("?",)
    name = str(location[0])
    field = Settings.model_fields.get(name)
    variable = env_name(name, field) if field is not None else name.upper()
    value = error.get("input")
    shown = f"={value!r:.60}" if isinstance(value, str | int | float) else ""
    return f"invalid setting {variable}{shown}: {error.get('msg', 'invalid')}"


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
