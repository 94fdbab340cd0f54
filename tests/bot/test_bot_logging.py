"""No log record carries the bot token, at DEBUG, in polling, webhook and CLI sending (issue 14, item 9)."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.app import build_application
from bot.runner import WebhookOptions, running
from cli import app as cli
from cli.common import REDACTED, TokenRedactingFilter, configure_logging
from fakeapi import LocalBotAPI

NOISY = ("httpx", "httpcore", "telegram", "telegram.request", "telegram.ext")


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG (the HTTP client's loggers included), as a handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *NOISY)}
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for each in root.handlers:
            for old in [f for f in each.filters if isinstance(f, TokenRedactingFilter)]:
                each.removeFilter(old)


def _everything_at_debug(token: str) -> None:
    configure_logging("DEBUG", secrets=[token])
    for name in ("", *NOISY):  # not even quietened loggers may leak: the filter does the work
        logging.getLogger(name).setLevel(logging.DEBUG)


def _assert_no_token(text: str, token: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = token.split(":", 1)[1]
    assert REDACTED in text  # records that carried the token were logged, redacted
    assert token not in text and secret not in text
    for record in caplog.records:
        message = record.getMessage() + (record.exc_text or "")
        assert secret not in message, record.name


async def test_polling_and_webhook_at_debug_never_log_the_token(
    api: LocalBotAPI,
    bot_engine: Engine,
    nlu_parser: Any,
    bot_settings: Callable[..., Any],
    debug_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    _everything_at_debug(api.token)
    settings = bot_settings()
    application = build_application(settings, engine=bot_engine, parser=nlu_parser)  # "Set Bot API URL"
    async with running(application):
        alice = api.add_user(8301, "Alice", language_code="en")
        api.user_command(alice, "help")
        await api.wait_for(lambda r: r.chat_id == 8301, 5.0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}/hook"
    webhook = build_application(settings, engine=bot_engine, parser=nlu_parser)
    async with running(webhook, webhook=WebhookOptions(url=url, listen="127.0.0.1", port=port)):
        bob = api.add_user(8302, "Bob", language_code="en")
        api.user_command(bob, "help")
        await api.wait_for(lambda r: r.chat_id == 8302, 5.0)
    _assert_no_token(debug_log.getvalue(), api.token, caplog)


def test_cli_sending_at_debug_never_logs_the_token(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    debug_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    events = tmp_path / "events.jsonl"
    events.write_text('{"user_id": 8401, "timestamp": "2026-01-01T00:00:00Z", "kind": "join"}\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["events", "import", str(events)]).exit_code == 0
    api = LocalBotAPI()
    api.add_user(8401, "Carol")
    with api.serve_in_thread():
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", api.token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        monkeypatch.setenv("RAPPORT_LOG_LEVEL", "DEBUG")
        _everything_at_debug(api.token)
        result = runner.invoke(cli, ["broadcast", "--segment", "all", "--text", "Hello"])
        assert result.exit_code == 0, result.output
        assert api.messages_per_chat == {8401: 1}
    assert api.token not in result.output
    _assert_no_token(debug_log.getvalue(), api.token, caplog)


def test_the_filter_redacts_arguments_tracebacks_and_token_shaped_strings() -> None:
    token_filter = TokenRedactingFilter(["s3cr3t"])
    try:
        raise ValueError("POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/x")
    except ValueError as exc:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "url %s and %s", ("s3cr3t", 1), None)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert token_filter.filter(record)
    assert record.getMessage() == f"url {REDACTED} and 1"
    assert record.exc_text is not None and "AAHdq" not in record.exc_text and REDACTED in record.exc_text
