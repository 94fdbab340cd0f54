"""/broadcast: pick a segment, write the text, see a preview with recipients and duration, confirm.

The manager's draft lives in `user_data` between the steps; every button is signed and
bound to the manager, so nobody else can confirm a send.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from analytics import current_segments
from bot.admin.access import admin_in_private
from bot.admin.formatting import format_duration
from bot.conversation import BROADCAST, broadcast_draft, clear_comment, pending_rating
from bot.handlers.buttons import verified_button
from bot.i18n import t
from bot.replies import MAX_MESSAGE_CHARS
from bot.services import BotServices, services_of
from scheduler import segment_recipients
from scheduler.planning import ALL as ALL_USERS

logger = logging.getLogger(__name__)

WHEN_CHOICES = {"now": "Send now", "1h": "In 1 hour", "tmr": "Tomorrow 10:00 UTC"}
TIME_FORMAT = "%Y-%m-%d %H:%M"


def send_time(choice: str, now: datetime) -> datetime | None:
    """When a "now", "1h", "tmr" or Unix-time choice sends; None for anything else."""
    if choice == "now":
        return now
    if choice == "1h":
        return now + timedelta(hours=1)
    if choice == "tmr":
        return (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    if choice.isdigit():
        return datetime.fromtimestamp(int(choice), UTC)
    return None


def parse_send_time(text: str, now: datetime) -> datetime | None:
    """`2026-12-01 10:00` (UTC) in the future, else None."""
    try:
        at = datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return at if at > now else None


async def _recipients(services: BotServices, segment: str) -> int:
    found = await asyncio.to_thread(segment_recipients, services.engine, segment, now=datetime.now(UTC))
    return len(found)


async def broadcast(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Start a broadcast: choose the segment."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or not await admin_in_private(update, context):
        return
    services = services_of(context)
    if services.broadcasts is None:
        await message.reply_text("Broadcasts need the scheduler, which is not running in this process.")
        return
    segments = await asyncio.to_thread(current_segments, services.engine)
    names = [ALL_USERS, *(segment.name for segment in segments)]
    if context.user_data is not None:
        context.user_data[BROADCAST] = {"segments": names}
    everyone = await _recipients(services, ALL_USERS)
    labels = [f"Everyone ({everyone})", *(f"{s.name} ({s.size})" for s in segments)]
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    label, callback_data=services.codec.encode("bseg", str(i), user_id=user.id)
                )
            ]
            for i, label in enumerate(labels)
        ]
    )
    await message.reply_text("Who should receive the broadcast?", reply_markup=keyboard)


async def on_segment_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Remember the chosen segment and ask for the text."""
    data = await verified_button(update, context, "bseg")
    query = update.callback_query
    draft = broadcast_draft(context.user_data)
    if data is None or query is None:
        return
    names = draft.get("segments", []) if draft else []
    if draft is None or not data.arg.isdigit() or int(data.arg) >= len(names):
        await query.answer(t("button_expired", "en"))
        return
    segment = names[int(data.arg)]
    draft.clear()
    draft["segment"] = segment
    await query.answer()
    shown = "everyone" if segment == ALL_USERS else f"segment “{segment}”"
    await query.edit_message_text(f"Broadcast to {shown}. Now send me the message text (/cancel to stop).")


async def take_broadcast_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Store the text and show the preview with recipients, duration and the send options."""
    message, user = update.effective_message, update.effective_user
    draft = broadcast_draft(context.user_data)
    if message is None or user is None or draft is None or not message.text:
        return
    if len(message.text) > MAX_MESSAGE_CHARS:
        await message.reply_text(
            f"That is longer than Telegram's {MAX_MESSAGE_CHARS} characters; send a shorter text."
        )
        return
    services = services_of(context)
    draft["text"] = message.text
    recipients = await _recipients(services, draft["segment"])
    draft["recipients"] = recipients
    duration = format_duration(recipients / services.settings.send_rate_per_s)
    codec = services.codec
    keyboard = [
        [InlineKeyboardButton(label, callback_data=codec.encode("bgo", key, user_id=user.id))]
        for key, label in WHEN_CHOICES.items()
    ]
    keyboard.append(
        [InlineKeyboardButton("Cancel", callback_data=codec.encode("bgo", "no", user_id=user.id))]
    )
    await message.reply_text(message.text)  # the preview: exactly what users will see
    await message.reply_text(
        f"↑ Preview. Recipients: {recipients}; sending takes about {duration} at "
        f"{services.settings.send_rate_per_s:.0f} messages/s. When should it go out? "
        f"(Or reply with a time like {(datetime.now(UTC) + timedelta(days=1)):{TIME_FORMAT}} UTC.)",
        reply_markup=InlineKeyboardMarkup(keyboard),
    )


async def take_broadcast_time(
    update: Update, context: ContextTypes.DEFAULT_TYPE, draft: dict[str, Any]
) -> bool:
    """A typed send time for a previewed draft: offer a button for it; False if not a time."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or not message.text:
        return False
    at = parse_send_time(message.text, datetime.now(UTC))
    if at is None:
        return False
    codec = services_of(context).codec
    button = InlineKeyboardButton(
        f"Schedule for {at:{TIME_FORMAT}} UTC",
        callback_data=codec.encode("bgo", str(int(at.timestamp())), user_id=user.id),
    )
    cancel = InlineKeyboardButton("Cancel", callback_data=codec.encode("bgo", "no", user_id=user.id))
    await message.reply_text(f"Send to {draft['recipients']} recipients at {at:{TIME_FORMAT}} UTC?",
                             reply_markup=InlineKeyboardMarkup([[button], [cancel]]))  # fmt: skip
    return True


async def on_confirm_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Schedule the previewed broadcast now or at the chosen time, or drop it."""
    data = await verified_button(update, context, "bgo")
    query = update.callback_query
    if data is None or query is None:
        return
    draft = broadcast_draft(context.user_data)
    if draft is None or "text" not in draft:
        await query.answer(t("button_expired", "en"))
        return
    if context.user_data is not None:
        context.user_data.pop(BROADCAST, None)
    await query.answer()
    if data.arg == "no":
        await query.edit_message_text("Broadcast cancelled; nothing was sent.")
        return
    now = datetime.now(UTC)
    at = send_time(data.arg, now) or now
    services = services_of(context)
    if services.broadcasts is None:
        await query.edit_message_text("Broadcasts need the scheduler, which is not running in this process.")
        return
    segment = None if draft["segment"] == ALL_USERS else draft["segment"]
    campaign_id = await services.broadcasts.schedule(
        segment=segment, text=draft["text"], at=at, created_by=query.from_user.id
    )
    when = "now" if at <= now else f"at {at:{TIME_FORMAT}} UTC"
    logger.info("manager %d scheduled broadcast #%d %s", query.from_user.id, campaign_id, when)
    await query.edit_message_text(
        f"Broadcast #{campaign_id} scheduled {when} for {draft['recipients']} recipients. "
        "/campaigns shows progress."
    )


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Drop whatever is being composed: a broadcast draft or a feedback comment."""
    message = update.effective_message
    if message is None:
        return
    had_draft = context.user_data is not None and context.user_data.pop(BROADCAST, None) is not None
    had_comment = pending_rating(context.user_data) is not None
    clear_comment(context.user_data)
    await message.reply_text("Cancelled." if had_draft or had_comment else "Nothing to cancel.")
