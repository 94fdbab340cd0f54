"""Incoming updates: long polling, allowed_updates, webhooks and simulated user actions."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict

from fakeapi import LocalBotAPI, SimulationError, SimUser


async def test_long_poll_waits_for_an_update_and_offset_confirms(
    api: LocalBotAPI, bot: Bot, alice: SimUser
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for_request("getUpdates")
    assert not poll.done()
    api.user_says(alice, "hello")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.message.text for u in updates if u.message] == ["hello"]
    api.user_says(alice, "again")
    again = await bot.get_updates(offset=updates[-1].update_id + 1)
    assert [u.message.text for u in again if u.message] == ["again"]
    assert again[0].update_id == updates[0].update_id + 1
    assert len(api.pending_updates) == 1
    assert await bot.get_updates(offset=again[-1].update_id + 1, timeout=0) == ()
    assert api.pending_updates == []


async def test_limit_and_negative_offset(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    for i in range(5):
        api.user_says(alice, f"m{i}")
    assert [u.message.text for u in await bot.get_updates(limit=2)] == ["m0", "m1"]  # type: ignore[union-attr]
    assert [u.message.text for u in await bot.get_updates(offset=-1)] == ["m4"]  # type: ignore[union-attr]


async def test_newer_get_updates_terminates_the_older_one(api: LocalBotAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for_request("getUpdates")
    async with Bot(api.token, base_url=api.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)


async def test_default_allowed_updates_exclude_reactions_and_chat_member(
    api: LocalBotAPI, bot: Bot, alice: SimUser
) -> None:
    note = api.user_says(alice, "hi")["message"]
    api.react(alice, note, "👍")
    assert api.state.dropped_updates == 1
    await bot.get_updates(allowed_updates=Update.ALL_TYPES, offset=-1)
    api.react(alice, note, ["🔥"])
    updates = await bot.get_updates()
    reaction = updates[-1].message_reaction
    assert reaction is not None and reaction.user is not None and reaction.user.id == alice.id
    assert [r.emoji for r in reaction.old_reaction] == ["👍"]  # type: ignore[attr-defined]
    assert [r.emoji for r in reaction.new_reaction] == ["🔥"]  # type: ignore[attr-defined]
    await bot.get_updates(allowed_updates=["callback_query"], offset=updates[-1].update_id + 1)
    api.user_says(alice, "filtered out")
    assert api.pending_updates == []


async def test_callback_query_round_trip(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Pro", callback_data="plan:pro")]])
    await bot.send_message(alice.id, "Pick a plan", reply_markup=keyboard)
    api.press_button(alice, api.sent[-1], "plan:pro")
    with pytest.raises(SimulationError, match="forged=True"):
        api.press_button(alice, api.sent[-1], "plan:enterprise")
    api.press_button(alice, api.sent[-1], "plan:enterprise", forged=True)
    queries = [u.callback_query for u in await bot.get_updates() if u.callback_query]
    assert [q.data for q in queries] == ["plan:pro", "plan:enterprise"]
    assert queries[0].message is not None and queries[0].message.text == "Pick a plan"  # type: ignore[union-attr]
    assert await queries[0].answer("Done") is True
    with pytest.raises(BadRequest, match="Query is too old"):
        await queries[0].answer("twice")


async def test_poll_answers_only_for_non_anonymous_polls(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    anonymous = await bot.send_poll(alice.id, "Useful?", ["yes", "no"])
    assert anonymous.poll is not None and anonymous.poll.is_anonymous is True
    assert api.vote_poll(alice, api.sent[-1], [0]) is None
    named = await bot.send_poll(
        alice.id, "Which?", ["a", "b", "c"], is_anonymous=False, allows_multiple_answers=True
    )
    answer = api.vote_poll(alice, api.sent[-1], [0, 2])
    assert answer is not None
    updates = await bot.get_updates()
    kinds = [next(k for k in u.to_dict() if k != "update_id") for u in updates]
    assert kinds == ["poll", "poll", "poll_answer"]
    poll_answer = updates[-1].poll_answer
    assert poll_answer is not None and poll_answer.option_ids == (0, 2)
    assert poll_answer.poll_id == named.poll.id  # type: ignore[union-attr]
    stopped = await bot.stop_poll(alice.id, named.message_id)
    assert stopped.is_closed and stopped.options[2].voter_count == 1
    with pytest.raises(BadRequest, match="Poll has already been closed"):
        await bot.stop_poll(alice.id, named.message_id)
    with pytest.raises(BadRequest, match="Poll must have at least 1 option"):
        await bot.send_poll(alice.id, "Empty?", [])


async def test_group_command_mention_reply_and_service_updates(
    api: LocalBotAPI, bot: Bot, alice: SimUser
) -> None:
    await bot.get_updates(allowed_updates=Update.ALL_TYPES)
    group = api.add_chat(-100500, "supergroup", title="Users")
    channel = api.add_chat(-100600, "channel", title="News", bot_status="administrator")
    api.user_command(alice, "help", "billing", chat=group)
    api.user_mentions_bot(alice, group, "how do I rotate keys?")
    sent = await bot.send_message(group.id, "Hi all")
    api.user_replies(alice, api.sent[-1], "thanks")
    first = api.user_says(alice, "typo")["message"]
    api.user_edits(alice, first, "fixed")
    api.channel_post(channel, "release notes")
    api.user_sticker(alice)
    api.user_photo(alice, caption="screenshot")
    api.add_user(3003, "Carol")
    api.member_joins(3003, group)
    api.bot_added(group, alice, status="administrator")
    updates = await bot.get_updates()
    command = updates[0].message
    assert command is not None and command.text == "/help@rapport_bot billing"
    assert command.entities[0].type == "bot_command" and command.entities[0].offset == 0
    mention = updates[1].message
    assert mention is not None and mention.entities[0].type == "mention"
    reply = updates[2].message
    assert reply is not None and reply.reply_to_message.message_id == sent.message_id  # type: ignore[union-attr]
    assert updates[4].edited_message.text == "fixed"  # type: ignore[union-attr]
    assert updates[5].channel_post.sender_chat.id == channel.id  # type: ignore[union-attr]
    assert updates[6].message.sticker is not None and updates[6].message.text is None  # type: ignore[union-attr]
    assert updates[7].message.photo and updates[7].message.caption == "screenshot"  # type: ignore[union-attr]
    assert updates[8].message.new_chat_members[0].id == 3003  # type: ignore[union-attr]
    joined = updates[9].chat_member
    assert joined is not None
    assert (joined.old_chat_member.status, joined.new_chat_member.status) == ("left", "member")
    promoted = updates[10].my_chat_member
    assert promoted is not None and promoted.new_chat_member.status == "administrator"
    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_webhook_delivery_with_secret_and_409_for_get_updates(
    api: LocalBotAPI, bot: Bot, alice: SimUser
) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, object]]] = asyncio.Queue()
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        if fail_first[0]:
            fail_first[0] = False
            return web.Response(status=500)
        await received.put((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        api.user_says(alice, "before")
        url = f"http://127.0.0.1:{port}/hook"
        assert await bot.set_webhook(url, secret_token="s3cr3t-token", drop_pending_updates=True)
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()
        api.user_says(alice, "via webhook")
        secret, body = await asyncio.wait_for(received.get(), 5)
        assert secret == "s3cr3t-token"
        assert json.dumps(body["message"]).count("via webhook") == 1  # type: ignore[index]
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert info.last_error_message is not None and "500" in info.last_error_message
        with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
            await bot.set_webhook(url, secret_token="bad token!")
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.get_updates() == ()
    finally:
        await runner.cleanup()
