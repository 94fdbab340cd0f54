"""`TelegramSender` against the local Bot API: outcomes of each error, pacing, shared pauses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.delivery import Pacer, TelegramSender
from fakeapi import LocalBotAPI
from scheduler.sender import Button, OutgoingMessage, Sender, SendStatus


@pytest.fixture
async def tg_bot(api: LocalBotAPI) -> AsyncIterator[Bot]:
    bot = Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url)
    async with bot:
        yield bot


def _sender(bot: Bot, **kw: float) -> TelegramSender:
    return TelegramSender(
        bot,
        rate_per_s=kw.get("rate", 1000.0),
        per_chat_rate_per_s=kw.get("chat", 1000.0),
        group_rate_per_min=kw.get("group", 60_000.0),
    )


async def test_sender_satisfies_the_protocol_and_sends(api: LocalBotAPI, tg_bot: Bot) -> None:
    api.add_user(7001, "Alice")
    sender = _sender(tg_bot)
    assert isinstance(sender, Sender)
    result = await sender.send(
        OutgoingMessage(7001, "New: rapport-vision", buttons=(Button("Tell me more", "topic:models:0:x"),))
    )
    assert result.status is SendStatus.SENT
    [record] = [r for r in api.sent if r.chat_id == 7001]
    assert record.message_id == result.telegram_message_id
    assert record.reply_markup == {
        "inline_keyboard": [[{"text": "Tell me more", "callback_data": "topic:models:0:x"}]]
    }


async def test_403_is_blocked_and_400_rejected_without_raising(api: LocalBotAPI, tg_bot: Bot) -> None:
    api.add_user(7002, "Alice")
    sender = _sender(tg_bot)
    api.faults.forbidden(method="sendMessage")
    blocked = await sender.send(OutgoingMessage(7002, "hi"))
    assert blocked.status is SendStatus.BLOCKED
    assert blocked.error is not None and "blocked" in blocked.error
    api.faults.bad_request("Bad Request: message is too long", method="sendMessage")
    rejected = await sender.send(OutgoingMessage(7002, "hi"))
    assert rejected.status is SendStatus.REJECTED
    assert rejected.error == "Message is too long"


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_server_errors_are_retryable(api: LocalBotAPI, tg_bot: Bot, code: int) -> None:
    api.add_user(7003, "Alice")
    api.faults.server_error(code, method="sendMessage")
    result = await _sender(tg_bot).send(OutgoingMessage(7003, "hi"))
    assert result.status is SendStatus.RETRY
    assert result.retry_after is None


async def test_unknown_chat_is_rejected(api: LocalBotAPI, tg_bot: Bot) -> None:
    result = await _sender(tg_bot).send(OutgoingMessage(424242, "hi"))
    assert result.status is SendStatus.REJECTED


async def test_429_pauses_every_send_for_retry_after(api: LocalBotAPI, tg_bot: Bot) -> None:
    api.add_user(7004, "Alice")
    api.add_user(7005, "Bob")
    sender = _sender(tg_bot)
    api.faults.retry_after(1, method="sendMessage")
    first = await sender.send(OutgoingMessage(7004, "hi"))
    assert first.status is SendStatus.RETRY
    assert first.retry_after == 1.0
    assert 0.5 < sender.paused_for <= 1.0
    started = time.monotonic()
    second = await sender.send(OutgoingMessage(7005, "hi"))  # another chat waits too
    assert second.status is SendStatus.SENT
    assert time.monotonic() - started >= 0.8


async def test_per_chat_pacing_spaces_messages_to_one_chat(api: LocalBotAPI, tg_bot: Bot) -> None:
    api.add_user(7006, "Alice")
    sender = _sender(tg_bot, chat=10.0)
    started = time.monotonic()
    for i in range(4):
        assert (await sender.send(OutgoingMessage(7006, f"m{i}"))).status is SendStatus.SENT
    assert time.monotonic() - started >= 0.29  # 3 intervals of 0.1 s


def test_pacer_reserves_slots_at_the_rate() -> None:
    now = [100.0]
    pacer = Pacer(2.0, clock=lambda: now[0])
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]
    now[0] += 10
    assert pacer.idle()
    assert pacer.reserve() == 0.0


def test_pacer_allows_a_burst() -> None:
    now = [0.0]
    pacer = Pacer(1.0, burst=3, clock=lambda: now[0])
    assert [pacer.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_pacer_rejects_a_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate_per_s=0"):
        Pacer(0.0)


def test_group_chats_get_the_per_minute_rate(api: LocalBotAPI) -> None:
    sender = TelegramSender(Bot(api.token), group_rate_per_min=20.0, per_chat_rate_per_s=1.0)
    assert sender._chat_pacer(-100).interval == pytest.approx(3.0)
    assert sender._chat_pacer(100).interval == pytest.approx(1.0)
