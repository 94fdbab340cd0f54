"""`TelegramSender` against the local Bot API: outcomes of each error, pacing, shared pauses."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from telegram.ext import ExtBot

from bot.delivery import TelegramSender
from bot.outbound import OutboundLimiter, Pacer
from bot.transport import BotApiRequest
from fakeapi import LocalBotAPI
from scheduler.sender import Button, OutgoingMessage, Sender, SendStatus, UrlButton
from store import load_settings


def _settings(api: LocalBotAPI, **kw: Any) -> Any:
    return load_settings(
        telegram_bot_token=api.token,
        telegram_api_base_url=kw.pop("base_url", api.base_url),
        telegram_api_file_url=api.base_file_url,
        send_rate_per_s=kw.get("rate", 1000.0),
        per_chat_rate_per_s=kw.get("chat", 1000.0),
        group_rate_per_min=kw.get("group", 60_000.0),
    )


@pytest.fixture
async def make_sender(api: LocalBotAPI) -> AsyncIterator[Callable[..., Awaitable[TelegramSender]]]:
    """Open senders with a bot of their own (fast limits unless given), closed after the test."""
    opened: list[TelegramSender] = []

    async def make(**kw: Any) -> TelegramSender:
        sender = TelegramSender.from_settings(_settings(api, **kw))
        await sender.__aenter__()
        opened.append(sender)
        return sender

    yield make
    for sender in opened:
        await sender.__aexit__(None, None, None)


async def test_sender_satisfies_the_protocol_and_sends(api: LocalBotAPI, make_sender: Any) -> None:
    api.add_user(7001, "Alice")
    sender = await make_sender()
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


async def test_html_and_url_button_rows_reach_telegram(api: LocalBotAPI, make_sender: Any) -> None:
    api.add_user(7010, "Alice")
    sender = await make_sender()
    rows = ((UrlButton("Docs", "https://example.com/d"), UrlButton("Chat", "tg://resolve?domain=x")),)
    result = await sender.send(
        OutgoingMessage(7010, "Hi <b>all</b> &amp; more", parse_mode="HTML", url_buttons=rows)
    )
    assert result.status is SendStatus.SENT
    [record] = [r for r in api.sent if r.chat_id == 7010]
    assert record.text == "Hi all & more"  # Telegram parsed the HTML
    assert record.message["entities"] == [{"type": "bold", "offset": 3, "length": 3}]
    assert record.reply_markup == {
        "inline_keyboard": [
            [
                {"text": "Docs", "url": "https://example.com/d"},
                {"text": "Chat", "url": "tg://resolve?domain=x"},
            ]
        ]
    }
    plain = await sender.send(OutgoingMessage(7010, "1 < 2 <b>"))
    assert plain.status is SendStatus.SENT
    assert [r.text for r in api.sent if r.chat_id == 7010][-1] == "1 < 2 <b>"  # no parse mode: as typed


async def test_403_is_blocked_and_400_rejected_without_raising(api: LocalBotAPI, make_sender: Any) -> None:
    api.add_user(7002, "Alice")
    sender = await make_sender()
    api.faults.forbidden(method="sendMessage")
    blocked = await sender.send(OutgoingMessage(7002, "hi"))
    assert blocked.status is SendStatus.BLOCKED
    assert blocked.error is not None and "blocked" in blocked.error
    api.faults.bad_request("Bad Request: message is too long", method="sendMessage")
    rejected = await sender.send(OutgoingMessage(7002, "hi"))
    assert rejected.status is SendStatus.REJECTED
    assert rejected.error == "Message is too long"


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_server_errors_are_retryable(api: LocalBotAPI, make_sender: Any, code: int) -> None:
    api.add_user(7003, "Alice")
    api.faults.server_error(code, method="sendMessage")
    result = await (await make_sender()).send(OutgoingMessage(7003, "hi"))
    assert result.status is SendStatus.RETRY
    assert result.retry_after is None


async def test_unknown_chat_is_rejected(api: LocalBotAPI, make_sender: Any) -> None:
    result = await (await make_sender()).send(OutgoingMessage(424242, "hi"))
    assert result.status is SendStatus.REJECTED


async def test_429_pauses_every_send_for_retry_after(api: LocalBotAPI, make_sender: Any) -> None:
    api.add_user(7004, "Alice")
    api.add_user(7005, "Bob")
    sender = await make_sender()
    api.faults.retry_after(1, method="sendMessage")
    first = await sender.send(OutgoingMessage(7004, "hi"))
    assert first.status is SendStatus.RETRY
    assert first.retry_after == 1.0
    assert 0.5 < sender.paused_for <= 1.0
    started = time.monotonic()
    second = await sender.send(OutgoingMessage(7005, "hi"))  # another chat waits too
    assert second.status is SendStatus.SENT
    assert time.monotonic() - started >= 0.8


async def test_per_chat_pacing_spaces_messages_to_one_chat(api: LocalBotAPI, make_sender: Any) -> None:
    api.add_user(7006, "Alice")
    sender = await make_sender(chat=10.0)
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
    sender = TelegramSender.from_settings(_settings(api, group=20.0, chat=1.0))
    assert sender.limiter._chat_pacer(-100).interval == pytest.approx(3.0)
    assert sender.limiter._chat_pacer(100).interval == pytest.approx(1.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_read_error_after_the_request_was_written_is_ambiguous(
    api: LocalBotAPI, make_sender: Any
) -> None:
    """Item 1's mechanism: the client closes while the answer is on its way; the user got it."""
    api.add_user(7010, "Alice")
    api.latency = 0.6
    sender = await make_sender()
    sending = asyncio.create_task(sender.send(OutgoingMessage(7010, "hi")))
    await api.wait_for(lambda r: r.chat_id == 7010, 5.0)  # delivered; the answer is 0.3 s away
    await sender.bot.shutdown()  # what an early shutdown did to the send in flight
    result = await sending
    assert result.status is SendStatus.AMBIGUOUS
    assert result.error is not None and "ReadError" in result.error
    assert api.messages_per_chat == {7010: 1}


