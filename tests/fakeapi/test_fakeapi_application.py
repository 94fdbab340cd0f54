"""A real PTB Application polling the server that runs in its own thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    MessageReactionHandler,
    PollAnswerHandler,
    filters,
)

from fakeapi import LocalBotAPI, WaitTimeout


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


async def _start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Pro", callback_data="pro")]])
    await update.effective_message.reply_text("Choose", reply_markup=markup)


async def _button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text(f"Chose {query.data}")


async def _survey(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_chat is not None
    await context.bot.send_poll(update.effective_chat.id, "Helpful?", ["yes", "no"], is_anonymous=False)


async def _vote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    answer = update.poll_answer
    assert answer is not None and answer.user is not None
    await context.bot.send_message(answer.user.id, f"voted {list(answer.option_ids)}")


async def _reaction(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    reaction = update.message_reaction
    assert reaction is not None
    emoji = [r.emoji for r in reaction.new_reaction]  # type: ignore[attr-defined]
    await context.bot.send_message(reaction.chat.id, f"reacted {emoji}")


@pytest.fixture
def threaded_api() -> Iterator[LocalBotAPI]:
    api = LocalBotAPI()
    api.add_user(1001, "Alice", username="alice_w")
    with api.serve_in_thread():
        yield api


@pytest.fixture
async def app(threaded_api: LocalBotAPI) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    application = Application.builder().token(threaded_api.token).base_url(threaded_api.base_url).build()
    application.add_handler(CommandHandler("start", _start))
    application.add_handler(CommandHandler("survey", _survey))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _echo))
    application.add_handler(CallbackQueryHandler(_button))
    application.add_handler(PollAnswerHandler(_vote))
    application.add_handler(MessageReactionHandler(_reaction))
    async with application:
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES)
        await application.start()
        await threaded_api.wait_for_request("getUpdates")
        yield application
        await application.updater.stop()
        await application.stop()


async def test_echo_round_trip(threaded_api: LocalBotAPI, app: Application) -> None:  # type: ignore[type-arg]
    threaded_api.user_says(1001, "hello there")
    record = await threaded_api.wait_for(lambda r: r.text == "echo: hello there", timeout=5)
    assert record.chat_id == 1001 and record.method == "sendMessage"


async def test_button_press_edits_the_message(threaded_api: LocalBotAPI, app: Application) -> None:  # type: ignore[type-arg]
    threaded_api.user_command(1001, "start")
    menu = await threaded_api.wait_for(lambda r: r.text == "Choose")
    threaded_api.press_button(1001, menu, "pro")
    edited = await threaded_api.wait_for(lambda r: r.method == "editMessageText")
    assert (edited.message_id, edited.text) == (menu.message_id, "Chose pro")
    answered = await threaded_api.wait_for_call(lambda c: c.method == "answerCallbackQuery")
    assert answered.ok


async def test_poll_answer_and_reaction_reach_handlers(
    threaded_api: LocalBotAPI,
    app: Application,  # type: ignore[type-arg]
) -> None:
    threaded_api.user_command(1001, "survey")
    poll = await threaded_api.wait_for(lambda r: r.method == "sendPoll")
    threaded_api.vote_poll(1001, poll, [1])
    await threaded_api.wait_for(lambda r: r.text == "voted [1]")
    threaded_api.react(1001, poll, "🔥")
    await threaded_api.wait_for(lambda r: r.text == "reacted ['🔥']")


async def test_blocking_wait_from_a_thread(threaded_api: LocalBotAPI, app: Application) -> None:  # type: ignore[type-arg]
    threaded_api.user_says(1001, "ping")
    record = await asyncio.to_thread(threaded_api.wait_for_blocking, lambda r: r.text == "echo: ping", 5.0)
    assert record.chat_id == 1001
    with pytest.raises(WaitTimeout):
        await asyncio.to_thread(threaded_api.wait_for_blocking, lambda r: r.text == "never", 0.2)
