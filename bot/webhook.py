"""A webhook receiver that checks Telegram's secret token before trusting an update.

Telegram sends the secret given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`;
anything without it (or with a wrong one) is not from Telegram: it gets 403 and a
warning in the log, and never reaches the handlers. Any body that is not one readable
update (not JSON, too deeply nested, not an object) gets 400.

Why our own receiver and not PTB's `Updater.start_webhook(secret_token=...)` (PTB 22):
- PTB compares the secret with `!=`, which leaks its prefix through timing; this one uses
  `hmac.compare_digest`;
- PTB's handler calls `json.loads` unguarded, so malformed JSON and a 100,000-deep body
  (RecursionError) answer 500 with a traceback, and Telegram keeps re-sending them; here
  they answer 400 and are dropped;
- the answer is ours to time: the event log can be flushed before the update is acknowledged.

With an `UpdateLedger` (replicas on one database, `bot.replicas`) each update is claimed
before it is handled, handled in the request (so the answer waits for it), and acknowledged
only once its events are durable (written, or spooled to disk) and its
claim is marked done. A retry of a handled update gets 200 without handling; one still in
hand elsewhere gets 503, which Telegram retries later. The database being down while
claiming also answers 503: nothing was handled, Telegram keeps the update.

With `reply_in_response` (`RAPPORT_WEBHOOK_REPLY`), an update's answer travels in the 200
itself (`bot.webhook_reply`): Telegram executes it only on getting that response, the claim
keeps it, and a retry of the done update is answered with it again, so the answer is
executed exactly once even when a replica dies between answering and marking the claim done.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.context import services_for
from bot.replicas import UpdateLedger
from bot.webhook_reply import capturing
from store.updates import Claim

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RETRY_AFTER_S = 1
WEBHOOK_CONCURRENCY = 40
"""Updates a claiming receiver handles at once: Telegram's default `max_connections`."""


def derived_secret(token: str) -> str:
    """A webhook secret every replica of one bot derives alike (Telegram allows `[A-Za-z0-9_-]`).

    Each replica calls setWebhook at start; a random secret per process would leave every
    replica but the last one rejecting Telegram's requests.
    """
    return hashlib.sha256(b"rapport-webhook-secret\x00" + token.encode()).hexdigest()


class WebhookServer:
    """Serves `POST <path>` and queues verified updates into the application.

    Args:
        application: The initialised bot application (its `update_queue` is fed).
        secret_token: The secret registered with setWebhook.
        path: The URL path Telegram posts to.
        ledger: Claim updates in the database before handling them (replicas); None: queue
            every verified update and acknowledge at once, as before.
        reply_in_response: With a ledger: answer each update in its webhook response.
    """

    def __init__(
        self,
        application: Application,  # type: ignore[type-arg]
        *,
        secret_token: str,
        path: str = "/telegram",
        ledger: UpdateLedger | None = None,
        reply_in_response: bool = False,
    ) -> None:
        self._application = application
        self._ledger = ledger
        self._reply_in_response = reply_in_response
        self._slots = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        self._secret = secret_token.encode()
        self.path = path if path.startswith("/") else f"/{path}"
        self.rejected = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), self._secret):
            self.rejected += 1
            logger.warning(
                "webhook request from %s %s: rejected with 403",
                request.remote,
                "without the secret token" if given is None else "with a wrong secret token",
            )
            return web.Response(status=403, text="Forbidden")
        try:
            payload: Any = json.loads(await request.text())
            if not isinstance(payload, dict):
                raise TypeError(f"expected a JSON object, got {type(payload).__name__}")
            update = Update.de_json(payload, self._application.bot)
        except RecursionError:
            logger.warning("webhook request with a nested body too deep to read: rejected with 400")
            return web.Response(status=400, text="Bad Request")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.warning("webhook request with an unreadable update: %s", str(exc)[:200])
            return web.Response(status=400, text="Bad Request")
        if self._ledger is None:
            await self._application.update_queue.put(update)
            return web.Response(status=200)
        return await self._handle_claimed(update, self._ledger)

    async def _handle_claimed(self, update: Update, ledger: UpdateLedger) -> web.Response:
        """Claim, handle, make durable, finish; 200 only when all four happened (or were done before)."""
        try:
            claim = await ledger.claim(update)
        except Exception as exc:
            logger.warning("update %d: cannot claim it (%s): answered 503", update.update_id, exc)
            return _retry_later()
        if claim is Claim.DONE:
            logger.debug("update %d: a retry of a handled update, acknowledged", update.update_id)
            if not self._reply_in_response:
                return web.Response(status=200)
            try:
                stored = await ledger.reply_of(update.update_id)
            except Exception as exc:
                logger.warning("update %d: cannot read its reply (%s): answered 503", update.update_id, exc)
                return _retry_later()
            return _acknowledge(stored)
        if claim is Claim.BUSY:
            logger.info(
                "update %d: claimed (here or by another replica) and not finished: answered 503",
                update.update_id,
            )
            return _retry_later()
        application = self._application
        # Not through PTB's update processor (CONCURRENT_UPDATES at once): an update here also
        # waits for its event to be durable, so a handful of slots would leave the replica
        # idle; Telegram keeps at most `max_connections` (40 by default) requests in flight.
        async with self._slots:
            if self._reply_in_response:
                with capturing() as slot:
                    await application.process_update(update)
                reply = slot.close()
            else:
                await application.process_update(update)
                reply = None
        if not await ledger.durable(update.update_id, services_for(application).writer):
            # The events are in memory only: not acknowledged. The claim stays unfinished, so a
            # retry after the claim timeout is taken over and finds out what reached the log.
            logger.warning("update %d: event log not durable: answered 503", update.update_id)
            return _retry_later()
        try:
            await ledger.finish(update.update_id, reply=reply)
        except Exception as exc:
            # Not answered either: the reply is dropped with the 503, and the update taken
            # over after the claim timeout is handled, and answered, again.
            logger.warning(
                "update %d: handled, but cannot mark it done (%s): answered 503", update.update_id, exc
            )
            return _retry_later()
        return _acknowledge(reply)

    async def start(self, listen: str, port: int) -> None:
        """Bind and serve."""
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, listen, port).start()
        logger.info("webhook receiver listening on %s:%d%s", listen, port, self.path)

    async def stop(self) -> None:
        """Stop accepting requests."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _acknowledge(reply: str | None) -> web.Response:
    """200, with the Bot API call Telegram is to execute when it gets it (if any)."""
    if reply is None:
        return web.Response(status=200)
    return web.Response(status=200, text=reply, content_type="application/json")


def _retry_later() -> web.Response:
    return web.Response(status=503, text="Retry later", headers={"Retry-After": str(RETRY_AFTER_S)})
