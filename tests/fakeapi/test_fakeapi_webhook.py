"""Webhook delivery as Telegram does it: concurrent, a failed update re-sent later, lost answers re-sent."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from telegram import Bot

from fakeapi import LocalBotAPI, SimUser

Answer = Callable[[dict[str, object], int], int]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[int], list[Answer]]]:
    """A webhook endpoint recording the update ids it was sent; `answer[0]` picks the status."""
    seen: list[int] = []
    answer: list[Answer] = [lambda _body, _attempt: 200]

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        update_id = int(body["update_id"])
        seen.append(update_id)
        status = answer[0](body, seen.count(update_id))
        if status == 0:  # slow: hold the connection a while
            await asyncio.sleep(0.5)
            status = 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen, answer
    finally:
        await runner.cleanup()


async def _drained(api: LocalBotAPI, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while api.pending_updates:  # noqa: ASYNC110 - the server has no event to await
            await asyncio.sleep(0.01)


async def test_a_failing_update_is_re_sent_without_holding_up_the_others(
    api: LocalBotAPI, bot: Bot, alice: SimUser, receiver: tuple[str, list[int], list[Answer]]
) -> None:
    url, seen, answer = receiver
    answer[0] = lambda body, attempt: 503 if body["update_id"] == 1 and attempt < 3 else 200
    assert await bot.set_webhook(url)
    for n in range(4):
        api.user_says(alice, f"message {n}")
    await _drained(api)
    assert seen.count(1) == 3  # two 503s, then accepted
    assert sorted(set(seen)) == [1, 2, 3, 4]
    assert seen.index(2) < seen.index(1, 1)  # the others went on while 1 waited for its retry
    assert api.state.webhook_failures == 2
    assert api.state.webhook_acked == 4
    assert (
        await bot.get_webhook_info()
    ).last_error_message == "Wrong response from the webhook: 503 Service Unavailable"


async def test_deliveries_run_concurrently_up_to_max_connections(
    api: LocalBotAPI, bot: Bot, alice: SimUser, receiver: tuple[str, list[int], list[Answer]]
) -> None:
    url, seen, answer = receiver
    answer[0] = lambda _body, _attempt: 0  # every answer takes 0.5 s
    assert await bot.set_webhook(url, max_connections=4)
    for n in range(8):
        api.user_says(alice, f"message {n}")
    started = asyncio.get_running_loop().time()
    await _drained(api)
    elapsed = asyncio.get_running_loop().time() - started
    assert sorted(seen) == list(range(1, 9))
    assert 0.9 < elapsed < 3.0  # two rounds of four: not all at once (0.5 s) nor one by one (4 s)


async def test_every_nth_acknowledged_update_is_sent_once_more(
    api: LocalBotAPI, bot: Bot, alice: SimUser, receiver: tuple[str, list[int], list[Answer]]
) -> None:
    url, seen, _answer = receiver
    api.state.webhook_redeliver_every = 2
    assert await bot.set_webhook(url, max_connections=1)
    for n in range(4):
        api.user_says(alice, f"message {n}")
    await _drained(api)
    await asyncio.sleep(0.1)
    assert len(seen) == 6
    assert api.state.webhook_redelivered == 2
    assert sorted(update_id for update_id in set(seen) if seen.count(update_id) == 2) == [2, 4]


@pytest.fixture
async def replying_receiver() -> AsyncIterator[tuple[str, list[int], list[tuple[int, bytes, str]]]]:
    """A webhook endpoint answering `reply[0]` = (status, body, content type) to every update."""
    seen: list[int] = []
    reply: list[tuple[int, bytes, str]] = [(200, b"", "text/plain")]

    async def hook(request: web.Request) -> web.Response:
        seen.append(int((await request.json())["update_id"]))
        status, body, content_type = reply[0]
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen, reply
    finally:
        await runner.cleanup()


async def test_a_method_in_a_2xx_response_body_is_executed_like_a_call(
    api: LocalBotAPI,
    bot: Bot,
    alice: SimUser,
    replying_receiver: tuple[str, list[int], list[tuple[int, bytes, str]]],
) -> None:
    url, seen, reply = replying_receiver
    body = json.dumps({"method": "sendMessage", "chat_id": alice.id, "text": "Answered in the response"})
    reply[0] = (200, body.encode(), "application/json")
    assert await bot.set_webhook(url)
    api.user_says(alice, "hello")
    await _drained(api)
    await asyncio.sleep(0.05)
    assert seen == [1]
    assert [(r.chat_id, r.text) for r in api.sent] == [(alice.id, "Answered in the response")]
    call = api.calls[-1]
    assert (call.method, call.status, call.params["text"]) == ("sendMessage", 200, "Answered in the response")


async def test_a_reply_in_a_failed_or_lost_answer_is_not_executed_and_the_re_sent_one_is(
    api: LocalBotAPI,
    bot: Bot,
    alice: SimUser,
    replying_receiver: tuple[str, list[int], list[tuple[int, bytes, str]]],
) -> None:
    url, seen, reply = replying_receiver
    body = json.dumps({"method": "sendMessage", "chat_id": alice.id, "text": "once"}).encode()
    reply[0] = (503, body, "application/json")  # Telegram executes only what a 2xx carries
    assert await bot.set_webhook(url, max_connections=1)
    api.user_says(alice, "hello")
    while len(seen) < 2:  # noqa: ASYNC110 - the server has no event to await
        await asyncio.sleep(0.01)
    assert [r.text for r in api.sent] == []
    api.state.webhook_redeliver_every = 1  # the next 2xx "gets lost": the update is sent once more
    reply[0] = (200, body, "application/json")
    await _drained(api)
    await asyncio.sleep(0.05)
    assert api.state.webhook_redelivered == 1
    assert [r.text for r in api.sent] == ["once"]  # from the re-sent delivery's answer only


@pytest.mark.parametrize(
    ("body", "content_type", "logged"),
    [
        (b'{"method": "sendMessage", "chat_id": 1001, "text": "x"}', "text/plain", "Content-Type"),
        (b"{not json", "application/json", "not JSON"),
        (b'{"chat_id": 1001, "text": "x"}', "application/json", "no known Bot API method"),
        (b'{"method": "launchRocket"}', "application/json", "no known Bot API method"),
        (b'{"method": "sendMessage", "chat_id": 1001}', "application/json", "failed"),
    ],
)
async def test_an_invalid_reply_body_is_ignored_and_logged(
    api: LocalBotAPI,
    bot: Bot,
    alice: SimUser,
    replying_receiver: tuple[str, list[int], list[tuple[int, bytes, str]]],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str,
    logged: str,
) -> None:
    url, seen, reply = replying_receiver
    reply[0] = (200, body, content_type)
    assert await bot.set_webhook(url)
    api.user_says(alice, "hello")
    with caplog.at_level(logging.WARNING, logger="fakeapi.server"):
        await _drained(api)
        await asyncio.sleep(0.05)
    assert seen == [1]  # acknowledged all the same
    assert [r.text for r in api.sent] == []
    assert any("webhook reply" in r.getMessage() and logged in r.getMessage() for r in caplog.records)
