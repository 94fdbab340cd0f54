"""Membership changes: what a `chat_member` or `my_chat_member` update means, and users who block the bot.

Telegram reports a private user blocking the bot as the bot "leaving" that private chat. Such a
user is marked blocked at once, so the scheduler sends them nothing more.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import ChatMember, ChatMemberUpdated, Update
from telegram.constants import ChatType

from bot.context import Context, services_of
from store import mark_blocked
from store.vocabulary import EventKind

logger = logging.getLogger(__name__)

_MEMBER_STATES = frozenset(
    {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED}
)


def is_member(member: ChatMember) -> bool:
    """Whether `member` is inside the chat (a restricted member may be, or may not)."""
    return member.status in _MEMBER_STATES or bool(getattr(member, "is_member", False))


def membership_kind(change: ChatMemberUpdated) -> EventKind:
    """JOIN, LEAVE, or MEMBER for any other change (e.g. a promotion)."""
    was, now = is_member(change.old_chat_member), is_member(change.new_chat_member)
    if now and not was:
        return EventKind.JOIN
    if was and not now:
        return EventKind.LEAVE
    return EventKind.MEMBER


def blocked_the_bot(change: ChatMemberUpdated) -> bool:
    """Whether this change of the bot's own membership is a private user blocking it."""
    return change.chat.type == ChatType.PRIVATE and membership_kind(change) is EventKind.LEAVE


async def on_bot_membership(update: Update, context: Context) -> None:
    """Mark a user who blocked the bot as blocked (the observer has logged the leave)."""
    change = update.my_chat_member
    if change is None or not blocked_the_bot(change):
        return
    await asyncio.to_thread(mark_blocked, services_of(context).engine, change.from_user.id)
    logger.info("user %d blocked the bot", change.from_user.id)
