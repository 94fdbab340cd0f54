"""The bot's requests: a second poller with the same token, and an API URL that is no Bot API."""

from __future__ import annotations

import asyncio
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from bot.transport import BotApiRequest
from cli import app as cli
from fakeapi import DEFAULT_TOKEN
from tests.bot.conftest import BotHarness


async def test_a_second_poller_with_the_same_token_is_one_line_and_a_back_off(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14 item 14: a standby polling with our token; PTB logged a traceback per 409."""
    caplog.set_level(logging.DEBUG)
    polls_url = f"{bot.api.base_url}{bot.api.token}/getUpdates"
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 4.0
        while loop.time() < deadline:  # each of our polls ends the bot's waiting one with 409
            async with session.post(polls_url, json={"timeout": 0.4}) as response:
                await response.read()
    request = bot.app.bot._request[0]  # the getUpdates request
    assert isinstance(request, BotApiRequest)
    assert request.conflicts >= 2
    warnings = [r for r in caplog.records if "another process is polling" in r.getMessage()]
    assert len(warnings) == 1
    assert "409" in warnings[0].getMessage() and warnings[0].exc_info is None
    tracebacks = [r for r in caplog.records if r.exc_info is not None and r.levelno >= logging.WARNING]
    assert tracebacks == []
    # The bot backed off: far fewer of its polls than of ours in those four seconds.
    assert request.conflicts <= 4


class _NotBotApi(http.server.BaseHTTPRequestHandler):
    status = 200
    body = b""
    content_type = "text/html"

    def _answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def not_bot_api() -> Iterator[tuple[type[_NotBotApi], str]]:
    """A web server that answers every request with one configurable non-Bot-API response."""

    class Handler(_NotBotApi):
        pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Handler, f"http://127.0.0.1:{server.server_address[1]}/bot"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "what"),
    [
        (200, b"<!doctype html><html><body>" + b"Welcome! " * 500 + b"</body></html>", "an HTML page"),
        (404, b"", "an empty body"),
    ],
    ids=["html-page", "empty-404"],
)
def test_run_against_a_url_that_is_no_bot_api_says_so_in_one_line(
    not_bot_api: tuple[type[_NotBotApi], str],
    tmp_path: Path,
    nlu_model_dir: Path,
    nlu_parser: Any,
    status: int,
    body: bytes,
    what: str,
) -> None:
    """Issue 14 item 16: no JSONDecodeError traceback, no page dump, no "rejected the token"."""
    handler, base_url = not_bot_api
    handler.status, handler.body = status, body
    result = CliRunner().invoke(
        cli,
        ["run"],
        env={
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE_URL": base_url,
            "RAPPORT_DATA_DIR": str(tmp_path),
            "RAPPORT_NLU_MODEL_DIR": str(nlu_model_dir),
        },
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output[-2000:]
    assert "does not answer like a Bot API server" in lines[0]
    assert base_url in lines[0] and f"HTTP {status}" in lines[0] and what in lines[0]
    assert "rejected the bot token" not in result.output
    assert DEFAULT_TOKEN not in result.output and DEFAULT_TOKEN.split(":")[1] not in result.output
    assert "Welcome!" not in result.output
