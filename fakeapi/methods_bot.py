"""Bot API methods about the bot itself, its webhook, commands and chats.

getMe, logOut, close, setWebhook, deleteWebhook, getWebhookInfo, the command and
description methods, getChat, getChatMember, getChatAdministrators, sendChatAction.
getUpdates lives in :mod:`fakeapi.polling` because it waits.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from fakeapi.context import MethodContext
from fakeapi.errors import bad_request
from fakeapi.params import Params
from fakeapi.state import WebhookConfig

__all__ = ["BOT_METHODS"]

_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_DESCRIPTION_LIMITS = {"description": 512, "short_description": 120}


def get_me(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """getMe: the bot's User with the bot-only capability fields."""
    return {
        **ctx.state.bot.to_json(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def log_out(ctx: MethodContext, params: Params) -> bool:
    """logOut / close: accepted; the local server has no cloud session to end."""
    return True


def set_webhook(ctx: MethodContext, params: Params) -> bool:
    """setWebhook: an empty url removes the webhook; otherwise updates are POSTed to it."""
    url = params.get_str("url", "") or ""
    secret = params.get_str("secret_token")
    if secret is not None and not _SECRET.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.get_int("max_connections", 40) or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("invalid max_connections specified")
    if url:
        parts = urlsplit(url)
        if ctx.strict_webhooks:
            if parts.scheme != "https":
                raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
            if (parts.port or 443) not in (80, 88, 443, 8443):
                raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    ctx.state.set_allowed_updates(params.get_list("allowed_updates"))
    with ctx.state.lock:
        if params.get_bool("drop_pending_updates"):
            ctx.state.drop_pending()
        ctx.state.webhook = (
            WebhookConfig(url, secret, max_connections, params.get_str("ip_address")) if url else None
        )
        ctx.state.webhook_error = None
    return True


def delete_webhook(ctx: MethodContext, params: Params) -> bool:
    """deleteWebhook: switch back to getUpdates, optionally dropping pending updates."""
    with ctx.state.lock:
        ctx.state.webhook = None
        ctx.state.webhook_error = None
        if params.get_bool("drop_pending_updates"):
            ctx.state.drop_pending()
    return True


def get_webhook_info(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """getWebhookInfo: url is empty while getUpdates is in use."""
    with ctx.state.lock:
        hook = ctx.state.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(ctx.state.pending),
        }
        if hook is None:
            return info
        if hook.ip_address:
            info["ip_address"] = hook.ip_address
        if ctx.state.webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = ctx.state.webhook_error
        info["max_connections"] = hook.max_connections
        if ctx.state.allowed_updates is not None:
            info["allowed_updates"] = sorted(ctx.state.allowed_updates)
        return info


def _command_key(params: Params) -> tuple[str, str]:
    scope = params.get_obj("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), params.get_str("language_code", "") or ""


def set_my_commands(ctx: MethodContext, params: Params) -> bool:
    """setMyCommands: 1-32 char lower-case commands with 1-256 char descriptions."""
    commands = params.get_list("commands")
    if commands is None:
        raise bad_request('parameter "commands" is required')
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    cleaned = []
    for item in commands:
        if not isinstance(item, dict) or not _COMMAND.match(str(item.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        description = str(item.get("description", "")).strip()
        if not 1 <= len(description) <= 256:
            raise bad_request(
                "command description is empty" if not description else "BOT_COMMAND_DESCRIPTION_INVALID"
            )
        cleaned.append({"command": item["command"], "description": description})
    with ctx.state.lock:
        ctx.state.commands[_command_key(params)] = cleaned
    return True


def get_my_commands(ctx: MethodContext, params: Params) -> list[dict[str, str]]:
    """getMyCommands: the list for exactly this scope and language (empty if unset)."""
    with ctx.state.lock:
        return list(ctx.state.commands.get(_command_key(params), []))


def delete_my_commands(ctx: MethodContext, params: Params) -> bool:
    """deleteMyCommands: forget the list for this scope and language."""
    with ctx.state.lock:
        ctx.state.commands.pop(_command_key(params), None)
    return True


def _set_description(kind: str, ctx: MethodContext, params: Params) -> bool:
    text = params.get_str(kind, "") or ""
    if len(text) > _DESCRIPTION_LIMITS[kind]:
        raise bad_request(f"{kind.replace('_', ' ')} is too long")
    with ctx.state.lock:
        ctx.state.descriptions[(kind, params.get_str("language_code", "") or "")] = text
    return True


def _get_description(kind: str, ctx: MethodContext, params: Params) -> dict[str, str]:
    with ctx.state.lock:
        key = (kind, params.get_str("language_code", "") or "")
        return {kind: ctx.state.descriptions.get(key, "")}


def set_my_description(ctx: MethodContext, params: Params) -> bool:
    """setMyDescription: up to 512 characters per language."""
    return _set_description("description", ctx, params)


def set_my_short_description(ctx: MethodContext, params: Params) -> bool:
    """setMyShortDescription: up to 120 characters per language."""
    return _set_description("short_description", ctx, params)


def get_my_description(ctx: MethodContext, params: Params) -> dict[str, str]:
    """getMyDescription: the BotDescription for a language."""
    return _get_description("description", ctx, params)


def get_my_short_description(ctx: MethodContext, params: Params) -> dict[str, str]:
    """getMyShortDescription: the BotShortDescription for a language."""
    return _get_description("short_description", ctx, params)


def get_chat(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """getChat: ChatFullInfo."""
    return ctx.chat(params).full_info()


def get_chat_member(ctx: MethodContext, params: Params) -> dict[str, Any]:
    """getChatMember: ChatMember of the right subtype; ``left`` for non-members."""
    chat = ctx.chat(params)
    user_id = params.get_int("user_id")
    if user_id is None:
        raise bad_request("user_id is empty")
    with ctx.state.lock:
        user = ctx.state.users.get(user_id)
        if user is None:
            raise bad_request("user not found")
        return ctx.state.member(chat.id, user_id).to_json(user)


def get_chat_administrators(ctx: MethodContext, params: Params) -> list[dict[str, Any]]:
    """getChatAdministrators: owner and administrators (never in private chats)."""
    chat = ctx.chat(params)
    if chat.type == "private":
        raise bad_request("there are no administrators in the private chat")
    with ctx.state.lock:
        return [
            member.to_json(ctx.state.users[user_id])
            for user_id, member in ctx.state.members.get(chat.id, {}).items()
            if member.status in ("creator", "administrator") and user_id in ctx.state.users
        ]


def send_chat_action(ctx: MethodContext, params: Params) -> bool:
    """sendChatAction: one of Telegram's documented actions."""
    chat = ctx.chat(params)
    if params.get_str("action") not in _ACTIONS:
        raise bad_request("wrong parameter action in request")
    ctx.check_can_send(chat)
    return True


BOT_METHODS = {
    "getMe": get_me,
    "logOut": log_out,
    "close": log_out,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "setMyDescription": set_my_description,
    "setMyShortDescription": set_my_short_description,
    "getMyDescription": get_my_description,
    "getMyShortDescription": get_my_short_description,
    "getChat": get_chat,
    "getChatMember": get_chat_member,
    "getChatAdministrators": get_chat_administrators,
    "sendChatAction": send_chat_action,
}
