"""What Bot API method handlers share: state, records, limits, and common checks."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from typing import Any

from fakeapi.errors import BotApiError, bad_request, too_many_requests
from fakeapi.limits import RateLimiter
from fakeapi.params import Params
from fakeapi.records import Recorder, SentRecord
from fakeapi.state import BotState, SimChat

__all__ = ["MethodContext"]

_BUTTON_KINDS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


class MethodContext:
    """Everything a method handler may touch.

    Args:
        state: The simulated world.
        sent: Where message-producing calls are recorded.
    """

    def __init__(self, state: BotState, sent: Recorder[SentRecord]):
        self.state = state
        self.sent = sent
        self.limiter: RateLimiter | None = None
        self.messages_per_chat: Counter[int] = Counter()
        self.strict_webhooks = False
        self._lock = threading.Lock()

    # ---- chats -----------------------------------------------------------------------
    def chat(self, params: Params, name: str = "chat_id") -> SimChat:
        """Resolve ``chat_id`` (an integer or ``@channelusername``) or answer 400."""
        raw = params.raw.get(name)
        if raw is None or raw == "":
            raise bad_request(f"{name} is empty")
        with self.state.lock:
            if isinstance(raw, str) and raw.startswith("@"):
                for chat in self.state.chats.values():
                    if chat.type != "private" and chat.username and chat.username.lower() == raw[1:].lower():
                        return chat
                raise bad_request("chat not found")
            chat_id = params.get_int(name)
            found = self.state.chats.get(chat_id) if chat_id is not None else None
        if found is None:
            raise bad_request("chat not found")
        return found

    def check_can_send(self, chat: SimChat) -> None:
        """Answer 403/400 as Telegram does when the bot may not write to ``chat``."""
        with self.state.lock:
            if chat.type == "private":
                user = self.state.users.get(chat.id)
                if user is not None and user.is_bot:
                    raise BotApiError(403, "Forbidden: bot can't send messages to bots")
                if chat.id in self.state.blocked_by:
                    raise BotApiError(403, "Forbidden: bot was blocked by the user")
                return
            status = self.state.member(chat.id, self.state.bot.id).status
        kind = {"group": "group chat", "supergroup": "supergroup chat", "channel": "channel chat"}[chat.type]
        if status == "kicked":
            raise BotApiError(403, f"Forbidden: bot was kicked from the {kind}")
        if status == "left":
            raise BotApiError(403, f"Forbidden: bot is not a member of the {kind}")
        if chat.type == "channel" and status not in ("administrator", "creator"):
            raise bad_request("need administrator rights in the channel chat")

    def count_message(self, chat: SimChat) -> None:
        """Apply the rate limits (when enforced) and count one message to ``chat``."""
        limiter = self.limiter
        if limiter is not None:
            retry_after = limiter.check(chat.id, chat.type == "private")
            if retry_after is not None:
                raise too_many_requests(retry_after)
        with self._lock:
            self.messages_per_chat[chat.id] += 1

    # ---- messages --------------------------------------------------------------------
    def find_message(self, chat_id: int, message_id: int | None) -> dict[str, Any] | None:
        """Return a stored message, or ``None``."""
        if message_id is None:
            return None
        with self.state.lock:
            return self.state.messages.get((chat_id, message_id))

    def reply_markup(self, params: Params) -> dict[str, Any] | None:
        """Validate ``reply_markup`` (inline keyboard, reply keyboard, remove, force reply)."""
        markup = params.get_obj("reply_markup")
        if markup is None:
            return None
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request(
                    'can\'t parse inline keyboard button: field "inline_keyboard" must be an Array of Arrays'
                )
            for row in rows:
                for button in row:
                    _check_button(button)
            return markup
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    def record_sent(self, method: str, message: dict[str, Any], params: Params) -> None:
        """Store the message and add it to :attr:`sent`."""
        self.state.store_message(message)
        message = copy.deepcopy(message)
        poll = message.get("poll")
        self.sent.append(
            SentRecord(
                method=method,
                chat_id=message["chat"]["id"],
                message_id=message["message_id"],
                text=message.get("text", poll["question"] if poll else None),
                reply_markup=params.get_obj("reply_markup"),
                time=time.time(),
                message=message,
                params=params.as_dict(),
            )
        )


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    kinds = [kind for kind in _BUTTON_KINDS if kind in button]
    if not kinds:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not str(button["url"]).strip():
        raise bad_request("BUTTON_URL_INVALID")
