"""One update as one event row: a pure function of the update and the facts the observer gathered.

Nothing here touches the database, the NLU or Telegram; what needs them (the conversation step,
the NLU's reading, whether the sender is a manager, the verified button) arrives as `Facts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType

from bot.addressing import command_of, is_addressed
from bot.callbacks import CallbackData, PushClick
from bot.conversation import ReplyLanguage, Step, Turn
from bot.membership import blocked_the_bot, membership_kind
from bot.understanding import Understanding
from store import EventRecord
from store.vocabulary import EventKind

ADMIN_COMMANDS = frozenset({"stats", "segments", "insights", "broadcast", "campaigns", "poll", "dashboard"})
OTHER_KIND = "other"
"""The kind of an update of a type the bot does not ask Telegram for (not in `EventKind`)."""
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
class Facts:
    """What the observer learnt about an update beyond the update itself.

    Attributes:
        is_admin: The sender is a community manager.
        turn: What a text message is in the conversation (`bot.context.turn_of`).
        understood: The NLU's reading of a question.
        answerable: The knowledge base answers `understood` confidently (else a fallback).
        button: The verified data of a pressed button; None when forged or stale.
        store_text: Text may be stored: a feedback comment is kept only then, like message text.
        language: The language the bot answers in and why (`bot.context.language_for`).
    """

    is_admin: bool = False
    turn: Turn | None = None
    understood: Understanding | None = None
    answerable: bool = False
    button: CallbackData | None = None
    store_text: bool = False
    language: ReplyLanguage | None = None


def _add_language(attributes: dict[str, Any], facts: Facts) -> None:
    """`lang` (`en`, `zh`) and `lang_from` (`text`, `earlier`, `client`) of what the bot answers.

    On commands, questions, feedback comments and verified buttons: what analytics needs to see
    who writes in another language than their client's (`lang_from` of a question is `client`
    only when its text told nothing, e.g. emoji or digits).
    """
    if facts.language is not None:
        attributes["lang"] = facts.language.lang
        attributes["lang_from"] = facts.language.source


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


def _message_basics(message: Message) -> tuple[_Origin, dict[str, Any]]:
    """Origin and the attributes every message from a user has (chat type, id, addressed, reply)."""
    user = message.from_user
    attributes: dict[str, Any] = {"chat_type": message.chat.type, "message_id": message.message_id}
    origin = _Origin(user.id if user else None, message.chat.id)
    if user is None or message.chat.type == ChatType.CHANNEL:
        return origin, attributes
    if message.chat.type != ChatType.PRIVATE:
        attributes["addressed"] = is_addressed(message)
    if message.reply_to_message is not None:
        attributes["reply_to"] = message.reply_to_message.message_id
    return origin, attributes


def throttled_event(message: Message) -> EventRecord:
    """The row of a message the flood limit stopped: logged, never read or answered."""
    origin, attributes = _message_basics(message)
    attributes["throttled"] = True
    return origin.event(EventKind.MESSAGE, attributes)


def _message_event(message: Message, facts: Facts) -> EventRecord:
    origin, attributes = _message_basics(message)
    if message.from_user is None or message.chat.type == ChatType.CHANNEL:
        attributes["content"] = "text" if message.text else _content(message)
        return origin.event(EventKind.MESSAGE, attributes)
    if message.text is None:
        attributes["content"] = _content(message)
        return origin.event(EventKind.MESSAGE, attributes)
    attributes["length"] = len(message.text)
    command = command_of(message)
    if command is not None:
        attributes["command"] = command[0]
        if command[0] in ADMIN_COMMANDS:
            attributes["admin"] = facts.is_admin
        _add_language(attributes, facts)
        return origin.event(EventKind.COMMAND, attributes, text=message.text)
    turn = facts.turn or Turn(Step.CHATTER)
    step = turn.step
    if step is Step.FEEDBACK_COMMENT:
        attributes["rating"] = turn.rating
        _add_language(attributes, facts)
        if facts.store_text:
            attributes["comment"] = message.text
        else:  # the comment is message text: kept only where text storage is on
            attributes["commented"] = True
        return origin.event(EventKind.FEEDBACK, attributes, text=message.text)
    if step in (Step.BROADCAST_TEXT, Step.BROADCAST_TIME):
        attributes["broadcast_draft"] = True  # a manager composing a broadcast, not a question
        return origin.event(EventKind.MESSAGE, attributes, text=message.text)
    understood = facts.understood
    if step is Step.CHATTER or understood is None:  # group chatter: logged, but not understood
        return origin.event(EventKind.MESSAGE, attributes, text=message.text)
    _add_language(attributes, facts)
    kind = EventKind.MESSAGE
    if not facts.answerable:
        kind = EventKind.FALLBACK
        attributes["unanswered"] = True
    if understood.entities:
        attributes["entities"] = understood.entities
    return origin.event(
        kind, attributes, intent=understood.intent, confidence=understood.confidence, text=message.text
    )


def describe(update: Update, facts: Facts) -> EventRecord:
    """The one event row of an update."""
    if update.message is not None:
        return _message_event(update.message, facts)
    if update.channel_post is not None:
        return _message_event(update.channel_post, facts)
    user = update.effective_user
    chat = update.effective_chat
    origin = _Origin(user.id if user else None, chat.id if chat else None)
    attributes: dict[str, Any] = {"chat_type": chat.type} if chat else {}
    if (edited := update.edited_message or update.edited_channel_post) is not None:
        attributes["message_id"] = edited.message_id
        return origin.event(EventKind.EDITED, attributes, text=edited.text)
    if update.callback_query is not None:
        button = facts.button
        attributes["valid"] = button is not None
        if button is not None:
            attributes["action"] = button.action
            attributes["arg"] = button.arg
            _add_language(attributes, facts)
            if button.action == "rate" and button.arg.isdigit():
                attributes["rating"] = int(button.arg)
                return origin.event(EventKind.FEEDBACK, attributes)
            if button.action == "topic":  # choosing a topic is asking about it
                return origin.event(EventKind.CALLBACK, attributes, intent=button.arg)
            if button.action == "push" and (click := PushClick.parse(button.arg)) is not None:
                attributes.update(
                    delivery_id=click.delivery_id,
                    experiment_id=click.experiment_id,
                    variant=click.variant,
                    button=click.button,
                )
                return origin.event(EventKind.PUSH_CLICK, attributes)
        return origin.event(EventKind.CALLBACK, attributes)
    if (reaction := update.message_reaction) is not None:
        attributes["message_id"] = reaction.message_id
        attributes["new"] = [getattr(r, "emoji", None) or r.type for r in reaction.new_reaction]
        attributes["old"] = [getattr(r, "emoji", None) or r.type for r in reaction.old_reaction]
        return origin.event(EventKind.REACTION, attributes)
    if (answer := update.poll_answer) is not None:
        attributes["poll_id"] = answer.poll_id
        attributes["options"] = list(answer.option_ids)
        return origin.event(EventKind.POLL_ANSWER, attributes)
    if (change := update.chat_member or update.my_chat_member) is not None:
        kind = membership_kind(change)
        attributes["status"] = change.new_chat_member.status
        if update.my_chat_member is not None:
            attributes["bot"] = True
            if blocked_the_bot(change):
                attributes["blocked_bot"] = True
        else:
            origin = _Origin(change.new_chat_member.user.id, origin.chat_id)
            if change.from_user.id != change.new_chat_member.user.id:
                attributes["by"] = change.from_user.id
        return origin.event(kind, attributes)
    attributes["update"] = next((k for k, v in update.to_dict().items() if k != "update_id" and v), "unknown")
    return origin.event(OTHER_KIND, attributes)
