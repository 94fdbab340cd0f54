"""Bot API methods that create or change messages.

sendMessage, editMessageText, editMessageReplyMarkup, deleteMessage,
answerCallbackQuery, sendPoll, stopPoll and setMessageReaction, with Telegram's
validation and error descriptions.
"""

from __future__ import annotations

from typing import Any

from fakeapi import updates as build
from fakeapi.context import MethodContext
from fakeapi.errors import bad_request
from fakeapi.formatting import finish_text, parse_text, utf16_len
from fakeapi.params import Params
from fakeapi.state import PollState, SimChat

__all__ = ["MESSAGE_METHODS"]

MAX_TEXT = 4096
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
# The emoji Telegram accepts as reactions (Bot API "ReactionTypeEmoji"), listed here so this
# server depends on no client library.
_ALLOWED_EMOJI = frozenset(
    " ".join(
        (
            "👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 ",
            "🥱 🥴 😍 🐳 ❤️‍🔥 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 ",
            "🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ ",
            "💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂️ 🤷 🤷‍♀️ 😡",
        )
    ).split()
)


def _text_and_entities(params: Params, name: str = "text") -> tuple[str, list[dict[str, Any]]]:
    raw = params.get_str(name) or ""
    given = params.get_list("entities")
    if given is not None:
        text, entities = raw, [e for e in given if isinstance(e, dict)]
    else:
        text, entities = parse_text(raw, params.get_str("parse_mode"))
    text, entities = finish_text(text, entities)
    if not text:
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


def _reply_target(ctx: MethodContext, params: Params, chat_id: int) -> dict[str, Any] | None:
    reply = params.get_obj("reply_parameters")
    if reply is None and "reply_to_message_id" in params:
        reply = {
            "message_id": params.get_int("reply_to_message_id"),
            "allow_sending_without_reply": params.get_bool("allow_sending_without_reply"),
        }
    if reply is None:
        return None
    target_chat = Params(reply).get_int("chat_id", chat_id)
    message = ctx.find_message(target_chat or chat_id, Params(reply).get_int("message_id"))
    if message is None and not Params(reply).get_bool("allow_sending_without_reply"):
        raise bad_request("message to be replied not found")
    return message


def _bot_message(ctx: MethodContext, params: Params, chat: SimChat, **content: Any) -> dict[str, Any]:
    """A new message from the bot in `chat`: markup and reply target read, limits checked and counted.

    Shared by every send method, so each one checks the chat and counts against the rate
    limits only after its own parameters were validated.
    """
    markup = ctx.reply_markup(params)
    reply_to = _reply_target(ctx, params, chat.id)
    ctx.check_can_send(chat)
    ctx.count_message(chat)
    return build.message_json(
        message_id=ctx.state.new_message_id(chat.id),
        chat=chat,
        date=ctx.state.now(),
        sender=ctx.state.bot,
        reply_markup=markup,
        reply_to=reply_to,
        **content,
    )


