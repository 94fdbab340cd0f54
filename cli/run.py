"""`rapport run`: the bot and the scheduler in one process."""

from __future__ import annotations

import asyncio
import logging

import typer
from telegram.error import InvalidToken, NetworkError

from bot.app import attach_scheduler, build_application
from bot.errors import BotStartupError, KnowledgeBaseError
from bot.runner import WebhookOptions, serve
from bot.transport import NotBotApiError, without_token
from cli.common import TokenRedactingFilter, fail, get_settings, open_engine

logger = logging.getLogger(__name__)


def run(
    ctx: typer.Context,
    webhook: str | None = typer.Option(
        None, "--webhook", help="Public HTTPS URL Telegram posts updates to (default: long polling)."
    ),
    listen: str = typer.Option("0.0.0.0", "--listen", help="Interface the webhook receiver binds."),
    port: int = typer.Option(8443, "--port", help="Port the webhook receiver listens on."),
) -> None:
    """Start the bot (long polling, or a webhook verified by its secret token) and the scheduler."""
    settings = get_settings(ctx)
    if not settings.telegram_bot_token:
        fail("TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it")
    options = None
    if webhook is not None:
        if not webhook.startswith(("https://", "http://")):
            fail(f"--webhook must be a URL, got {webhook!r}")
        options = WebhookOptions(url=webhook, listen=listen, port=port, secret_token=settings.webhook_secret)
    engine = open_engine(settings)
    try:
        application = build_application(settings, engine=engine)
    except (BotStartupError, KnowledgeBaseError) as exc:
        fail(str(exc))
    attach_scheduler(application, settings)
    redact = TokenRedactingFilter([settings.telegram_bot_token]).redact
    api_url = redact(without_token(settings.telegram_api_base_url))
    try:
        asyncio.run(serve(application, webhook=options))
    except NotBotApiError as exc:
        fail(
            f"{api_url} does not answer like a Bot API server (HTTP {exc.status}, {exc.what}): "
            "check TELEGRAM_API_BASE_URL"
        )
    except InvalidToken:
        fail("Telegram rejected the bot token (Unauthorized): check TELEGRAM_BOT_TOKEN")
    except NetworkError as exc:
        fail(f"cannot reach the Bot API at {api_url}: {redact(exc.message)}")
    except OSError as exc:
        fail(f"cannot start: {exc.strerror or exc}")
    finally:
        engine.dispose()
    logger.info("bot stopped")
