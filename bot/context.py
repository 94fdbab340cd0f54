"""The bot's context types, named once: typed state, the per-update context, the application type.

As in PTB's `contexttypesbot` example, `CONTEXT_TYPES` tells the application which classes to
make for `context`, `user_data`, `chat_data` and `bot_data`; every handler takes a `Context` and
every hook a `RapportApp`, so no `Application` needs a `type: ignore[type-arg]`.

PTB builds one context per update and hands that same object to the handler of each group in
turn (the handlers here are blocking, so one update's groups run in order even with concurrent
updates). `turn_of` and `understanding_of` keep their answers on it: whichever group asks first
decides, later groups read that decision, and nothing is cached by update id. `language_for`
decides the reply language the same way, so the observer logs the language the handler answers in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeAlias

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.addressing import command_of, is_addressed, without_mention
from bot.conversation import ReplyLanguage, Step, Turn, UserData, decide, reply_language
from bot.language import written_language
from bot.services import BotServices
from bot.understanding import Understanding

__all__ = [
    "CONTEXT_TYPES",
    "BotData",
    "Context",
    "RapportApp",
    "language_for",
    "services_for",
    "services_of",
    "turn_of",
    "understanding_of",
    "writes_in",
]

_WRITTEN_STEPS = frozenset({Step.QUESTION, Step.FEEDBACK_COMMENT})
"""The texts whose language the bot answers in: questions and feedback comments. A manager's
broadcast text is for its recipients, group chatter for the group: neither is the user talking
to the bot, so neither changes the language the bot talks to them in."""


class BotData:
    """The application-wide data: the services object `build_application` puts in."""

    def __init__(self) -> None:
        self.services: BotServices | None = None


class Context(CallbackContext[ExtBot[Any], UserData, dict[Any, Any], BotData]):
    """The context of one update, shared by the handlers of every group that sees it.

    Attributes:
        turn: What this update's text message is (see `turn_of`), once decided.
        understood: What the NLU made of it (see `understanding_of`), once it ran.
        language: The language to answer this update in (see `language_for`), once decided.
    """

    def __init__(
        self, application: RapportApp, chat_id: int | None = None, user_id: int | None = None
    ) -> None:
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self.turn: Turn | None = None
        self.understood: Understanding | None = None
        self.language: ReplyLanguage | None = None


RapportApp: TypeAlias = Application[ExtBot[Any], Context, UserData, dict[Any, Any], BotData, Any]
"""The bot's `Application`, with its context types."""

CONTEXT_TYPES = ContextTypes(context=Context, user_data=UserData, chat_data=dict, bot_data=BotData)
"""Handed to `ApplicationBuilder.context_types`; the group reply budget is not chat data because
it must forget idle groups (see `BotServices.group_replies`)."""


def _services(bot_data: BotData) -> BotServices:
    if bot_data.services is None:
        raise RuntimeError("the application has no BotServices: build it with bot.app.build_application")
    return bot_data.services


def services_for(application: RapportApp) -> BotServices:
    """The services of an application built by `bot.app.build_application` (for hooks and tests)."""
    return _services(application.bot_data)


def services_of(context: Context) -> BotServices:
    """The services a handler calls."""
    return _services(context.bot_data)


def turn_of(update: Update, context: Context) -> Turn | None:
    """What this update's text message is; None for anything but a new text message from a user.

    Decided once per update, from the conversation state in `user_data` as it was then.
    """
    if context.turn is not None:
        return context.turn
    message = update.message
    if message is None or message.text is None or message.from_user is None:
        return None
    if message.chat.type == ChatType.CHANNEL or command_of(message) is not None:
        return None
    context.turn = decide(
        context.user_data,
        message.text,
        private=message.chat.type == ChatType.PRIVATE,
        addressed=is_addressed(message),
        is_admin=services_of(context).is_admin(message.from_user.id),
        now=datetime.now(UTC),
    )
    return context.turn


async def understanding_of(update: Update, context: Context) -> Understanding | None:
    """What the NLU made of this update's question; None when the message is not a question.

    The NLU runs at most once per update, for whichever handler group asks first.
    """
    if context.understood is not None:
        return context.understood
    turn = turn_of(update, context)
    message = update.message
    if turn is None or turn.step is not Step.QUESTION or message is None or message.text is None:
        return None
    text = without_mention(message.text, message.get_bot().username)
    context.understood = await services_of(context).understander.understand(text or message.text)
    return context.understood


def _written_text(update: Update, context: Context) -> str | None:
    """The text this update's user wrote to the bot: a question, a feedback comment, a caption.

    Commands, buttons, group chatter and broadcast drafts have none (see `_WRITTEN_STEPS`).
    """
    message = update.message
    if message is None or message.from_user is None:
        return None
    if message.text is None:
        private = message.chat.type == ChatType.PRIVATE
        return message.caption if private else None  # a photo sent to the bot with a question on it
    turn = turn_of(update, context)
    if turn is None or turn.step not in _WRITTEN_STEPS:
        return None
    return message.text  # `bot.language` leaves @mentions of the bot out by itself


def language_for(update: Update, context: Context) -> ReplyLanguage:
    """The language to answer this update in, decided once per update (`bot.conversation.reply_language`).

    A text that tells its language is answered in it, and the user's `UserData` remembers it for
    their buttons and commands; otherwise the language they last wrote in, else their client's.
    """
    if context.language is None:
        user = update.effective_user
        text = _written_text(update, context)
        context.language = reply_language(
            context.user_data,
            written_language(text) if text else None,
            user.language_code if user else None,
        )
    return context.language


def writes_in(context: Context) -> str | None:
    """The language the user last wrote in (`UserData.language`), None until a message told.

    What the users table keeps for pushes (`bot.users.UserProfiles`): read it after
    `language_for`, which updates it from this update's text.
    """
    return context.user_data.language if context.user_data is not None else None
