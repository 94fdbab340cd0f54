"""Groups and supergroups: welcoming new members and managers' polls."""

from __future__ import annotations

import logging

from telegram import ChatMember, Update
from telegram.constants import ChatType, ParseMode

from bot.context import Context, language_for, services_of
from bot.conversation import known_language
from bot.i18n import Html, t, t_html

logger = logging.getLogger(__name__)

_JOINED = frozenset({ChatMember.MEMBER, ChatMember.RESTRICTED})
_OUTSIDE = frozenset({ChatMember.LEFT, ChatMember.BANNED})
MAX_POLL_OPTIONS = 10


async def welcome(update: Update, context: Context) -> None:
    """Greet a person who just joined a group (once, within the group's reply budget)."""
    change = update.chat_member
    if change is None or change.chat.type == ChatType.CHANNEL:
        return
    if change.old_chat_member.status not in _OUTSIDE or change.new_chat_member.status not in _JOINED:
        return
    member = change.new_chat_member.user
    if member.is_bot or not await services_of(context).allow_group_reply(change.chat.id):
        return
    # The member's own language: the one they last wrote to the bot in, else their client's.
    lang = known_language(context.application.user_data.get(member.id), member.language_code).lang
    text = t_html("group_welcome", lang, chat=change.chat.title or "", name=Html(member.mention_html()))
    await context.bot.send_message(change.chat.id, text, parse_mode=ParseMode.HTML)


def parse_poll(args: list[str]) -> tuple[str, list[str]] | None:
    """`question | option 1 | option 2 ...` → question and 2–10 options, else None."""
    parts = [part.strip() for part in " ".join(args).split("|")]
    question, options = parts[0], [option for option in parts[1:] if option]
    if not question or not 2 <= len(options) <= MAX_POLL_OPTIONS:
        return None
    return question[:300], [option[:100] for option in options]


async def poll(update: Update, context: Context) -> None:
    """Start a non-anonymous poll in the group: `/poll Question? | Yes | No`."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    services = services_of(context)
    lang = language_for(update, context).lang
    if not services.is_admin(user.id):
        logger.warning("user %d tried the manager command /poll in chat %d", user.id, message.chat.id)
        await message.reply_text(t("not_admin", lang))
        return
    if message.chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        await message.reply_text(t("group_only", lang))
        return
    parsed = parse_poll(context.args or [])
    if parsed is None:
        await message.reply_text(t("poll_usage", lang))
        return
    question, options = parsed
    # Telegram reports answers (poll_answer updates) only for non-anonymous polls.
    sent = await context.bot.send_poll(message.chat.id, question, options, is_anonymous=False)
    logger.info(
        "manager %d started poll %s in chat %d", user.id, sent.poll.id if sent.poll else "?", message.chat.id
    )
