"""The simulated Telegram world: users, chats, members, messages, polls and updates.

Everything lives behind one re-entrant lock because HTTP handlers (server thread) and
the simulation (test or demo thread) mutate it concurrently. Listeners registered
with :meth:`BotState.add_update_listener` are told about each stored update so the
server can wake long polls and webhook delivery in its own loop.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALL_UPDATE_TYPES",
    "DEFAULT_EXCLUDED_UPDATES",
    "BotState",
    "Member",
    "PollState",
    "SimChat",
    "SimUser",
    "WebhookConfig",
]

logger = logging.getLogger(__name__)

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
# Telegram: "Specify an empty list to receive all update types except chat_member,
# message_reaction, and message_reaction_count (default)."
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass(frozen=True)
class SimUser:
    """A Telegram user (or the bot itself) as the Bot API's User object describes it."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the Bot API User object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass(frozen=True)
class SimChat:
    """A chat: ``private`` (id = user id), ``group``, ``supergroup`` or ``channel``."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the Bot API Chat object (the short form embedded in messages)."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    def full_info(self) -> dict[str, Any]:
        """Return the ChatFullInfo object that getChat answers."""
        data = self.to_json()
        data.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return data


ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


@dataclass(frozen=True)
class Member:
    """A user's membership in a chat: status plus administrator rights."""

    status: str
    rights: frozenset[str] = frozenset()
    custom_title: str | None = None

    def to_json(self, user: SimUser) -> dict[str, Any]:
        """Return the ChatMember object (Owner/Administrator/Member/Left/Banned)."""
        data: dict[str, Any] = {"status": self.status, "user": user.to_json()}
        if self.status == "creator":
            data["is_anonymous"] = False
        elif self.status == "administrator":
            data["can_be_edited"] = False
            data["is_anonymous"] = False
            for right in ADMIN_RIGHTS:
                data[right] = right in self.rights
        elif self.status == "kicked":
            data["until_date"] = 0
        if self.custom_title is not None and self.status in ("creator", "administrator"):
            data["custom_title"] = self.custom_title
        return data


@dataclass
class PollState:
    """A poll the bot sent, with the votes cast so far."""

    chat_id: int
    message_id: int
    poll: dict[str, Any]
    votes: dict[int, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookConfig:
    """The webhook set through setWebhook."""

    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None = None


class BotState:
    """All mutable simulation state, guarded by :attr:`lock`.

    Args:
        bot_user: The bot's own User.
    """

    def __init__(self, bot_user: SimUser):
        self.lock = threading.RLock()
        self.bot = bot_user
        self.users: dict[int, SimUser] = {bot_user.id: bot_user}
        self.chats: dict[int, SimChat] = {}
        self.members: dict[int, dict[int, Member]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.reactions: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
        self.polls: dict[str, PollState] = {}
        self.callback_queries: dict[str, bool] = {}
        self.blocked_by: set[int] = set()
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.webhook: WebhookConfig | None = None
        self.webhook_error: tuple[int, str] | None = None
        # Webhook delivery: POSTs made, failed (non-2xx, connection, timeout) and acknowledged,
        # and the acknowledged updates POSTed once more (`webhook_redeliver_every`: every n-th).
        self.webhook_attempts = 0
        self.webhook_failures = 0
        self.webhook_acked = 0
        self.webhook_redelivered = 0
        self.webhook_redeliver_every = 0
        self.allowed_updates: frozenset[str] | None = None
        self.pending: list[dict[str, Any]] = []
        self.dropped_updates = 0
        self._next_update_id = 1
        self._next_message_id: dict[int, int] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[], None]] = []

    # ---- ids -------------------------------------------------------------------------
    def new_message_id(self, chat_id: int) -> int:
        """Allocate the next message id in a chat (ids are per chat, increasing)."""
        with self.lock:
            value = self._next_message_id.get(chat_id, 1)
            self._next_message_id[chat_id] = value + 1
            return value

    def new_token(self, prefix: str) -> str:
        """Allocate a unique opaque id (callback query ids, poll ids, file ids)."""
        return f"{prefix}{next(self._ids):012d}"

    # ---- lookups ---------------------------------------------------------------------
    def member(self, chat_id: int, user_id: int) -> Member:
        """Return a user's membership, ``left`` when unknown; private chats have two members."""
        with self.lock:
            chat = self.chats.get(chat_id)
            if chat is not None and chat.type == "private" and user_id in (chat.id, self.bot.id):
                if user_id == self.bot.id and chat.id in self.blocked_by:
                    return Member("kicked")
                return Member("member")
            return self.members.get(chat_id, {}).get(user_id, Member("left"))

    def store_message(self, message: dict[str, Any]) -> None:
        """Remember a message so replies, edits, reactions and callbacks can find it."""
        with self.lock:
            self.messages[(message["chat"]["id"], message["message_id"])] = message

    # ---- updates ---------------------------------------------------------------------
    def add_update_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the pushing thread) after each stored update."""
        with self.lock:
            self._listeners.append(listener)

    def remove_update_listener(self, listener: Callable[[], None]) -> None:
        """Undo :meth:`add_update_listener`."""
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def accepts(self, kind: str) -> bool:
        """Whether the current allowed_updates setting lets ``kind`` through."""
        if self.allowed_updates is None:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in self.allowed_updates

    def set_allowed_updates(self, kinds: list[Any] | None) -> None:
        """Remember allowed_updates as Telegram does; ``[]`` restores the default set."""
        if kinds is None:
            return
        with self.lock:
            self.allowed_updates = frozenset(str(k) for k in kinds) if kinds else None

    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an update with the next update_id, unless allowed_updates filters it.

        Telegram filters when the update is created, so a filtered update is gone for
        good; it is counted in :attr:`dropped_updates`.
        """
        with self.lock:
            update = {"update_id": self._next_update_id, kind: payload}
            self._next_update_id += 1
            if not self.accepts(kind):
                self.dropped_updates += 1
                logger.info("dropped %s update %d (not in allowed_updates)", kind, update["update_id"])
                return update
            self.pending.append(update)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return update

    def confirm(self, offset: int) -> None:
        """Apply a getUpdates offset: forget confirmed updates (negative: keep the last -n)."""
        with self.lock:
            if offset < 0:
                self.pending = self.pending[offset:]
            else:
                self.pending = [u for u in self.pending if u["update_id"] >= offset]

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Return up to ``limit`` pending updates without confirming them."""
        with self.lock:
            return list(self.pending[:limit])

    def drop_pending(self) -> None:
        """Forget every pending update (drop_pending_updates)."""
        with self.lock:
            self.pending.clear()

    def now(self) -> int:
        """Unix time as Telegram stamps dates."""
        return int(time.time())