def send_message(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """sendMessage: validate, rate-limit, store and record a text message."""
    chat = ctx.chat(params)
    text, entities = _text_and_entities(params)
    message = _bot_message(ctx, params, chat, text=text, entities=entities)
    ctx.record_sent("sendMessage", message, params)
    return message


def _editable(ctx: MethodContext, params: Params) -> dict[str, Any]:
    if "inline_message_id" in params:
        raise bad_request("MESSAGE_ID_INVALID")
    chat = ctx.chat(params)
    message_id = params.get_int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = ctx.find_message(chat.id, message_id)
    if message is None:
        raise bad_request("message to edit not found")
    if message.get("from", {}).get("id") != ctx.state.bot.id and "sender_chat" not in message:
        raise bad_request("message can't be edited")
    return message


def _edited(ctx: MethodContext, message: dict[str, Any], **changes: Any) -> dict[str, Any]:
    edited = {k: v for k, v in message.items() if k not in ("entities", "reply_markup")}
    edited.update({k: v for k, v in changes.items() if v})
    edited["edit_date"] = ctx.state.now()
    return edited


def edit_message_text(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """editMessageText: replace text; an omitted reply_markup removes the inline keyboard."""
    message = _editable(ctx, params)
    text, entities = _text_and_entities(params)
    markup = ctx.reply_markup(params)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    inline = markup if markup and "inline_keyboard" in markup else None
    same = (
        message.get("text") == text
        and message.get("entities", []) == entities
        and message.get("reply_markup") == inline
    )
    if same:
        raise bad_request(_NOT_MODIFIED)
    edited = _edited(ctx, message, text=text, entities=entities, reply_markup=inline)
    ctx.record_sent("editMessageText", edited, params)
    return edited


def edit_message_reply_markup(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """editMessageReplyMarkup: replace or (when omitted) remove the inline keyboard."""
    message = _editable(ctx, params)
    markup = ctx.reply_markup(params)
    inline = markup if markup and "inline_keyboard" in markup else None
    if message.get("reply_markup") == inline:
        raise bad_request(_NOT_MODIFIED)
    edited = _edited(ctx, message, entities=message.get("entities"), reply_markup=inline)
    ctx.record_sent("editMessageReplyMarkup", edited, params)
    return edited


def delete_message(ctx: MethodContext, params: Params) -> bool:
    """deleteMessage: bots delete anything in private chats, others' messages only as admins."""
    chat = ctx.chat(params)
    message = ctx.find_message(chat.id, params.get_int("message_id"))
    if message is None:
        raise bad_request("message to delete not found")
    own = message.get("from", {}).get("id") == ctx.state.bot.id
    if chat.type != "private" and not own:
        member = ctx.state.member(chat.id, ctx.state.bot.id)
        if member.status != "creator" and "can_delete_messages" not in member.rights:
            raise bad_request("message can't be deleted")
    with ctx.state.lock:
        ctx.state.messages.pop((chat.id, message["message_id"]), None)
    return True


def answer_callback_query(ctx: MethodContext, params: Params) -> bool:
    """answerCallbackQuery: each query can be answered once."""
    query_id = params.get_str("callback_query_id")
    with ctx.state.lock:
        answered = ctx.state.callback_queries.get(query_id or "")
        if answered is None or answered:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        ctx.state.callback_queries[query_id or ""] = True
    return True


def _poll_options(params: Params) -> list[dict[str, Any]]:
    raw = params.get_list("options")
    if not raw:
        raise bad_request("poll must have at least 1 option")
    if len(raw) > 12:
        raise bad_request("poll can't have more than 12 options")
    options: list[dict[str, Any]] = []
    for item in raw:
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str) or not text.strip():
            raise bad_request("poll options must be non-empty")
        if len(text) > 100:
            raise bad_request("poll options length must not exceed 100")
        options.append({"text": text, "voter_count": 0, "persistent_id": str(len(options))})
    return options


def _correct_options(params: Params, count: int) -> list[int]:
    given = params.get_list("correct_option_ids")
    if given is None and "correct_option_id" in params:
        given = [params.get_int("correct_option_id")]
    if (
        not given
        or not all(isinstance(i, int) and 0 <= i < count for i in given)
        or given != sorted(set(given))
    ):
        raise bad_request("wrong correct option ID specified")
    return list(given)


def send_poll(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """sendPoll: regular or quiz poll; anonymous unless is_anonymous=false."""
    chat = ctx.chat(params)
    question = (params.get_str("question") or "").strip()
    if not question:
        raise bad_request("poll question must be non-empty")
    if len(question) > 300:
        raise bad_request("poll question length must not exceed 300")
    options = _poll_options(params)
    poll_type = params.get_str("type", "regular")
    if poll_type not in ("regular", "quiz"):
        raise bad_request("wrong poll type specified")
    anonymous = params.get_bool("is_anonymous", True)
    if chat.type == "channel" and not anonymous:
        raise bad_request("non-anonymous polls can't be sent to channel chats")
    poll: dict[str, Any] = {
        "id": str(5_000_000_000_000_000 + int(ctx.state.new_token(""))),
        "question": question,
        "options": options,
        "total_voter_count": 0,
        "is_closed": params.get_bool("is_closed"),
        "is_anonymous": anonymous,
        "type": poll_type,
        "allows_multiple_answers": params.get_bool("allows_multiple_answers"),
        "allows_revoting": params.get_bool("allows_revoting", poll_type == "regular"),
        "members_only": params.get_bool("members_only"),
    }
    if poll_type == "quiz":
        poll["correct_option_ids"] = _correct_options(params, len(options))
    for name in ("open_period", "close_date"):
        if name in params:
            poll[name] = params.get_int(name)
    message = _bot_message(ctx, params, chat, extra={"poll": poll})
    with ctx.state.lock:
        ctx.state.polls[poll["id"]] = PollState(chat.id, message["message_id"], poll)
    ctx.record_sent("sendPoll", message, params)
    return message


def stop_poll(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """stopPoll: close a poll the bot sent and return its final state."""
    chat = ctx.chat(params)
    message = ctx.find_message(chat.id, params.get_int("message_id"))
    poll = message.get("poll") if message else None
    if message is None or poll is None or poll["id"] not in ctx.state.polls:
        raise bad_request("message with poll to stop not found")
    with ctx.state.lock:
        entry = ctx.state.polls[poll["id"]]
        if entry.poll["is_closed"]:
            raise bad_request("poll has already been closed")
        entry.poll["is_closed"] = True
        return dict(entry.poll, options=[dict(o) for o in entry.poll["options"]])


def set_message_reaction(ctx: MethodContext, params: Params) -> bool:
    """setMessageReaction: bots may set at most one reaction, from the allowed emoji."""
    chat = ctx.chat(params)
    message = ctx.find_message(chat.id, params.get_int("message_id"))
    if message is None:
        raise bad_request("message to react not found")
    reactions = params.get_list("reaction") or []
    if len(reactions) > 1:
        raise bad_request("REACTIONS_TOO_MANY")
    for reaction in reactions:
        if not isinstance(reaction, dict) or reaction.get("type") not in ("emoji", "custom_emoji", "paid"):
            raise bad_request("REACTION_INVALID")
        if reaction["type"] == "emoji" and reaction.get("emoji") not in _ALLOWED_EMOJI:
            raise bad_request("REACTION_INVALID")
        if reaction["type"] == "custom_emoji" and not str(reaction.get("custom_emoji_id", "")).isdigit():
            raise bad_request("REACTION_INVALID")
    with ctx.state.lock:
        key = (chat.id, message["message_id"], ctx.state.bot.id)
        ctx.state.reactions[key] = list(reactions)
    return True


MESSAGE_METHODS = {
    "sendMessage": send_message,
    "editMessageText": edit_message_text,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "answerCallbackQuery": answer_callback_query,
    "sendPoll": send_poll,
    "stopPoll": stop_poll,
    "setMessageReaction": set_message_reaction,
}
