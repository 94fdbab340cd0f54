"""`rapport run`: start-up failures in one line, signals, and the verified webhook."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.app import build_application
from bot.runner import WebhookOptions, running
from bot.webhook import SECRET_HEADER
from cli import app as cli
from fakeapi import LocalBotAPI
from store import count_events, create_db_engine, user_events

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_without_token_fails_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run"], env={"RAPPORT_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "TELEGRAM_BOT_TOKEN is not set" in lines[0]


def test_run_with_a_rejected_token_fails_in_one_line_without_the_token(tmp_path: Path) -> None:
    api = LocalBotAPI()
    wrong = "987654321:AAWrongWrongWrongWrongWrongWrongWro"
    with api.serve_in_thread():
        result = CliRunner().invoke(
            cli,
            ["run"],
            env={
                "TELEGRAM_BOT_TOKEN": wrong,
                "TELEGRAM_API_BASE_URL": api.base_url,
                "TELEGRAM_API_FILE_URL": api.base_file_url,
                "RAPPORT_DATA_DIR": str(tmp_path),
            },
        )
    assert result.exit_code == 1
    assert "Telegram rejected the bot token" in result.output
    assert wrong not in result.output
    assert "AAWrong" not in result.output


@pytest.mark.slow
def test_run_serves_and_stops_cleanly_on_sigterm(
    tmp_path: Path, nlu_model_dir: Path, nlu_parser: Any
) -> None:
    api = LocalBotAPI()
    with api.serve_in_thread():
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RAPPORT_", "TELEGRAM_"))},
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.base_url,
            "TELEGRAM_API_FILE_URL": api.base_file_url,
            "RAPPORT_DATA_DIR": str(tmp_path),
            "RAPPORT_LOG_LEVEL": "INFO",
            "RAPPORT_NLU_MODEL_DIR": str(nlu_model_dir),  # trained by the nlu_parser fixture
        }
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli import main; main()", "run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            for _ in range(120):  # start-up imports and trains the NLU: allow a minute, fail fast on exit
                if api.state.allowed_updates is not None or process.poll() is not None:
                    break
                time.sleep(0.5)
            assert process.poll() is None, process.communicate()[0]
            alice = api.add_user(8001, "Alice", language_code="en")
            api.user_command(alice, "start")
            api.wait_for_blocking(lambda r: r.chat_id == 8001, timeout=20)
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, output
    assert api.token not in output
    assert api.token.split(":", 1)[1] not in output
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    try:
        assert [e.kind for e in user_events(engine, 8001)] == ["command"]
    finally:
        engine.dispose()


async def test_webhook_verifies_the_secret_token(
    api: LocalBotAPI,
    bot_engine: Engine,
    nlu_parser: Any,
    bot_settings: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = bot_settings()
    application = build_application(settings, engine=bot_engine, parser=nlu_parser)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    options = WebhookOptions(url=url, listen="127.0.0.1", port=port, secret_token="s3cret-token")
    caplog.set_level(logging.WARNING, logger="bot.webhook")
    async with running(application, webhook=options):
        assert api.state.webhook is not None
        assert api.state.webhook.url == url
        assert api.state.webhook.secret_token == "s3cret-token"
        alice = api.add_user(8002, "Alice", language_code="en")
        api.user_command(alice, "help")
        reply = await api.wait_for(lambda r: r.chat_id == 8002, 5.0)
        assert reply.text is not None and reply.text.startswith("Just write your question")
        async with aiohttp.ClientSession() as session:
            forged = {
                "update_id": 999,
                "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
            }
            async with session.post(url, json=forged) as missing:
                assert missing.status == 403
            async with session.post(url, json=forged, headers={SECRET_HEADER: "guess"}) as wrong:
                assert wrong.status == 403
        await asyncio.sleep(0.1)
    assert sum("rejected with 403" in r.message for r in caplog.records) == 2
    assert count_events(bot_engine) == 1  # only the genuine /help


def test_run_rejects_a_webhook_that_is_not_a_url(
    tmp_path: Path, nlu_model_dir: Path, nlu_parser: Any
) -> None:
    api = LocalBotAPI()
    with api.serve_in_thread():
        result = CliRunner().invoke(
            cli,
            ["run", "--webhook", "example.org/hook"],
            env={
                "TELEGRAM_BOT_TOKEN": api.token,
                "TELEGRAM_API_BASE_URL": api.base_url,
                "RAPPORT_DATA_DIR": str(tmp_path),
                "RAPPORT_NLU_MODEL_DIR": str(nlu_model_dir),
            },
        )
    assert result.exit_code == 1
    assert "--webhook must be a URL, got 'example.org/hook'" in result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://bot.example.org/hook", "must be an https:// URL (Telegram posts webhooks over HTTPS only)"),
        ("https://bot.example.org:8080/hook", "port 8080 is not one Telegram posts to (443, 80, 88, 8443)"),
        ("https://bot.example.org:99999/hook", "invalid port"),
    ],
)
def test_run_refuses_webhook_urls_telegram_would_refuse(
    url: str, says: str, tmp_path: Path, nlu_model_dir: Path, nlu_parser: Any
) -> None:
    result = CliRunner().invoke(
        cli,
        ["run", "--webhook", url],
        env={
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "RAPPORT_DATA_DIR": str(tmp_path),
            "RAPPORT_NLU_MODEL_DIR": str(nlu_model_dir),
        },
    )
    assert result.exit_code == 1
    assert says in result.output
    assert "Traceback" not in result.output


async def test_webhook_answers_400_to_hostile_bodies_and_keeps_serving(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    """Issue 14 item 13: a 100,000-deep JSON body (RecursionError) is a bad request, not a 500."""
    application = build_application(bot_settings(), engine=bot_engine, parser=nlu_parser)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    options = WebhookOptions(url=url, listen="127.0.0.1", port=port, secret_token="s3cret-token")
    deep = "[" * 100_000 + "]" * 100_000
    deep_object = '{"update_id": 1, "message": ' + "{" * 1 + '"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    headers = {SECRET_HEADER: "s3cret-token", "Content-Type": "application/json"}
    async with running(application, webhook=options):
        async with aiohttp.ClientSession() as session:
            for body in (deep, deep_object, "not json", "[1, 2]", '"text"'):
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == 400, body[:20]
        alice = api.add_user(8003, "Alice", language_code="en")
        api.user_command(alice, "help")
        reply = await api.wait_for(lambda r: r.chat_id == 8003, 5.0)
        assert reply.text is not None and reply.text.startswith("Just write your question")
