"""Bot API methods driven through a real PTB Bot: answers, records and errors."""

from __future__ import annotations

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReactionTypeEmoji
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter

from fakeapi import LocalBotAPI, RateLimits, SimUser


async def test_get_me_returns_the_bot_user(api: LocalBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == api.bot.id and me.is_bot and me.username == "rapport_bot"
    assert me.can_join_groups is True


async def test_send_message_is_recorded_with_markup_and_reply(
    api: LocalBotAPI, bot: Bot, alice: SimUser
) -> None:
    incoming = api.user_says(alice, "question?")["message"]
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    sent = await bot.send_message(
        alice.id,
        "<b>Answer</b>",
        parse_mode="HTML",
        reply_markup=keyboard,
        reply_to_message_id=incoming["message_id"],
        disable_notification=True,
    )
    assert sent.text == "Answer" and sent.entities[0].type == "bold"
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.message_id == incoming["message_id"]
    assert sent.reply_markup == keyboard
    record = api.sent[-1]
    assert (record.method, record.chat_id, record.message_id) == ("sendMessage", alice.id, sent.message_id)
    assert record.text == "Answer"
    assert record.reply_markup == {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    assert api.messages_per_chat == {alice.id: 1}


@pytest.mark.parametrize(
    ("kwargs", "description"),
    [
        ({"chat_id": 1001, "text": "   "}, "Message text is empty"),
        ({"chat_id": 999, "text": "hi"}, "Chat not found"),
        ({"chat_id": 1001, "text": "x" * 4097}, "Message is too long"),
        ({"chat_id": 1001, "text": "1.5", "parse_mode": "MarkdownV2"}, "Can't parse entities"),
        ({"chat_id": 1001, "text": "hi", "reply_to_message_id": 77}, "Message to be replied not found"),
    ],
)
async def test_send_message_bad_requests(bot: Bot, kwargs: dict[str, object], description: str) -> None:
    with pytest.raises(BadRequest, match=description):
        await bot.send_message(**kwargs)  # type: ignore[arg-type]


async def test_long_text_limit_counts_after_parsing(bot: Bot, alice: SimUser) -> None:
    sent = await bot.send_message(alice.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert len(sent.text or "") == 4096


async def test_inline_button_without_action_is_rejected(api: LocalBotAPI, bot: Bot) -> None:
    async with httpx.AsyncClient() as client:
        body = {"chat_id": 1001, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "A"}]]}}
        answer = (await client.post(f"{api.base_url}{api.token}/sendMessage", json=body)).json()
    assert answer["ok"] is False and answer["error_code"] == 400
    assert "Text buttons are unallowed in the inline keyboard" in answer["description"]
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="x" * 65)]])
        await bot.send_message(1001, "x", reply_markup=markup)


