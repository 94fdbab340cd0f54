"""The local Bot API HTTP server and its Python-side control surface.

``http://127.0.0.1:PORT/bot<TOKEN>/<method>`` answers as Telegram's Bot API does, so a
real python-telegram-bot ``Application`` can run against it with
``base_url=server.base_url``. The same object is the simulation (users, chats,
incoming updates), the record of what the bot did, and the fault injector.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from fakeapi.context import MethodContext
from fakeapi.errors import BotApiError, bad_request
from fakeapi.events import EventSimulator
from fakeapi.faults import FaultPlan
from fakeapi.limits import RateLimiter, RateLimits
from fakeapi.methods_bot import BOT_METHODS
from fakeapi.methods_messages import MESSAGE_METHODS
from fakeapi.params import Params
from fakeapi.polling import UpdateFeed
from fakeapi.records import CallRecord, Recorder, SentRecord
from fakeapi.state import BotState, SimUser

__all__ = ["DEFAULT_TOKEN", "LocalBotAPI"]

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
_HANDLERS: dict[str, tuple[str, Callable[[MethodContext, Params], Any]]] = {
    name.lower(): (name, handler) for name, handler in {**BOT_METHODS, **MESSAGE_METHODS}.items()
}
_NOT_FOUND = BotApiError(404, "Not Found")
_UNAUTHORIZED = BotApiError(401, "Unauthorized")


def _default_bot(token: str) -> SimUser:
    prefix = token.split(":", 1)[0]
    bot_id = int(prefix) if prefix.isdigit() else 123456789
    return SimUser(bot_id, "Rapport", username="rapport_bot", is_bot=True)


class LocalBotAPI(EventSimulator):
    """A local Telegram Bot API server with simulation, records and fault injection.

    Args:
        token: The only bot token accepted; others get 401.
        bot_user: The bot's User (default: id from the token, ``@rapport_bot``).
        host: Interface to bind.
        port: TCP port; 0 picks a free one.
        strict_webhooks: Enforce Telegram's HTTPS/port rules in setWebhook (off by default
            because a local webhook receiver is plain HTTP).
        webhook_retry_delay: Seconds between failed webhook deliveries.
        latency: Round-trip time to simulate on every call, in seconds: half before the call
            is processed, half after (so a message is delivered while its answer is still on
            the way, as with a real network). Settable at any time as ``api.latency``.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_user: SimUser | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        strict_webhooks: bool = False,
        webhook_retry_delay: float = 1.0,
        latency: float = 0.0,
    ):
        user = bot_user or _default_bot(token)
        if not user.is_bot:
            raise ValueError(f"bot_user must have is_bot=True, got {user}")
        super().__init__(BotState(user))
        self.token = token
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.sent: Recorder[SentRecord] = Recorder()
        self.calls: Recorder[CallRecord] = Recorder()
        self.requests: Recorder[str] = Recorder()
        self.faults = FaultPlan()
        self.ctx = MethodContext(self.state, self.sent)
        self.ctx.strict_webhooks = strict_webhooks
        self.rate_limited_count = 0
        if latency < 0:
            raise ValueError(f"latency must be >= 0, got {latency}")
        self.latency = latency
        self.files: dict[str, bytes] = {}
        self._webhook_retry_delay = webhook_retry_delay
        self._runner: web.AppRunner | None = None
        self._feed: UpdateFeed | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- addresses -------------------------------------------------------------------
    @property
    def bot(self) -> SimUser:
        """The bot's own User."""
        return self.state.bot

    @property
    def port(self) -> int:
        """The bound TCP port (only after start)."""
        if self._port is None:
            raise RuntimeError("the server is not running; call start() or serve_in_thread()")
        return self._port

    @property
    def base_url(self) -> str:
        """PTB's ``base_url``: ``http://127.0.0.1:PORT/bot`` (the token is appended)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """PTB's ``base_file_url``: ``http://127.0.0.1:PORT/file/bot``."""
        return f"http://{self.host}:{self.port}/file/bot"

    # ---- limits and counters ---------------------------------------------------------
    def enforce_rate_limits(
        self, limits: RateLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Answer 429 like Telegram when the bot exceeds ``limits`` (default: Telegram's)."""
        self.ctx.limiter = RateLimiter(limits or RateLimits(), clock)

    def disable_rate_limits(self) -> None:
        """Stop enforcing rate limits (the default)."""
        self.ctx.limiter = None

    @property
    def messages_per_chat(self) -> dict[int, int]:
        """Messages (sendMessage/sendPoll) delivered per chat id."""
        return dict(self.ctx.messages_per_chat)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by getUpdates or the webhook."""
        with self.state.lock:
            return list(self.state.pending)

    # ---- waiting ---------------------------------------------------------------------
    async def wait_for(
        self,
        predicate: Callable[[SentRecord], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
    ) -> SentRecord:
        """Await the first sent message (index >= ``since``) matching ``predicate``."""
        return await self.sent.wait_for(predicate, timeout, since=since)

    def wait_for_blocking(
        self, predicate: Callable[[SentRecord], bool], timeout: float = 5.0, *, since: int = 0
    ) -> SentRecord:
        """Blocking :meth:`wait_for` for threads other than the server's."""
        return self.sent.wait_for_blocking(predicate, timeout, since=since)

    async def wait_for_request(
        self,
        method: str,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
    ) -> str:
        """Await the arrival (not the answer) of a call, e.g. a long-polling ``getUpdates``."""
        return await self.requests.wait_for(lambda name: name.lower() == method.lower(), timeout, since=since)

    async def wait_for_call(
        self,
        predicate: Callable[[CallRecord], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
    ) -> CallRecord:
        """Await the first API call (index >= ``since``) matching ``predicate``."""
        return await self.calls.wait_for(predicate, timeout, since=since)

    def wait_for_call_blocking(
        self, predicate: Callable[[CallRecord], bool], timeout: float = 5.0, *, since: int = 0
    ) -> CallRecord:
        """Blocking :meth:`wait_for_call` for threads other than the server's."""
        return self.calls.wait_for_blocking(predicate, timeout, since=since)

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and serve in the running event loop."""
        if self._runner is not None:
            raise RuntimeError("the server is already running")
        self._loop = asyncio.get_running_loop()
        self._feed = UpdateFeed(
            self.state, self._loop, self._webhook_retry_delay, execute_reply=self.execute_webhook_reply
        )
        self._feed.start()
        self.state.add_update_listener(self._feed.notify)
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self._port = sockets[0].getsockname()[1] if sockets else self._requested_port
        logger.info("local Bot API listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        """Release long polls, stop webhook delivery and close the listening socket."""
        if self._feed is not None:
            self.state.remove_update_listener(self._feed.notify)
            await self._feed.close()
            self._feed = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None

    async def __aenter__(self) -> LocalBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def serve_in_thread(self, startup_timeout: float = 10.0) -> Iterator[LocalBotAPI]:
        """Run the server in its own thread and event loop for the ``with`` block."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="local-bot-api", daemon=True)
        thread.start()
        if not ready.wait(startup_timeout) or failure:
            cause = failure[0] if failure else None
            raise RuntimeError("local Bot API server failed to start") from cause
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    # ---- HTTP ------------------------------------------------------------------------
    async def _read_params(self, request: web.Request) -> Params:
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.text()
                try:
                    data = json.loads(body) if body.strip() else {}
                except json.JSONDecodeError as exc:
                    raise bad_request("can't parse JSON object") from exc
                if not isinstance(data, dict):
                    raise bad_request("JSON object expected")
                raw.update(data)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        raw[key] = {"filename": value.filename, "content_type": value.content_type}
                    else:
                        raw[key] = value
        return Params(raw)

    def _answer(
        self,
        method: str,
        params: Params | None,
        started: float,
        result: Any = None,
        error: BotApiError | None = None,
    ) -> web.Response:
        status = error.error_code if error is not None else 200
        if status == 429:
            self.rate_limited_count += 1
        record = CallRecord(
            method=method,
            params=params.as_dict() if params is not None else {},
            status=status,
            description=error.description if error is not None else None,
            time=started,
            result=result,
        )
        self.calls.append(record)
        body = error.to_json() if error is not None else {"ok": True, "result": result}
        return web.json_response(body, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        started = time.time()
        requested = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return self._answer(requested, None, started, error=_UNAUTHORIZED)
        params: Params | None = None
        latency = self.latency
        try:
            params = await self._read_params(request)
            if latency > 0:
                await asyncio.sleep(latency / 2)
            response = await self._dispatch(request, requested, params, started)
        except BotApiError as exc:
            response = self._answer(requested, params, started, error=exc)
        if latency > 0:
            await asyncio.sleep(latency / 2)
        return response

    async def _dispatch(
        self, request: web.Request, requested: str, params: Params, started: float
    ) -> web.Response:
        try:
            key = requested.lower()
            if key != "getupdates" and key not in _HANDLERS:
                return self._answer(requested, params, started, error=_NOT_FOUND)
            name = "getUpdates" if key == "getupdates" else _HANDLERS[key][0]
            requested = name
            self.requests.append(name)
            fault = self.faults.take(name, _chat_id(params))
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.error is not None:
                    return self._answer(name, params, started, error=fault.error)
            if name == "getUpdates":
                assert self._feed is not None
                result = await self._feed.get_updates(params)
            else:
                result = _HANDLERS[key][1](self.ctx, params)
                if name in ("setWebhook", "deleteWebhook") and self._feed is not None:
                    self._feed.notify()
            return self._answer(name, params, started, result=result)
        except BotApiError as exc:
            return self._answer(requested, params, started, error=exc)

    def execute_webhook_reply(self, body: bytes, content_type: str) -> None:
        """Run the Bot API call a 2xx webhook response carries, as Telegram does.

        Telegram's "making requests when getting updates": a JSON body with `method` and its
        parameters is executed like a call (recorded in `calls`, a message in `sent`), and its
        result goes nowhere. Anything else is ignored, as Telegram ignores it; logged here.
        """
        started = time.time()
        if content_type != "application/json":
            logger.warning("webhook reply ignored: Content-Type %r, not application/json", content_type)
            return
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            logger.warning("webhook reply ignored: not JSON (%r)", body[:100])
            return
        requested = data.get("method") if isinstance(data, dict) else None
        key = requested.lower() if isinstance(requested, str) else ""
        if key not in _HANDLERS:
            logger.warning("webhook reply ignored: no known Bot API method in %r", body[:100])
            return
        name, handler = _HANDLERS[key]
        params = Params({k: v for k, v in data.items() if k != "method"})
        self.requests.append(name)
        try:
            result = handler(self.ctx, params)
        except BotApiError as exc:
            logger.warning("webhook reply %s failed: %s", name, exc.description)
            self._answer(name, params, started, error=exc)
            return
        self._answer(name, params, started, result=result)

    async def _handle_unknown_path(self, request: web.Request) -> web.Response:
        return web.json_response(_NOT_FOUND.to_json(), status=404)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(_UNAUTHORIZED.to_json(), status=401)
        data = self.files.get(request.match_info["path"])
        if data is None:
            return web.json_response(_NOT_FOUND.to_json(), status=404)
        return web.Response(body=data, content_type="application/octet-stream")


def _chat_id(params: Params) -> int | None:
    try:
        return params.get_int("chat_id")
    except BotApiError:
        return None
