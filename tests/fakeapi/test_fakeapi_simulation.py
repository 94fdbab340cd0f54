"""Simulation input checks, strict webhooks and synchronous use from plain threads."""

from __future__ import annotations

import httpx
import pytest
from telegram import Bot
from telegram.error import BadRequest

from fakeapi import LocalBotAPI, SimulationError, SimUser


def test_simulation_rejects_impossible_input() -> None:
    api = LocalBotAPI()
    with pytest.raises(SimulationError, match="positive"):
        api.add_user(-1, "Nobody")
    with pytest.raises(SimulationError, match="negative"):
        api.add_chat(5, "group")
    with pytest.raises(SimulationError, match="'private'"):
        api.add_chat(-5, "private")
    with pytest.raises(SimulationError, match="unknown user 42"):
        api.user_says(42, "hi")
    user = api.add_user(7, "Seven")
    with pytest.raises(SimulationError, match="empty"):
        api.user_says(user, "")
    with pytest.raises(SimulationError, match="no message 99"):
        api.user_replies(user, (7, 99), "hi")
    note = api.user_says(user, "mine")["message"]
    with pytest.raises(SimulationError, match="bot messages"):
        api.press_button(user, note, "x", forged=True)
    with pytest.raises(SimulationError, match="no poll"):
        api.vote_poll(user, note, [0])
    with pytest.raises(ValueError, match="is_bot"):
        LocalBotAPI(bot_user=SimUser(1, "Human"))


def test_update_ids_increase_and_entities_are_detected() -> None:
    api = LocalBotAPI()
    user = api.add_user(7, "Seven")
    first = api.user_says(user, "/price@rapport_bot see https://x.io or mail a@b.io #billing")
    second = api.user_sticker(user)
    assert second["update_id"] == first["update_id"] + 1
    kinds = [e["type"] for e in first["message"]["entities"]]
    assert kinds == ["bot_command", "url", "email", "hashtag"]
    assert "text" not in second["message"] and second["message"]["sticker"]["type"] == "regular"


def test_serve_in_thread_for_synchronous_code() -> None:
    api = LocalBotAPI()
    user = api.add_user(7, "Seven")
    with api.serve_in_thread() as running, httpx.Client() as client:
        url = f"{running.base_url}{running.token}"
        assert client.get(f"{url}/getMe").json()["result"]["is_bot"] is True
        client.post(f"{url}/sendMessage", json={"chat_id": user.id, "text": "sync"})
        record = running.wait_for_blocking(lambda r: r.text == "sync", timeout=2)
        assert record.chat_id == user.id
        assert running.base_file_url.endswith("/file/bot")
        running.files["docs/a.txt"] = b"hello"
        assert client.get(f"{running.base_file_url}{running.token}/docs/a.txt").content == b"hello"
        assert client.get(f"{running.base_file_url}{running.token}/docs/b.txt").status_code == 404
    with pytest.raises(RuntimeError, match="not running"):
        _ = api.port


async def test_strict_webhooks_follow_telegram_rules() -> None:
    async with LocalBotAPI(strict_webhooks=True) as api, Bot(api.token, base_url=api.base_url) as bot:
        with pytest.raises(BadRequest, match=r"(?i)an https url must be provided"):
            await bot.set_webhook("http://example.org/hook")
        with pytest.raises(BadRequest, match="ports 80, 88, 443 or 8443"):
            await bot.set_webhook("https://example.org:9000/hook")
        assert await bot.set_webhook("https://example.org:8443/hook", allowed_updates=["message"])
        info = await bot.get_webhook_info()
        assert info.url == "https://example.org:8443/hook" and info.allowed_updates == ("message",)
