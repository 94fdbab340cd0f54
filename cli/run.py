"""`rapport run`: the bot and the scheduler in one process."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import typer
from telegram.error import InvalidToken, NetworkError

from bot.app import attach_scheduler, build_application
from bot.errors import BotStartupError, KnowledgeBaseError
from bot.runner import WebhookOptions, serve
from bot.transport import NotBotApiError, without_token
from bot.webhook import derived_secret
from cli.common import TokenRedactingFilter, fail, get_settings, open_engine
from cli.dashboard import serve_dashboard_beside

logger = logging.getLogger(__name__)


TELEGRAM_WEBHOOK_PORTS = (443, 80, 88, 8443)
"""The only ports Telegram posts webhooks to (Bot API, setWebhook)."""


TELEGRAM_API_HOST = "api.telegram.org"


def webhook_url_problem(url: str, *, local_api: bool = False) -> str | None:
    """Why Telegram would refuse this webhook URL, in one line; None when it is acceptable.

    A local Bot API server (`telegram-bot-api --local`, or the project's `fakeapi`) also takes
    plain-HTTP webhooks on any port, which is how replicas behind a load balancer on one host
    are tested: `local_api` allows those.
    """
    parts = urlsplit(url)
    if local_api and parts.scheme in ("http", "https") and parts.hostname:
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            return f"--webhook has an invalid port: {url!r}"
        return None
    if parts.scheme == "http":
        return f"--webhook must be an https:// URL (Telegram posts webhooks over HTTPS only), got {url!r}"
    if parts.scheme != "https" or not parts.hostname:
        return f"--webhook must be a URL, got {url!r}"
    try:
        port = parts.port or 443
    except ValueError:
        return f"--webhook has an invalid port: {url!r}"
    if port not in TELEGRAM_WEBHOOK_PORTS:
        ports = ", ".join(map(str, TELEGRAM_WEBHOOK_PORTS))
        return f"--webhook port {port} is not one Telegram posts to ({ports}): {url!r}"
    return None


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
        local_api = urlsplit(settings.telegram_api_base_url).hostname != TELEGRAM_API_HOST
        problem = webhook_url_problem(webhook, local_api=local_api)
        if problem is not None:
            fail(problem)
        options = WebhookOptions(
            url=webhook,
            listen=listen,
            port=port,
            # The same in every replica: each one registers the webhook at start.
            secret_token=settings.webhook_secret or derived_secret(settings.telegram_bot_token),
            dedup=settings.webhook_dedup,
            claim_timeout_s=settings.webhook_claim_timeout_s,
            reply=settings.webhook_reply,
        )
    engine = open_engine(settings)
    try:
        application = build_application(settings, engine=engine)
    except (BotStartupError, KnowledgeBaseError) as exc:
        fail(str(exc))
    attach_scheduler(application, settings)
    stop_dashboard = serve_dashboard_beside(settings, engine)
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
        stop_dashboard()
        engine.dispose()
    logger.info("bot stopped")
