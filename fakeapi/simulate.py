"""The simulation API: create users and chats and queue the updates they would cause.

Tests and the demo call these methods from Python (never over HTTP). Each method
builds documented Bot API shapes via :mod:`fakeapi.updates`, stores user messages
so the bot can reply to or react on them, and returns the queued Update dict.
"""

from __future__ import annotations

from typing import Any

from fakeapi import updates as build
from fakeapi.errors import SimulationError
from fakeapi.records import SentRecord
from fakeapi.state import BotState, Member, SimChat, SimUser

__all__ = ["MessageRef", "Simulator"]

MessageRef = SentRecord | dict[str, Any] | tuple[int, int]
"""A message given as a SentRecord, a Message dict, or ``(chat_id, message_id)``."""

_CHAT_TYPES = ("private", "group", "supergroup", "channel")


class Simulator:
    """Users, chats and incoming updates of the simulated Telegram.

    Args:
        state: The shared state (the server answers the bot from the same object).
    """

    def __init__(self, state: BotState):
        self.state = state

    # ---- world -----------------------------------------------------------------------
    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = None,
        is_bot: bool = False,
    ) -> SimUser:
        """Create a user and their private chat with the bot (as if they pressed Start)."""
        if user_id <= 0:
            raise SimulationError(f"user ids are positive, got {user_id}")
        user = SimUser(user_id, first_name, username, last_name, language_code, is_bot)
        with self.state.lock:
            self.state.users[user_id] = user
            self.state.chats[user_id] = SimChat(
                user_id, "private", username=username, first_name=first_name, last_name=last_name
            )
        return user

    def add_chat(
        self,
        chat_id: int,
        chat_type: str,
        *,
        title: str | None = None,
        username: str | None = None,
        bot_status: str = "member",
    ) -> SimChat:
        """Create a group, supergroup or channel with the bot in it (``bot_status``).

        Group ids are negative; supergroup and channel ids look like ``-100...``.
        """
        if chat_type not in _CHAT_TYPES or chat_type == "private":
            raise SimulationError(f"add_chat makes group/supergroup/channel chats, got {chat_type!r}")
        if chat_id >= 0:
            raise SimulationError(f"group and channel ids are negative, got {chat_id}")
        chat = SimChat(chat_id, chat_type, title=title or f"Chat {chat_id}", username=username)
        with self.state.lock:
            self.state.chats[chat_id] = chat
            self.state.members.setdefault(chat_id, {})[self.state.bot.id] = Member(
                bot_status,
                frozenset({"can_delete_messages"}) if bot_status == "administrator" else frozenset(),
            )
        return chat

    def set_member(
        self,
        chat_id: int,
        user_id: int,
        status: str = "member",
        *,
        rights: tuple[str, ...] = (),
        custom_title: str | None = None,
    ) -> None:
        """Set a membership silently (no update): creator, administrator, member, left, kicked."""
        if status not in ("creator", "administrator", "member", "left", "kicked"):
            raise SimulationError(f"unknown member status {status!r}")
        with self.state.lock:
            self._chat(chat_id)
            self._user(user_id)
            self.state.members.setdefault(chat_id, {})[user_id] = Member(
                status, frozenset(rights), custom_title
            )

    def _user(self, user: SimUser | int) -> SimUser:
        user_id = user.id if isinstance(user, SimUser) else user
        found = self.state.users.get(user_id)
        if found is None:
            raise SimulationError(f"unknown user {user_id}; call add_user first")
        return found

    def _chat(self, chat: SimChat | int | None, user: SimUser | None = None) -> SimChat:
        if chat is None:
            if user is None:
                raise SimulationError("a chat is needed")
            chat = user.id
        chat_id = chat.id if isinstance(chat, SimChat) else chat
        found = self.state.chats.get(chat_id)
        if found is None:
            raise SimulationError(f"unknown chat {chat_id}; call add_chat first")
        return found

    def _message(self, ref: MessageRef) -> dict[str, Any]:
        if isinstance(ref, SentRecord):
            key = (ref.chat_id, ref.message_id)
        elif isinstance(ref, dict):
            key = (ref["chat"]["id"], ref["message_id"])
        else:
            key = ref
        message = self.state.messages.get(key)
        if message is None:
            raise SimulationError(f"no message {key[1]} in chat {key[0]}")
        return message

    # ---- messages --------------------------------------------------------------------
    def _user_message(
        self,
        user: SimUser | int,
        chat: SimChat | int | None,
        text: str | None,
        *,
        reply_to: MessageRef | None = None,
        entities: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self.state.lock:
            sender = self._user(user)
            target = self._chat(chat, sender)
            if target.type == "channel":
                raise SimulationError("users post in channels via channel_post")
            message = build.message_json(
                message_id=self.state.new_message_id(target.id),
                chat=target,
                date=self.state.now(),
                sender=sender,
                text=text,
                entities=entities if entities is not None else build.auto_entities(text or ""),
                reply_to=self._message(reply_to) if reply_to is not None else None,
                extra=extra,
            )
            self.state.store_message(message)
            return self.state.push_update("message", message)

    def user_says(
        self,
        user: SimUser | int,
        text: str,
        chat: SimChat | int | None = None,
        *,
        reply_to: MessageRef | None = None,
        entities: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Queue a text message from ``user`` (private chat unless ``chat`` is given).

        Entities (commands, mentions, URLs) are detected as Telegram clients do unless
        ``entities`` is given.
        """
        if not text:
            raise SimulationError("Telegram does not deliver empty text messages")
        return self._user_message(user, chat, text, reply_to=reply_to, entities=entities)

    def user_command(
        self,
        user: SimUser | int,
        command: str,
        args: str = "",
        chat: SimChat | int | None = None,
    ) -> dict[str, Any]:
        """Queue ``/command args``; in groups the ``/command@botname`` form is used."""
        with self.state.lock:
            target = self._chat(chat, self._user(user))
            name = command.lstrip("/")
            if target.type != "private" and self.state.bot.username:
                name = f"{name}@{self.state.bot.username}"
        text = f"/{name}" + (f" {args}" if args else "")
        return self._user_message(user, target, text)

    def user_mentions_bot(self, user: SimUser | int, chat: SimChat | int, text: str = "") -> dict[str, Any]:
        """Queue a group message that mentions the bot by @username (mention entity)."""
        if not self.state.bot.username:
            raise SimulationError("the bot has no username to mention")
        mention = f"@{self.state.bot.username}"
        full = f"{mention} {text}".strip() if mention not in text else text
        return self._user_message(user, chat, full)

    def user_replies(self, user: SimUser | int, to: MessageRef, text: str) -> dict[str, Any]:
        """Queue a reply (in the same chat) to a message, typically one the bot sent."""
        with self.state.lock:
            original = self._message(to)
        return self._user_message(user, original["chat"]["id"], text, reply_to=to)

    def user_edits(self, user: SimUser | int, message: MessageRef, new_text: str) -> dict[str, Any]:
        """Queue an ``edited_message`` for a message the user sent earlier."""
        with self.state.lock:
            sender = self._user(user)
            original = self._message(message)
            if original.get("from", {}).get("id") != sender.id:
                raise SimulationError("users can only edit their own messages")
            edited = {
                **original,
                "text": new_text,
                "edit_date": self.state.now(),
            }
            edited.pop("entities", None)
            if entities := build.auto_entities(new_text):
                edited["entities"] = entities
            self.state.store_message(edited)
            return self.state.push_update("edited_message", edited)

    def channel_post(self, chat: SimChat | int, text: str) -> dict[str, Any]:
        """Queue a ``channel_post`` in a channel the bot is a member of."""
        with self.state.lock:
            channel = self._chat(chat)
            if channel.type != "channel":
                raise SimulationError(f"chat {channel.id} is a {channel.type}, not a channel")
            message = build.message_json(
                message_id=self.state.new_message_id(channel.id),
                chat=channel,
                date=self.state.now(),
                sender=None,
                text=text,
                entities=build.auto_entities(text),
            )
            self.state.store_message(message)
            return self.state.push_update("channel_post", message)

    def user_sticker(
        self, user: SimUser | int, emoji: str = "👍", chat: SimChat | int | None = None
    ) -> dict[str, Any]:
        """Queue a sticker message (no text)."""
        file_id = self.state.new_token("CAACAgIAAxk")
        sticker = build.sticker_json(file_id, file_id[-10:], emoji)
        return self._user_message(user, chat, None, entities=[], extra={"sticker": sticker})

    def user_photo(
        self, user: SimUser | int, caption: str | None = None, chat: SimChat | int | None = None
    ) -> dict[str, Any]:
        """Queue a photo message (no text; optional caption with caption_entities)."""
        file_id = self.state.new_token("AgACAgIAAxk")
        extra: dict[str, Any] = {"photo": build.photo_json(file_id, file_id[-10:])}
        if caption:
            extra["caption"] = caption
            if entities := build.auto_entities(caption):
                extra["caption_entities"] = entities
        return self._user_message(user, chat, None, entities=[], extra=extra)
