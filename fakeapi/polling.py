"""getUpdates long polling and webhook delivery, both driven by new-update wake-ups.

Updates are pushed from any thread; :meth:`UpdateFeed.notify` hops into the server
loop with ``call_soon_threadsafe`` so waiting long polls and the webhook sender wake
at once instead of polling on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from fakeapi.errors import BotApiError
from fakeapi.params import Params
from fakeapi.state import BotState, WebhookConfig

__all__ = ["ExecuteReply", "UpdateFeed"]

ExecuteReply = Callable[[bytes, str], None]

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_TERMINATED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


class UpdateFeed:
    """Serves pending updates to getUpdates callers or to the webhook, in one loop.

    Args:
        state: The shared state whose pending queue is served.
        loop: The server's event loop.
        webhook_retry_delay: Seconds between failed webhook deliveries.
        execute_reply: Runs the Bot API call a 2xx webhook response carries in its body
            (`body`, `content_type`), as Telegram does ("making requests when getting updates").
    """

    def __init__(
        self,
        state: BotState,
        loop: asyncio.AbstractEventLoop,
        webhook_retry_delay: float = 1.0,
        execute_reply: ExecuteReply | None = None,
    ):
        self.state = state
        self.execute_reply = execute_reply
        self.loop = loop
        self.webhook_retry_delay = webhook_retry_delay
        self._poll_event = asyncio.Event()
        self._hook_event = asyncio.Event()
        self._generation = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: set[int] = set()
        self._retry_at: dict[int, float] = {}

    # ---- wake-ups --------------------------------------------------------------------
    def _wake(self) -> None:
        self._poll_event.set()
        self._hook_event.set()

    def notify(self) -> None:
        """Thread-safe: tell waiting pollers and the webhook sender about a new update."""
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # loop already closed: the server is gone
            logger.debug("update pushed after the server loop closed")

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the webhook sender task (idle while no webhook is set)."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._task = self.loop.create_task(self._deliver_forever())

    async def close(self) -> None:
        """Release waiting long polls and stop the webhook sender."""
        self._closing = True
        self._wake()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    # ---- getUpdates ------------------------------------------------------------------
    async def get_updates(self, params: Params) -> list[dict[str, Any]]:
        """getUpdates: confirm by offset, then wait up to ``timeout`` s for updates.

        A newer getUpdates call ends an older waiting one with 409 Conflict, as
        Telegram does; this also releases long polls abandoned by a stopping client.
        """
        if self.state.webhook is not None:
            raise BotApiError(409, _WEBHOOK_ACTIVE)
        offset = params.get_int("offset")
        limit = min(max(params.get_int("limit", 100) or 100, 1), 100)
        timeout = max(params.get_float("timeout", 0.0) or 0.0, 0.0)
        self.state.set_allowed_updates(params.get_list("allowed_updates"))
        if offset is not None:
            self.state.confirm(offset)
        self._generation += 1
        mine = self._generation
        self._poll_event.set()
        await asyncio.sleep(0)
        deadline = self.loop.time() + timeout
        while True:
            if mine != self._generation:
                raise BotApiError(409, _TERMINATED)
            self._poll_event.clear()
            updates = self.state.take(limit)
            remaining = deadline - self.loop.time()
            if updates or self._closing or remaining <= 0:
                return updates
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_event.wait(), remaining)

    # ---- webhook ----------------------------------------------------------------------
    async def _deliver_forever(self) -> None:
        """Keep up to the webhook's ``max_connections`` deliveries in flight, as Telegram does.

        Each pending update is POSTed with the secret header; a non-2xx answer, a connection
        error or a timeout leaves it pending and it is re-sent after ``webhook_retry_delay``
        (other updates go on meanwhile, so one failing update does not stall the rest). With
        ``state.webhook_redeliver_every = n``, every n-th acknowledged update is POSTed once
        more, as Telegram does when it did not see the 200 (a lost answer).

        The Bot API call a 2xx response carries is executed (`execute_reply`) when that
        response is the one "Telegram" got: not for a lost answer, whose re-sent delivery's
        response is executed instead (and a failed re-send leaves the update pending again).
        """
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self._closing:
                self._hook_event.clear()
                hook = self.state.webhook
                wait: float | None = None
                if hook is not None and self._session is not None:
                    for update, due in self._due(hook.max_connections - len(self._in_flight)):
                        if due > 0:
                            wait = due if wait is None else min(wait, due)
                            continue
                        self._in_flight.add(update["update_id"])
                        task = self.loop.create_task(self._deliver(hook, update))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hook_event.wait(), wait)
        finally:
            for task in tasks:
                task.cancel()

    def _due(self, room: int) -> list[tuple[dict[str, Any], float]]:
        """Pending updates not in flight: ``(update, seconds until due)``, at most ``room`` due now."""
        now = self.loop.time()
        found: list[tuple[dict[str, Any], float]] = []
        ready = 0
        with self.state.lock:
            pending = list(self.state.pending)
        for update in pending:
            if update["update_id"] in self._in_flight:
                continue
            due = self._retry_at.get(update["update_id"], now) - now
            if due <= 0:
                if ready >= room:
                    continue
                ready += 1
            found.append((update, max(due, 0.0)))
        return found

    async def _post(self, hook: WebhookConfig, update: dict[str, Any]) -> tuple[bool, str, bytes, str]:
        """POST the update: (2xx, the error otherwise, the response body, its content type)."""
        assert self._session is not None
        headers = {SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
        self.state.webhook_attempts += 1
        try:
            async with self._session.post(hook.url, json=update, headers=headers) as response:
                body = await response.read()
                return (
                    200 <= response.status < 300,
                    f"Wrong response from the webhook: {response.status} {response.reason}",
                    body,
                    response.content_type,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, f"Connection failed: {exc.__class__.__name__}", b"", ""

    def _executed(self, body: bytes, content_type: str) -> None:
        if self.execute_reply is not None and body.strip():
            self.execute_reply(body, content_type)

    async def _deliver(self, hook: WebhookConfig, update: dict[str, Any]) -> None:
        update_id = update["update_id"]
        try:
            ok, error, body, content_type = await self._post(hook, update)
            with self.state.lock:
                if ok:
                    self.state.webhook_acked += 1
                    every = self.state.webhook_redeliver_every
                    redeliver = every > 0 and self.state.webhook_acked % every == 0
                    if not redeliver:
                        self.state.pending = [u for u in self.state.pending if u["update_id"] != update_id]
                else:
                    self.state.webhook_error = (self.state.now(), error)
                    self.state.webhook_failures += 1
                    redeliver = False
            if ok and redeliver:  # the answer "got lost": Telegram sends the update again
                self.state.webhook_redelivered += 1
                ok, error, body, content_type = await self._post(hook, update)
                if ok:
                    with self.state.lock:
                        self.state.pending = [u for u in self.state.pending if u["update_id"] != update_id]
            if ok:
                self._retry_at.pop(update_id, None)
                self._executed(body, content_type)
            else:
                logger.info("webhook delivery of update %d failed: %s", update_id, error)
                self._retry_at[update_id] = self.loop.time() + self.webhook_retry_delay
        finally:
            self._in_flight.discard(update_id)
            self._hook_event.set()