async def test_a_read_timeout_is_ambiguous(api: LocalBotAPI) -> None:
    api.add_user(7011, "Alice")
    bot: ExtBot[Any] = ExtBot(
        api.token,
        base_url=api.base_url,
        request=BotApiRequest(read_timeout=0.2),
        rate_limiter=OutboundLimiter(),
    )
    async with TelegramSender(bot, owns_bot=True) as sender:
        api.latency = 1.0
        result = await sender.send(OutgoingMessage(7011, "hi"))
    assert result.status is SendStatus.AMBIGUOUS
    await asyncio.sleep(0.6)
    assert api.messages_per_chat == {7011: 1}  # it did arrive


async def test_a_connect_error_never_sent_anything_and_is_retried(api: LocalBotAPI) -> None:
    nowhere = f"http://127.0.0.1:{_free_port()}/bot"
    sender = TelegramSender.from_settings(_settings(api, base_url=nowhere))
    await sender.bot.request.initialize()  # get_me would fail: open only the HTTP client
    try:
        result = await sender.send(OutgoingMessage(7012, "hi"))
    finally:
        await sender.bot.request.shutdown()
    assert result.status is SendStatus.RETRY
    assert result.error is not None and "ConnectError" in result.error


async def test_a_closed_client_is_retried_not_ambiguous(api: LocalBotAPI, make_sender: Any) -> None:
    api.add_user(7013, "Alice")
    sender = await make_sender()
    await sender.bot.shutdown()
    result = await sender.send(OutgoingMessage(7013, "hi"))
    assert result.status is SendStatus.RETRY
    assert api.messages_per_chat == {}


def test_the_sender_needs_the_outbound_limiter(api: LocalBotAPI) -> None:
    with pytest.raises(ValueError, match="OutboundLimiter"):
        TelegramSender(ExtBot(api.token))
