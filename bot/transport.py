"""The bot's HTTP requests: a URL that is no Bot API server, and a second poller with our token.

`BotApiRequest` is PTB's `HTTPXRequest` with two checks PTB leaves to the caller:
- every Bot API answer is a JSON object; anything else (an HTML page, an empty 404 from a
  wrong `TELEGRAM_API_BASE_URL`) raises `NotBotApiError` at once, instead of PTB logging a
  `JSONDecodeError` traceback with the whole page, or calling an empty 404 a rejected token;
- a 409 "terminated by other getUpdates request" (another process polls with the same
  token, e.g. a standby) is said in one warning line, and the next getUpdates waits, doubling
  up to `CONFLICT_BACKOFF_MAX_S`, instead of fighting the other poller once a second.

While a claimed webhook update is processed (`bot.webhook_reply.capturing`), its calls go
through that update's reply slot, which may hold one as the webhook reply instead of sending it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from typing import Any

from telegram.error import TelegramError
from telegram.request import HTTPXRequest, RequestData

from bot.webhook_reply import current_reply

logger = logging.getLogger(__name__)

CONFLICT_BACKOFF_MIN_S = 1.0
CONFLICT_BACKOFF_MAX_S = 60.0
CONFLICT_QUIET_S = 60.0  # this long without a conflict ends the back-off
CONFLICT_WARN_EVERY_S = 600.0
_TERMINATED = b"terminated by other getUpdates request"
_TOKEN_IN_URL = re.compile(r"/bot[^/]+")


class NotBotApiError(TelegramError):
    """The server at the Bot API URL answered something that is not a Bot API answer."""

    def __init__(self, url: str, status: int, what: str) -> None:
        super().__init__(f"{url} answered HTTP {status} with {what}, not a Bot API JSON object")
        self.url = url
        self.status = status
        self.what = what


def _describe(payload: bytes) -> str:
    text = payload.strip()
    if not text:
        return "an empty body"
    if text[:1] == b"<":
        return "an HTML page" if b"<html" in text[:512].lower() else "markup"
    return f"{len(payload)} bytes of non-JSON content"


def without_token(url: str) -> str:
    """The URL with its `/bot<token>` path segment shortened to `/bot…`."""
    return _TOKEN_IN_URL.sub("/bot…", url)


class BotApiRequest(HTTPXRequest):
    """`HTTPXRequest` that refuses non-Bot-API answers and backs off a getUpdates conflict."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conflict_wait = 0.0
        self._last_conflict = -math.inf
        self._last_warning = -math.inf
        self.conflicts = 0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make the request; see the module docstring for the two checks."""
        reply = current_reply()
        if reply is not None:

            async def send(url: str, request_data: RequestData | None) -> tuple[int, bytes]:
                return await self._checked(
                    url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
                )

            return await reply.route(url, request_data, send)
        return await self._checked(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )

    async def _checked(
        self,
        url: str,
        method: str,
        request_data: RequestData | None,
        read_timeout: Any,
        write_timeout: Any,
        connect_timeout: Any,
        pool_timeout: Any,
    ) -> tuple[int, bytes]:
        polling = url.endswith("/getUpdates")
        if polling and self._conflict_wait:
            await asyncio.sleep(self._conflict_wait)
        code, payload = await super().do_request(
            url,
            method,
            request_data=request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if payload.lstrip()[:1] != b"{":
            raise NotBotApiError(without_token(url).rsplit("/", 1)[0], code, _describe(payload))
        if polling:
            self._note_poll(code, payload)
        return code, payload

    def _note_poll(self, code: int, payload: bytes) -> None:
        now = time.monotonic()
        if code == 409 and _TERMINATED in payload:
            self.conflicts += 1
            self._last_conflict = now
            if now - self._last_warning >= CONFLICT_WARN_EVERY_S:
                self._last_warning = now
                logger.warning(
                    "another process is polling with this bot token (409 Conflict): backing off up "
                    "to %.0fs between polls while it runs (is a second `rapport run` up?)",
                    CONFLICT_BACKOFF_MAX_S,
                )
            self._conflict_wait = min(
                CONFLICT_BACKOFF_MAX_S, max(CONFLICT_BACKOFF_MIN_S, 2 * self._conflict_wait)
            )
        elif 200 <= code < 300 and self._conflict_wait and now - self._last_conflict > CONFLICT_QUIET_S:
            logger.info("no polling conflict for %.0fs: polling at the normal pace again", CONFLICT_QUIET_S)
            self._conflict_wait = 0.0


def is_poll_conflict(exc: BaseException) -> bool:
    """Whether a polling error is the 409 of a second poller (already logged by the request)."""
    return isinstance(exc, TelegramError) and "terminated by other getUpdates request" in exc.message