async def test_unknown_token_method_and_transport_variants(api: LocalBotAPI) -> None:
    async with httpx.AsyncClient() as client:
        bad = await client.get(f"{api.base_url}1:wrong/getMe")
        assert bad.status_code == 401
        assert bad.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        missing = await client.post(f"{api.base_url}{api.token}/sendSticker", json={})
        assert missing.status_code == 404
        assert missing.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        by_get = await client.get(f"{api.base_url}{api.token}/GETME")
        assert by_get.json()["result"]["id"] == api.bot.id
        form = await client.post(
            f"{api.base_url}{api.token}/sendmessage",
            data={"chat_id": "1001", "text": "form", "reply_markup": '{"inline_keyboard": []}'},
        )
        assert form.json()["result"]["text"] == "form"
        multipart = await client.post(
            f"{api.base_url}{api.token}/sendMessage",
            data={"chat_id": "1001", "text": "multi"},
            files={"dummy": ("a.txt", b"x")},
        )
        assert multipart.json()["result"]["text"] == "multi"
        query = await client.get(f"{api.base_url}{api.token}/sendMessage?chat_id=1001&text=q")
        assert query.json()["result"]["text"] == "q"
        broken = await client.post(
            f"{api.base_url}{api.token}/getMe",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert broken.status_code == 400 and broken.json()["description"].startswith("Bad Request: ")
        nowhere = await client.get(f"http://127.0.0.1:{api.port}/elsewhere")
        assert nowhere.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert [c.method for c in api.calls][:2] == ["getMe", "sendSticker"]
    assert api.calls[0].status == 401


async def test_ptb_sees_invalid_token(api: LocalBotAPI) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("42:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", base_url=api.base_url):
            pass


async def test_injected_faults_map_to_ptb_errors(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    api.faults.retry_after(7, method="sendMessage")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(alice.id, "hi")
    assert info.value.retry_after == 7
    api.faults.forbidden(chat_ids=[alice.id])
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "hi")
    api.faults.server_error(502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.get_me()
    api.faults.delay(0.2, method="getMe")
    assert (await bot.get_me()).id == api.bot.id
    assert api.rate_limited_count == 1
    assert len(api.sent) == 0
    assert [c.status for c in api.calls if c.method == "sendMessage"] == [429, 403]


async def test_blocked_user_and_bots_get_403(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    api.block_bot(alice)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "hi")
    api.unblock_bot(alice)
    assert (await bot.send_message(alice.id, "back")).text == "back"
    api.add_chat(-300, "group", title="Gone", bot_status="kicked")
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_message(-300, "hi")


async def test_rate_limits_answer_429(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    api.enforce_rate_limits(RateLimits(private_burst=2))
    await bot.send_message(alice.id, "1")
    await bot.send_message(alice.id, "2")
    with pytest.raises(RetryAfter):
        await bot.send_message(alice.id, "3")
    api.enforce_rate_limits(RateLimits(global_per_second=1000, private_per_second=1000, private_burst=100))
    for i in range(20):
        await bot.send_message(alice.id, str(i))
    api.disable_rate_limits()
    assert api.rate_limited_count == 1
    assert api.messages_per_chat[alice.id] == 22


async def test_edit_and_delete(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await bot.send_message(alice.id, "one", reply_markup=keyboard)
    edited = await bot.edit_message_text("two", alice.id, sent.message_id)
    assert isinstance(edited, type(sent)) and edited.text == "two"
    assert edited.reply_markup is None and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("two", alice.id, sent.message_id)
    again = await bot.edit_message_reply_markup(alice.id, sent.message_id, reply_markup=keyboard)
    assert again.reply_markup == keyboard  # type: ignore[union-attr]
    assert [r.method for r in api.sent] == ["sendMessage", "editMessageText", "editMessageReplyMarkup"]
    assert await bot.delete_message(alice.id, sent.message_id) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(alice.id, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", alice.id, sent.message_id)


async def test_group_delete_needs_admin_rights(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    api.add_chat(-100200, "supergroup", title="Users")
    note = api.user_says(alice, "spam", chat=-100200)["message"]
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(-100200, note["message_id"])
    api.set_member(-100200, api.bot.id, "administrator", rights=("can_delete_messages",))
    assert await bot.delete_message(-100200, note["message_id"]) is True


async def test_commands_descriptions_and_actions(bot: Bot, alice: SimUser) -> None:
    assert await bot.set_my_commands([("start", "Start"), ("help", "Help")]) is True
    assert await bot.set_my_commands([("hilfe", "Hilfe")], language_code="de") is True
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.command for c in await bot.get_my_commands(language_code="de")] == ["hilfe"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Start", "Bad")])
    assert await bot.delete_my_commands() is True
    assert await bot.get_my_commands() == ()
    assert await bot.set_my_description("Ops bot") is True
    assert (await bot.get_my_description()).description == "Ops bot"
    assert await bot.set_my_short_description("Ops") is True
    assert await bot.send_chat_action(alice.id, "typing") is True
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(alice.id, "dancing")


async def test_chats_and_members(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    api.add_chat(-100300, "supergroup", title="Team", username="team_chat")
    api.add_user(2002, "Bob")
    api.set_member(-100300, 2002, "creator")
    api.set_member(-100300, alice.id, "administrator", rights=("can_delete_messages",), custom_title="Ops")
    chat = await bot.get_chat("@team_chat")
    assert chat.id == -100300 and chat.title == "Team" and chat.type == "supergroup"
    member = await bot.get_chat_member(-100300, alice.id)
    assert member.status == "administrator" and member.can_delete_messages is True  # type: ignore[attr-defined]
    assert (await bot.get_chat_member(-100300, api.bot.id)).status == "member"
    admins = await bot.get_chat_administrators(-100300)
    assert sorted(a.user.id for a in admins) == [1001, 2002]
    with pytest.raises(BadRequest, match="There are no administrators in the private chat"):
        await bot.get_chat_administrators(alice.id)
    with pytest.raises(BadRequest, match="User not found"):
        await bot.get_chat_member(-100300, 5555)


async def test_set_message_reaction(api: LocalBotAPI, bot: Bot, alice: SimUser) -> None:
    note = api.user_says(alice, "thanks")["message"]
    assert await bot.set_message_reaction(alice.id, note["message_id"], "👍") is True
    assert api.state.reactions[(alice.id, note["message_id"], api.bot.id)] == [
        {"type": "emoji", "emoji": "👍"}
    ]
    with pytest.raises(BadRequest, match="Reaction_invalid"):
        await bot.set_message_reaction(alice.id, note["message_id"], "🦖")
    with pytest.raises(BadRequest, match="Reactions_too_many"):
        await bot.set_message_reaction(
            alice.id, note["message_id"], [ReactionTypeEmoji("👍"), ReactionTypeEmoji("🔥")]
        )
