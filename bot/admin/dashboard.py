"""/dashboard: a manager gets a one-time login link to the web dashboard (and a Mini App button on https)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update, WebAppInfo

from bot.admin.access import admin_in_private
from bot.context import Context, services_of
from store.logins import LOGIN_TTL, dashboard_secret, issue_login_token, login_url

logger = logging.getLogger(__name__)


async def dashboard(update: Update, context: Context) -> None:
    """Reply with a signed, single-use login link valid for ten minutes."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or not await admin_in_private(update, context):
        return
    services = services_of(context)
    settings = services.settings
    token = await asyncio.to_thread(
        issue_login_token, services.engine, dashboard_secret(settings), user_id=user.id, now=datetime.now(UTC)
    )
    base = settings.resolved_dashboard_url
    url = login_url(base, token)
    minutes = int(LOGIN_TTL.total_seconds() // 60)
    markup = None
    if base.startswith("https://"):
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Open the dashboard", web_app=WebAppInfo(f"{base}/webapp"))]]
        )
    logger.info("issued a dashboard login link to manager %d", user.id)
    await message.reply_text(
        f"Your one-time dashboard link (works once, for {minutes} minutes):\n{url}",
        reply_markup=markup,
        # Link previews fetch the URL; the link page needs a press (or script) to log in anyway.
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
