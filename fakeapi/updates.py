"""Builders for the Bot API objects that updates carry.

Pure functions over plain dicts, shaped as https://core.telegram.org/bots/api
documents them (Message, CallbackQuery, MessageReactionUpdated, PollAnswer,
ChatMemberUpdated). They hold no state; :mod:`fakeapi.simulate` allocates ids.
"""

from __future__ import annotations

import re
from typing import Any

from fakeapi.formatting import utf16_len
from fakeapi.state import SimChat, SimUser

__all__ = [
    "auto_entities",
    "callback_query_json",
    "chat_member_updated_json",
    "message_json",
    "photo_json",
    "poll_answer_json",
    "reaction_types",
    "reaction_updated_json",
    "sticker_json",
]

_ENTITY_PATTERNS = (
    ("bot_command", re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")),
    ("email", re.compile(r"(?<![\w.@])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{5,32}")),
    ("url", re.compile(r"(?<![\w@])https?://[^\s]+")),
    ("hashtag", re.compile(r"(?<![\w#])#\w+")),
)


def auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram's clients detect in user text: commands, mentions, URLs, e-mails."""
    found: list[tuple[int, int, str]] = []
    taken: list[range] = []
    for kind, pattern in _ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            span = range(match.start(), match.end())
            if any(span.start < other.stop and other.start < span.stop for other in taken):
                continue
            taken.append(span)
            found.append((match.start(), match.end(), kind))
    found.sort()
    return [
        {
            "type": kind,
            "offset": utf16_len(text[:start]),
            "length": utf16_len(text[start:end]),
        }
        for start, end, kind in found
    ]


def message_json(
    *,
    message_id: int,
    chat: SimChat,
    date: int,
    sender: SimUser | None,
    text: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    reply_markup: dict[str, Any] | None = None,
    reply_to: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a Message. Channel posts carry ``sender_chat`` instead of ``from``."""
    message: dict[str, Any] = {"message_id": message_id}
    if sender is not None and chat.type != "channel":
        message["from"] = sender.to_json()
    if chat.type == "channel":
        message["sender_chat"] = chat.to_json()
    message["chat"] = chat.to_json()
    message["date"] = date
    if reply_to is not None:
        message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
    if text is not None:
        message["text"] = text
        if entities:
            message["entities"] = entities
    if extra:
        message.update(extra)
    if reply_markup is not None and "inline_keyboard" in reply_markup:
        message["reply_markup"] = reply_markup
    return message


def sticker_json(file_id: str, unique_id: str, emoji: str) -> dict[str, Any]:
    """A regular static Sticker, as a ``sticker`` message field."""
    return {
        "file_id": file_id,
        "file_unique_id": unique_id,
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "file_size": 24_000,
    }


def photo_json(file_id: str, unique_id: str) -> list[dict[str, Any]]:
    """The ``photo`` field: PhotoSize variants from small to large."""
    return [
        {
            "file_id": f"{file_id}_{size}",
            "file_unique_id": f"{unique_id}{size}",
            "width": size,
            "height": size * 3 // 4,
            "file_size": size * 40,
        }
        for size in (90, 320, 800)
    ]


def callback_query_json(
    *, query_id: str, user: SimUser, message: dict[str, Any], data: str | None
) -> dict[str, Any]:
    """A CallbackQuery from an inline button under a bot message."""
    query: dict[str, Any] = {
        "id": query_id,
        "from": user.to_json(),
        "message": message,
        "chat_instance": str(abs(message["chat"]["id"]) * 7 + 13),
    }
    if data is not None:
        query["data"] = data
    return query


def reaction_types(emojis: list[str]) -> list[dict[str, Any]]:
    """ReactionTypeEmoji objects for the given emoji."""
    return [{"type": "emoji", "emoji": emoji} for emoji in emojis]


def reaction_updated_json(
    *,
    chat: SimChat,
    message_id: int,
    user: SimUser,
    date: int,
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
) -> dict[str, Any]:
    """A MessageReactionUpdated (non-anonymous reaction by a user)."""
    return {
        "chat": chat.to_json(),
        "message_id": message_id,
        "user": user.to_json(),
        "date": date,
        "old_reaction": old,
        "new_reaction": new,
    }


def poll_answer_json(
    *, poll_id: str, user: SimUser, option_ids: list[int], persistent_ids: list[str]
) -> dict[str, Any]:
    """A PollAnswer; an empty ``option_ids`` means the vote was retracted."""
    return {
        "poll_id": poll_id,
        "option_ids": option_ids,
        "option_persistent_ids": persistent_ids,
        "user": user.to_json(),
    }


def chat_member_updated_json(
    *,
    chat: SimChat,
    actor: SimUser,
    date: int,
    old: dict[str, Any],
    new: dict[str, Any],
) -> dict[str, Any]:
    """A ChatMemberUpdated with the old and new ChatMember objects."""
    return {
        "chat": chat.to_json(),
        "from": actor.to_json(),
        "date": date,
        "old_chat_member": old,
        "new_chat_member": new,
    }
