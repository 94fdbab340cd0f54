"""Whether a message speaks to the bot: in groups the bot answers only when addressed."""

from __future__ import annotations

import re

from telegram import Message, MessageEntity
from telegram.constants import ChatType
from telegram.ext import filters


def _bot_identity(message: Message) -> tuple[int, str]:
    bot = message.get_bot()
    return bot.id, (bot.username or "").lower()


def command_of(message: Message) -> tuple[str, str | None] | None:
    """`(command, @target)` when the message starts with a bot command, else None."""
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            raw = text[1 : entity.length]
            name, _, target = raw.partition("@")
            return name.lower(), (target.lower() or None)
    return None


def is_addressed(message: Message) -> bool:
    """Private chat, a command for this bot, a reply to the bot, or a mention of it."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    bot_id, username = _bot_identity(message)
    command = command_of(message)
    if command is not None:
        return command[1] is None or command[1] == username
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    for entity, value in message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION]).items():
        if entity.type == MessageEntity.MENTION and value.lstrip("@").lower() == username:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot_id:
            return True
    return False


def without_mention(text: str, username: str | None) -> str:
    """The text with `@botname` removed, so the NLU sees only the question."""
    if not username:
        return text.strip()
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()


class _Addressed(filters.MessageFilter):
    """PTB filter form of `is_addressed`."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return is_addressed(message)


ADDRESSED = _Addressed(name="Addressed")
