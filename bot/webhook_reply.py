"""Answering a claimed webhook update in its webhook response, so the answer is sent exactly once.

A replica killed after it sent an answer over HTTP but before it marked the update's claim
done (`store.updates`) has the update taken over and answered again. Telegram's Bot API
offers the way out ("Making requests when getting updates"): the 2xx response to a webhook
delivery may carry one Bot API call (a JSON object with `method` and its parameters), which
Telegram executes only once it has that response, with no result given back. The receiver
stores that call with the claim in the statement that marks it done and answers a retry of
a done update with it again (Telegram retries only a delivery whose 2xx it did not get), so
the answer is executed once whether the replica dies before or after marking the claim done.

How a call becomes the reply: `WebhookServer` runs `process_update` inside `capturing()` (a
context variable, so concurrent updates each have their own slot), and `BotApiRequest` hands
every call the task processing the update makes to `WebhookReply.route`. A call of `ELIGIBLE`
(a method whose result the handlers do not use) is held, not sent: the handler gets a
plausible result (`plausible_result`). Any later call in the same update first sends the held
one over HTTP, so Telegram sees the calls in the handler's order, and may then be held itself;
what is held when the update has been processed is the reply. So the last call of an update is
the one sent exactly once, which is the answer for every handler here (one message, or a
callback answer followed by the edit or message that answers the button).

A handler that uses what an eligible call returns (the `message_id` of a sent message, say)
must make that call inside `over_http()`: the held call's result is made up.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from telegram.request import RequestData

__all__ = ["ELIGIBLE", "WebhookReply", "capturing", "current_reply", "over_http", "plausible_result"]

logger = logging.getLogger(__name__)

ELIGIBLE = frozenset({"sendMessage", "editMessageText", "answerCallbackQuery", "sendChatAction"})
"""Methods whose result the bot's update handlers never use (checked in bot/handlers, bot/admin)."""

Send = Callable[[str, RequestData | None], Awaitable[tuple[int, bytes]]]

_current: contextvars.ContextVar[WebhookReply | None] = contextvars.ContextVar(
    "rapport_webhook_reply", default=None
)


@dataclass(frozen=True)
class _Held:
    url: str
    method: str
    data: RequestData


def _chat_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None  # "@channelusername": no plausible Chat to make up


def _message(chat_id: int, message_id: int, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "text": str(params.get("text", "")),
    }


def plausible_result(method: str, data: RequestData | None) -> Any | None:
    """What the Bot API would plausibly return for the call; None: it cannot be a webhook reply.

    Not eligible: other methods, calls uploading files (a webhook reply is JSON), and calls
    whose chat is not a numeric id. The Message made up for sendMessage has message_id 0.
    """
    if method not in ELIGIBLE or data is None or data.contains_files:
        return None
    params = data.parameters
    if method in ("answerCallbackQuery", "sendChatAction"):
        return True
    if method == "editMessageText" and "inline_message_id" in params:
        return True
    chat_id = _chat_id(params.get("chat_id"))
    if chat_id is None:
        return None
    if method == "sendMessage":
        return _message(chat_id, 0, params)
    message_id = params.get("message_id")
    if not isinstance(message_id, int):
        return None
    return _message(chat_id, message_id, params) | {"edit_date": int(time.time())}


class WebhookReply:
    """The reply slot of one update being processed (see the module docstring).

    `flushed` counts held calls that a later call sent over HTTP.
    """

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self._held: _Held | None = None
        self._open = True
        self._over_http = 0
        self.flushed = 0

    async def route(self, url: str, data: RequestData | None, send: Send) -> tuple[int, bytes]:
        """Send the call over HTTP with `send`, or hold it as the reply and answer for Telegram."""
        if self._held is not None:
            held, self._held = self._held, None
            self.flushed += 1
            await _flush(held, send)
        method = url.rsplit("/", 1)[-1]
        result = plausible_result(method, data) if self._open and not self._over_http else None
        if result is None or data is None:
            return await send(url, data)
        self._held = _Held(url, method, data)
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def close(self) -> str | None:
        """End the capture: the held call as a webhook response body (None: no reply).

        Calls made afterwards (a handler task still running) go over HTTP.
        """
        self._open = False
        held, self._held = self._held, None
        if held is None:
            return None
        return json.dumps({"method": held.method, **held.data.parameters}, ensure_ascii=False)


async def _flush(held: _Held, send: Send) -> None:
    """Send a held call over HTTP; its handler has moved on, so a failure is only logged."""
    try:
        code, payload = await send(held.url, held.data)
    except Exception as exc:
        logger.warning("%s held for the webhook reply could not be sent: %s", held.method, exc)
        return
    if not 200 <= code < 300:
        logger.warning(
            "%s held for the webhook reply was refused: HTTP %d %s", held.method, code, payload[:200]
        )


def current_reply() -> WebhookReply | None:
    """The reply slot of the update this task is processing, if any.

    Only in the task that opened it: a task started meanwhile (a background loop started
    by the first call a handler makes) copies the context variable, and its calls are no
    answer of this update.
    """
    reply = _current.get()
    if reply is None or reply.task is not asyncio.current_task():
        return None
    return reply


@contextlib.contextmanager
def capturing() -> Iterator[WebhookReply]:
    """Hold this context's eligible calls as the webhook reply (`WebhookServer` wraps an update)."""
    reply = WebhookReply()
    token = _current.set(reply)
    try:
        yield reply
    finally:
        _current.reset(token)


@contextlib.contextmanager
def over_http() -> Iterator[None]:
    """Send the calls made in the block over HTTP, for a handler that uses their result.

    A call held earlier is sent first (order is kept); calls after the block may be held again.
    """
    reply = current_reply()
    if reply is None:
        yield
        return
    reply._over_http += 1
    try:
        yield
    finally:
        reply._over_http -= 1
