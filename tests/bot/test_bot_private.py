"""Private-chat commands against the local Bot API: /start, /help, /privacy, /stop, /forget."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from store import count_events, get_user

if TYPE_CHECKING:
    from conftest import BotHarness


async def test_start_welcomes_creates_user_and_logs_command(bot: BotHarness) -> None:
    alice = bot.user(1001, "Alice")
    reply = await bot.command(alice, "start")
    assert reply.text is not None
    assert reply.text.startswith("Hi Alice!")
    assert "/forget" in reply.text and "/stop" in reply.text
    state = await asyncio.to_thread(get_user, bot.engine, 1001)
    assert state is not None
    assert state.language == "en"
    assert not state.opted_out
    events = await bot.events(1001)
    assert [(e.kind, e.attributes and e.attributes["command"]) for e in events] == [("command", "start")]


async def test_a_name_that_looks_like_markup_is_greeted_verbatim(bot: BotHarness) -> None:
    mallory = bot.user(1012, "<b>x</b> & co")
    reply = await bot.command(mallory, "start")
    assert reply.text is not None and reply.text.startswith("Hi <b>x</b> & co!")
    assert "parse_mode" not in reply.params  # plain text: Telegram shows the name as written
    assert not reply.message.get("entities")


async def test_start_in_chinese(bot: BotHarness) -> None:
    li = bot.user(1002, "李", language="zh-hans")
    reply = await bot.command(li, "start")
    assert reply.text is not None
    assert reply.text.startswith("你好，李")


async def test_unsupported_language_falls_back_to_english(bot: BotHarness) -> None:
    hans = bot.user(1003, "Hans", language="de")
    reply = await bot.command(hans, "help")
    assert reply.text is not None
    assert reply.text.startswith("Just write your question")


async def test_stop_then_start_resumes(bot: BotHarness) -> None:
    alice = bot.user(1004, "Alice")
    await bot.command(alice, "start")
    stopped = await bot.command(alice, "stop")
    assert stopped.text is not None and "/start" in stopped.text
    state = await asyncio.to_thread(get_user, bot.engine, 1004)
    assert state is not None and state.opted_out
    resumed = await bot.command(alice, "start")
    assert resumed.text is not None and resumed.text.startswith("Welcome back")
    state = await asyncio.to_thread(get_user, bot.engine, 1004)
    assert state is not None and not state.opted_out


async def test_help_lists_manager_commands_only_to_managers(bot: BotHarness, admin_id: int) -> None:
    user = bot.user(1005, "Bob")
    admin = bot.user(admin_id, "Manager")
    plain = await bot.command(user, "help")
    managed = await bot.command(admin, "help")
    assert plain.text is not None and "/stats" not in plain.text
    assert managed.text is not None and "/stats" in managed.text


async def test_privacy_states_the_text_policy(bot: BotHarness) -> None:
    user = bot.user(1006, "Bob")
    reply = await bot.command(user, "privacy")
    assert reply.text is not None
    assert "currently off" in reply.text
    assert "/forget" in reply.text


async def test_forget_deletes_everything_after_confirmation(bot: BotHarness) -> None:
    alice = bot.user(1007, "Alice")
    await bot.command(alice, "start")
    await bot.say(alice, "How much does the pro plan cost?")
    confirm = await bot.command(alice, "forget")
    assert confirm.reply_markup is not None
    yes, _no = confirm.reply_markup["inline_keyboard"][0]
    assert "delete" in yes["text"].lower()
    since = bot.mark()
    answer = await bot.press(alice, confirm, yes["callback_data"])
    assert answer.ok
    edited = await bot.reply_to(1007, since)
    assert edited.method == "editMessageText"
    assert edited.text is not None and edited.text.startswith("Deleted")
    await bot.idle()
    assert await asyncio.to_thread(get_user, bot.engine, 1007) is None
    assert await bot.events(1007) == []


async def test_forget_cancel_keeps_data(bot: BotHarness) -> None:
    alice = bot.user(1008, "Alice")
    await bot.command(alice, "start")
    confirm = await bot.command(alice, "forget")
    assert confirm.reply_markup is not None
    _, no = confirm.reply_markup["inline_keyboard"][0]
    since = bot.mark()
    await bot.press(alice, confirm, no["callback_data"])
    edited = await bot.reply_to(1008, since)
    assert edited.text == "Nothing was deleted."
    assert await asyncio.to_thread(get_user, bot.engine, 1008) is not None


async def test_forget_button_of_someone_else_is_refused(bot: BotHarness) -> None:
    alice = bot.user(1009, "Alice")
    mallory = bot.user(1010, "Mallory")
    await bot.command(alice, "start")
    confirm = await bot.command(alice, "forget")
    assert confirm.reply_markup is not None
    yes = confirm.reply_markup["inline_keyboard"][0][0]["callback_data"]
    answer = await bot.press(mallory, confirm, yes)
    assert answer.params.get("text") == "This button has expired."
    await bot.idle()
    assert await asyncio.to_thread(get_user, bot.engine, 1009) is not None
    assert await asyncio.to_thread(count_events, bot.engine, kind="callback") == 1


async def test_questions_events_and_forget_on_every_backend(bot_any_db: BotHarness) -> None:
    bot = bot_any_db
    alice = bot.user(1011, "Alice", language="zh-CN")
    await bot.command(alice, "start")
    reply = await bot.say(alice, "专业版多少钱？")
    assert reply.text is not None and "20 美元" in reply.text
    events = await bot.events(1011)
    assert [(e.kind, e.intent) for e in events] == [("command", None), ("message", "pricing")]
    assert events[1].attributes is not None and events[1].attributes["entities"] == {"plan": "pro"}
    state = await asyncio.to_thread(get_user, bot.engine, 1011)
    assert state is not None and state.language == "zh-CN"
    confirm = await bot.command(alice, "forget")
    assert confirm.reply_markup is not None
    await bot.press(alice, confirm, confirm.reply_markup["inline_keyboard"][0][0]["callback_data"])
    await bot.reply_to(1011, bot.mark() - 1, lambda r: r.method == "editMessageText")
    await bot.idle()
    assert await asyncio.to_thread(get_user, bot.engine, 1011) is None
    assert await bot.events(1011) == []
