"""Manager reports in Telegram: /stats, /segments, /insights, /campaigns."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

from telegram import Update

from analytics import activity_stats, current_segments, top_rules
from bot.admin.access import admin_in_private
from bot.admin.formatting import format_campaigns, format_insights, format_segments, format_stats
from bot.context import Context, services_of
from scheduler import recent_reports

logger = logging.getLogger(__name__)

MAX_STATS_DAYS = 366


def parse_days(args: list[str], default: int = 7) -> int | None:
    """`/stats`, `/stats 30` or `/stats 30d` → days; None when the argument is not a period."""
    if not args:
        return default
    raw = args[0].lower().removesuffix("d")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_STATS_DAYS:
        return None
    return int(raw)


async def stats(update: Update, context: Context) -> None:
    """Activity over a period: DAU/WAU/MAU, new users, questions, top intents, fallback rate."""
    message = update.effective_message
    if message is None or not await admin_in_private(update, context):
        return
    days = parse_days(context.args or [])
    if days is None:
        await message.reply_text(f"Usage: /stats [days], with 1 to {MAX_STATS_DAYS} days.")
        return
    services = services_of(context)
    await asyncio.to_thread(services.writer.flush, 2.0)
    until = datetime.now(UTC)
    report = await asyncio.to_thread(
        partial(activity_stats, exclude_users=sorted(services.admin_ids)),
        services.engine,
        until - timedelta(days=days),
        until,
    )  # staff are not community users
    await message.reply_text(format_stats(report))


async def segments(update: Update, context: Context) -> None:
    """Current segments with sizes and one-line descriptions."""
    message = update.effective_message
    if message is None or not await admin_in_private(update, context):
        return
    found = await asyncio.to_thread(current_segments, services_of(context).engine)
    await message.reply_text(format_segments(found))


async def insights(update: Update, context: Context) -> None:
    """The strongest behaviour rules in plain words."""
    message = update.effective_message
    if message is None or not await admin_in_private(update, context):
        return
    rules = await asyncio.to_thread(top_rules, services_of(context).engine, 5)
    await message.reply_text(format_insights(rules))


async def campaigns(update: Update, context: Context) -> None:
    """Status and delivery report of recent sends."""
    message = update.effective_message
    if message is None or not await admin_in_private(update, context):
        return
    services = services_of(context)
    found = await asyncio.to_thread(
        recent_reports,
        services.engine,
        now=datetime.now(UTC),
        rate_per_s=services.settings.send_rate_per_s,
        limit=5,
    )
    await message.reply_text(format_campaigns(found))
