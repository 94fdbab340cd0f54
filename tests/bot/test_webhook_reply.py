"""`bot.webhook_reply`: which call of an update is held as its answer, and which go over HTTP.

A real PTB `Bot` on `BotApiRequest` talks to the local Bot API; `capturing()` is what
`WebhookServer` wraps around `process_update`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

from bot.transport import BotApiRequest
from bot.webhook_reply import capturing, over_http
from fakeapi import LocalBotAPI

ALICE = 5001
BOB = 5002


@pytest.fixture
async def api() -> AsyncIterator[LocalBotAPI]:
    server = LocalBotAPI()
    server.add_user(ALICE, "Alice", language_code="en")
    server.add_user(BOB, "Bob", language_code="en")
    async with server:
        yield server


@pytest.fixture
async def bot(api: LocalBotAPI) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, request=BotApiRequest()) as client:
        yield client


def _texts(api: LocalBotAPI) -> list[str | None]:
    return [record.text for record in api.sent]


async def test_the_answer_is_held_as_the_reply_and_executed_only_from_the_response(
    api: LocalBotAPI, bot: Bot
) -> None:
    with capturing() as slot:
        sent = await bot.send_message(ALICE, "Hello", reply_markup=None)
    assert sent.chat.id == ALICE and sent.text == "Hello"  # a plausible Message for the handler
    assert _texts(api) == []  # nothing over HTTP
    body = slot.close()
    assert body is not None
    assert json.loads(body) == {"method": "sendMessage", "chat_id": ALICE, "text": "Hello"}
    api.execute_webhook_reply(body.encode(), "application/json")  # what Telegram does with the 200
    assert _texts(api) == ["Hello"]


async def test_concurrent_updates_each_get_their_own_reply(api: LocalBotAPI, bot: Bot) -> None:
    both_sent = asyncio.Barrier(2)

    async def update(chat_id: int, text: str) -> str | None:
        with capturing() as slot:
            await both_sent.wait()  # interleave the two updates
            await bot.send_message(chat_id, text)
            await both_sent.wait()
        return slot.close()

    alice, bob = await asyncio.gather(update(ALICE, "for Alice"), update(BOB, "for Bob"))
    assert alice is not None and bob is not None
    assert (json.loads(alice)["chat_id"], json.loads(alice)["text"]) == (ALICE, "for Alice")
    assert (json.loads(bob)["chat_id"], json.loads(bob)["text"]) == (BOB, "for Bob")
    assert _texts(api) == []


async def test_a_call_whose_result_is_needed_goes_over_http_after_the_held_one(
    api: LocalBotAPI, bot: Bot
) -> None:
    with capturing() as slot:
        await bot.send_message(ALICE, "Vote below")
        poll = await bot.send_poll(ALICE, "Which?", ["a", "b"], is_anonymous=False)  # its id is stored
        with over_http():
            kept = await bot.send_message(ALICE, "Its id is kept")
    assert poll.poll is not None and poll.message_id > 0
    assert kept.message_id > 0 and kept.message_id != poll.message_id  # real, from the server
    assert [(r.method, r.text) for r in api.sent] == [
        ("sendMessage", "Vote below"),  # sent first, so the chat shows them in the handler's order
        ("sendPoll", "Which?"),
        ("sendMessage", "Its id is kept"),
    ]
    assert slot.close() is None  # the last call was not eligible: no reply


async def test_a_second_eligible_call_sends_the_first_over_http_and_becomes_the_reply(
    api: LocalBotAPI, bot: Bot
) -> None:
    with capturing() as slot:
        await bot.send_message(ALICE, "first")
        await bot.send_message(ALICE, "second")
    assert _texts(api) == ["first"]
    assert slot.flushed == 1
    body = slot.close()
    assert body is not None and json.loads(body)["text"] == "second"
    api.execute_webhook_reply(body.encode(), "application/json")
    assert _texts(api) == ["first", "second"]


async def test_a_callback_answer_then_an_edit_holds_the_edit(api: LocalBotAPI, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("5", callback_data="r5")]])
    original = await bot.send_message(ALICE, "Rate me", reply_markup=keyboard)
    query = api.press_button(ALICE, (ALICE, original.message_id), "r5")["callback_query"]
    with capturing() as slot:
        assert await bot.answer_callback_query(query["id"])
        edited = await bot.edit_message_text("Thanks!", chat_id=ALICE, message_id=original.message_id)
    assert not isinstance(edited, bool) and edited.message_id == original.message_id
    assert [call.method for call in api.calls][-1] == "answerCallbackQuery"  # sent before the edit
    assert api.calls[-1].status == 200
    body = slot.close()
    assert body is not None
    assert json.loads(body) == {
        "method": "editMessageText",
        "chat_id": ALICE,
        "message_id": original.message_id,
        "text": "Thanks!",
    }


async def test_calls_after_the_capture_closed_and_outside_it_go_over_http(api: LocalBotAPI, bot: Bot) -> None:
    with capturing() as slot:
        pass
    assert slot.close() is None
    with capturing() as slot:
        slot.close()  # a handler task still running after its update was processed
        await bot.send_message(ALICE, "late")
    await bot.send_message(ALICE, "polling")  # long polling never captures
    assert _texts(api) == ["late", "polling"]


async def test_a_task_started_while_an_update_is_handled_sends_over_http(api: LocalBotAPI, bot: Bot) -> None:
    with capturing() as slot:
        background = asyncio.create_task(bot.send_message(BOB, "a push"))  # copies the context
        pushed = await background
        await bot.send_message(ALICE, "the answer")
    assert pushed.message_id > 0  # a real Message: the push is no answer of this update
    assert _texts(api) == ["a push"]
    body = slot.close()
    assert body is not None and json.loads(body)["text"] == "the answer"
