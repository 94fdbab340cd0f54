"""Running the bot: long polling or a verified webhook, until asked to stop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from telegram.error import TelegramError
from telegram.ext import Application

from bot.app import ALLOWED_UPDATES
from bot.context import services_for
from bot.replicas import UpdateLedger
from bot.transport import is_poll_conflict
from bot.webhook import WebhookServer
from scheduler.service import default_owner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookOptions:
    """Where Telegram posts updates and where this process listens for them."""

    url: str
    listen: str = "0.0.0.0"
    port: int = 8443
    secret_token: str | None = None
    dedup: bool = False
    """Claim each update in the database before handling it (`bot.replicas`)."""
    claim_timeout_s: float = 30.0
    """Age after which another replica takes an unfinished claim over."""
    reply: bool = True
    """With `dedup`: answer in the webhook response (`bot.webhook_reply`)."""

    @property
    def path(self) -> str:
        """The URL path of the webhook (the receiver serves exactly this path)."""
        return urlparse(self.url).path or "/"


@asynccontextmanager
async def running(
    application: Application,  # type: ignore[type-arg]
    *,
    webhook: WebhookOptions | None = None,
    poll_timeout: int = 1,
    **polling: Any,
) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Run the bot inside the current event loop until the block exits.

    Mirrors `run_polling`'s order: initialize, post_init, start, receive updates; on exit
    stop receiving, stop, post_stop, shutdown, post_shutdown (which flushes the event log).
    post_stop stops the scheduler's deliveries while the bot's HTTP client is still open, so
    a send in flight gets its answer (closing the client under it turns a delivered message
    into a read error). With `webhook` it registers the webhook with a secret token and
    serves it instead of polling.
    """
    await application.initialize()
    receiver: WebhookServer | None = None
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        updater = application.updater
        assert updater is not None
        if webhook is None:
            await updater.start_polling(
                poll_interval=0.0,
                timeout=poll_timeout,
                allowed_updates=ALLOWED_UPDATES,
                error_callback=_polling_error,
                **polling,
            )
        else:
            secret = webhook.secret_token or secrets.token_urlsafe(32)
            ledger = None
            if webhook.dedup:
                services = services_for(application)
                ledger = UpdateLedger(
                    services.engine, replica=default_owner(), claim_timeout_s=webhook.claim_timeout_s
                )
                services.ledger = ledger
                services.share_flood_limits()
                # Every update now waits for its event to be durable before it is answered:
                # a batch delay would be added to each answer (while a write is in flight the
                # next events still gather into one batch).
                services.writer.max_delay_s = 0.0
            receiver = WebhookServer(
                application,
                secret_token=secret,
                path=webhook.path,
                ledger=ledger,
                reply_in_response=webhook.reply,
            )
            await receiver.start(webhook.listen, webhook.port)
            await application.bot.set_webhook(
                webhook.url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
            )
            logger.info("webhook set to %s", webhook.url)
        try:
            yield application
        finally:
            if receiver is not None:
                await receiver.stop()
            if updater.running:
                await updater.stop()
            if application.running:
                await application.stop()
                if application.post_stop is not None:
                    await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


def _polling_error(exc: TelegramError) -> None:
    """PTB's polling error callback: one line for a second poller, a traceback for the rest."""
    if is_poll_conflict(exc):  # `BotApiRequest` said it once and backs the next poll off
        logger.debug("getUpdates conflict: %s", exc.message)
        return
    logger.error("polling for updates failed: %s", exc, exc_info=exc)


async def serve(
    application: Application,  # type: ignore[type-arg]
    *,
    webhook: WebhookOptions | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set), then shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            pass
    try:
        async with running(application, webhook=webhook):
            await stop.wait()
            logger.info("stopping: finishing in-flight updates and flushing the event log")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
