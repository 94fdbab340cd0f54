"""The interaction log: one observer turns every update into exactly one event row.

Registered as `TypeHandler(Update, observe)` in group -1, it runs before any answering
handler, so logging is not repeated in each handler. It also runs the NLU once (the
answering handler reads the cached result), keeps the user's profile fresh and applies
the per-user flood limit, stopping further handlers for throttled messages.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import ChatMember, ChatMemberUpdated, Message, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.addressing import command_of, is_addressed, without_mention
from bot.conversation import broadcast_draft, pending_rating
from bot.flood import FloodVerdict
from bot.i18n import language_of, t
from bot.services import BotServices, services_of
from store import EventRecord, mark_blocked

logger = logging.getLogger(__name__)

ADMIN_COMMANDS = frozenset({"stats", "segments", "insights", "broadcast", "campaigns", "poll"})
_MEMBER_STATES = frozenset(
    {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED}
)
_CONTENT_FIELDS = (
    "sticker",
    "photo",
    "animation",
    "video",
    "voice",
    "video_note",
    "audio",
    "document",
    "location",
    "contact",
    "poll",
    "dice",
    "new_chat_members",
    "left_chat_member",
)


@dataclass(frozen=True)
class _Origin:
    """Who and where: the user and chat an event belongs to."""

    user_id: int | None
    chat_id: int | None

    def event(self, kind: str, attributes: dict[str, Any], **fields: Any) -> EventRecord:
        return EventRecord(
            user_id=self.user_id,
            chat_id=self.chat_id,
            ts=datetime.now(UTC),
            kind=kind,
            attributes=attributes,
            **fields,
        )


def _content(message: Message) -> str:
    for name in _CONTENT_FIELDS:
        if getattr(message, name, None):
            return name
    return "other"


def _is_member(member: ChatMember) -> bool:
    return member.status in _MEMBER_STATES or bool(getattr(member, "is_member", False))


def _membership_kind(change: ChatMemberUpdated) -> str:
    was, now = _is_member(change.old_chat_member), _is_member(change.new_chat_member)
    if now and not was:
        return "join"
    if was and not now:
        return "leave"
    return "member"


async def _message_event(
    update: Update, message: Message, services: BotServices, context: ContextTypes.DEFAULT_TYPE
) -> EventRecord:
    user = message.from_user
    chat = message.chat
    attributes: dict[str, Any] = {"chat_type": chat.type, "message_id": message.message_id}
    origin = _Origin(user.id if user else None, chat.id)
    if user is None or chat.type == ChatType.CHANNEL:
        attributes["content"] = "text" if message.text else _content(message)
        return origin.event("message", attributes)
    addressed = is_addressed(message)
    if chat.type != ChatType.PRIVATE:
        attributes["addressed"] = addressed
    if message.reply_to_message is not None:
        attributes["reply_to"] = message.reply_to_message.message_id
    if addressed:
        verdict = services.flood.check(user.id)
        if verdict is not FloodVerdict.OK:
            attributes["throttled"] = True
            record = origin.event("message", attributes)
            services.writer.log(record)
            if verdict is FloodVerdict.WARN:
                logger.warning("user %d is flooding (over %d messages)", user.id, services.flood.max_messages)
                if chat.type == ChatType.PRIVATE:
                    await message.reply_text(t("flood", language_of(user.language_code)))
            raise ApplicationHandlerStop
    if message.text is None:
        attributes["content"] = _content(message)
        return origin.event("message", attributes)
    attributes["length"] = len(message.text)
    command = command_of(message)
    if command is not None:
        attributes["command"] = command[0]
        if command[0] in ADMIN_COMMANDS:
            attributes["admin"] = services.is_admin(user.id)
        return origin.event("command", attributes, text=message.text)
    rating = pending_rating(context.user_data) if chat.type == ChatType.PRIVATE else None
    if rating is not None:
        attributes["rating"] = rating
        attributes["comment"] = message.text
        return origin.event("feedback", attributes, text=message.text)
    if chat.type == ChatType.PRIVATE and services.is_admin(user.id) and broadcast_draft(context.user_data):
        attributes["broadcast_draft"] = True  # a manager composing a broadcast, not a question
        return origin.event("message", attributes, text=message.text)
    if not addressed:  # group chatter: logged, but the NLU runs only on what the bot answers
        return origin.event("message", attributes, text=message.text)
    text = without_mention(message.text, message.get_bot().username)
    understood = await services.understand(update.update_id, text or message.text)
    kind = "message"
    if not services.knowledge.can_answer(understood.intent, understood.confidence):
        kind = "fallback"
        attributes["unanswered"] = True
    if understood.entities:
        attributes["entities"] = understood.entities
    return origin.event(
        kind, attributes, intent=understood.intent, confidence=understood.confidence, text=message.text
    )


async def _describe(update: Update, services: BotServices, context: ContextTypes.DEFAULT_TYPE) -> EventRecord:
    """The event row of one update (may raise ApplicationHandlerStop for floods)."""
    if update.message is not None:
        return await _message_event(update, update.message, services, context)
    if update.channel_post is not None:
        return await _message_event(update, update.channel_post, services, context)
    user = update.effective_user
    chat = update.effective_chat
    origin = _Origin(user.id if user else None, chat.id if chat else None)
    attributes: dict[str, Any] = {"chat_type": chat.type} if chat else {}
    if update.edited_message is not None or update.edited_channel_post is not None:
        edited = update.edited_message or update.edited_channel_post
        assert edited is not None
        attributes["message_id"] = edited.message_id
        return origin.event("edited", attributes, text=edited.text)
    if (query := update.callback_query) is not None:
        decoded = services.codec.decode(query.data, user_id=query.from_user.id)
        attributes["valid"] = decoded is not None
        if decoded is not None:
            attributes["action"] = decoded.action
            attributes["arg"] = decoded.arg
            if decoded.action == "rate" and decoded.arg.isdigit():
                attributes["rating"] = int(decoded.arg)
                return origin.event("feedback", attributes)
            if decoded.action == "topic":  # choosing a topic is asking about it
                return origin.event("callback", attributes, intent=decoded.arg)
        return origin.event("callback", attributes)
    if (reaction := update.message_reaction) is not None:
        attributes["message_id"] = reaction.message_id
        attributes["new"] = [getattr(r, "emoji", None) or r.type for r in reaction.new_reaction]
        attributes["old"] = [getattr(r, "emoji", None) or r.type for r in reaction.old_reaction]
        return origin.event("reaction", attributes)
    if (answer := update.poll_answer) is not None:
        attributes["poll_id"] = answer.poll_id
        attributes["options"] = list(answer.option_ids)
        return origin.event("poll_answer", attributes)
    if (change := update.chat_member or update.my_chat_member) is not None:
        kind = _membership_kind(change)
        attributes["status"] = change.new_chat_member.status
        if update.my_chat_member is not None:
            attributes["bot"] = True
            if change.chat.type == ChatType.PRIVATE and kind == "leave":
                attributes["blocked_bot"] = True
                await asyncio.to_thread(mark_blocked, services.engine, change.from_user.id)
        else:
            origin = _Origin(change.new_chat_member.user.id, origin.chat_id)
            if change.from_user.id != change.new_chat_member.user.id:
                attributes["by"] = change.from_user.id
        return origin.event(kind, attributes)
    attributes["update"] = next((k for k, v in update.to_dict().items() if k != "update_id" and v), "unknown")
    return origin.event("other", attributes)


async def observe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log one event for every update, before any handler answers it."""
    services = services_of(context)
    record = await _describe(update, services, context)
    user = update.effective_user
    if user is not None and not user.is_bot and record.kind != "leave":
        # Before logging, so that the writer thread finds the user and doesn't race to create it.
        await services.remember_user(user)
    services.writer.log(record)
