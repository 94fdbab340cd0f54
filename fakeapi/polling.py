"""getUpdates long polling and webhook delivery, both driven by new-update wake-ups.

Updates are pushed from any thread; :meth:`UpdateFeed.notify` hops into the server
loop with ``call_soon_threadsafe`` so waiting long polls and the webhook sender wake
at once instead of polling on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from fakeapi.errors import BotApiError
from fakeapi.params import Params
from fakeapi.state import BotState

__all__ = ["UpdateFeed"]

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
    """

    def __init__(self, state: BotState, loop: asyncio.AbstractEventLoop, webhook_retry_delay: float = 1.0):
        self.state = state
        self.loop = loop
        self.webhook_retry_delay = webhook_retry_delay
        self._poll_event = asyncio.Event()
        self._hook_event = asyncio.Event()
        self._generation = 0
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

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

    # ---- webhook ---------------------------------------------------------------------
    async def _deliver_forever(self) -> None:
        while not self._closing:
            self._hook_event.clear()
            delivered = await self._deliver_pending()
            if not delivered:
                await self._hook_event.wait()

    async def _deliver_pending(self) -> bool:
        """Send pending updates one by one; return False when there is nothing to do."""
        hook = self.state.webhook
        updates = self.state.take(1) if hook is not None else []
        if hook is None or not updates or self._session is None:
            return False
        update = updates[0]
        headers = {SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
        try:
            async with self._session.post(hook.url, json=update, headers=headers) as response:
                await response.read()
                ok = 200 <= response.status < 300
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, error = False, f"Connection failed: {exc.__class__.__name__}"
        with self.state.lock:
            if ok:
                if self.state.pending and self.state.pending[0]["update_id"] == update["update_id"]:
                    self.state.pending.pop(0)
                return True
            self.state.webhook_error = (self.state.now(), error)
        logger.info("webhook delivery of update %d failed: %s", update["update_id"], error)
        await asyncio.sleep(self.webhook_retry_delay)
        return True
