"""/broadcast: pick a segment, write the text, see a preview with recipients and duration, confirm.

A text with `---` lines between messages is an experiment with one variant per message
(`bot.admin.variants`): the preview shows each variant, and the manager sends them all at once
(split evenly) or to a test share first, with the winner going to the rest later.

The manager's draft lives in their typed `user_data` (`bot.conversation.BroadcastDraft`)
between the steps; `bot.conversation.decide` says which step a typed message is. Every button
is signed and bound to the manager, so nobody else can confirm a send.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update

from analytics import current_segments
from bot.admin.access import admin_in_private
from bot.admin.formatting import format_duration
from bot.admin.variants import describe_buttons, parse_variants
from bot.buttons import verified_button
from bot.context import Context, services_of, turn_of
from bot.conversation import TIME_FORMAT, BroadcastDraft, parse_send_time
from bot.i18n import t
from bot.replies import MAX_MESSAGE_CHARS
from bot.services import BotServices
from scheduler import ExperimentDraft, ExperimentError, VariantDraft, segment_recipients
from scheduler.experiments import check_draft
from scheduler.planning import ALL as ALL_USERS

__all__ = [
    "TIME_FORMAT",
    "broadcast",
    "cancel",
    "offer_broadcast_time",
    "on_confirm_button",
    "on_experiment_button",
    "on_segment_button",
    "parse_send_time",
    "send_time",
    "take_broadcast_text",
]

logger = logging.getLogger(__name__)

WHEN_CHOICES = {"now": "Send now", "1h": "In 1 hour", "tmr": "Tomorrow 10:00 UTC"}
TEST_SHARE = 0.2
HOUR = timedelta(hours=1)
PICK_WINNER_AFTER = 24 * HOUR
EXPERIMENT_CHOICES = {
    "all": "All variants now (split evenly)",
    "test": f"Test on {TEST_SHARE:.0%} now, the winner to the rest after {PICK_WINNER_AFTER // HOUR} h",
}
NEEDS_SCHEDULER = "Broadcasts need the scheduler, which is not running in this process."


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


async def _recipients(services: BotServices, segment: str) -> int:
    found = await asyncio.to_thread(segment_recipients, services.engine, segment, now=datetime.now(UTC))
    return len(found)


async def broadcast(update: Update, context: Context) -> None:
    """Start a broadcast: choose the segment."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or not await admin_in_private(update, context):
        return
    services = services_of(context)
    if services.broadcasts is None:
        await message.reply_text(NEEDS_SCHEDULER)
        return
    segments = await asyncio.to_thread(current_segments, services.engine)
    names = (ALL_USERS, *(segment.name for segment in segments))
    if context.user_data is not None:
        context.user_data.broadcast = BroadcastDraft(segments=names)
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


async def on_segment_button(update: Update, context: Context) -> None:
    """Remember the chosen segment and ask for the text."""
    data = await verified_button(update, context, "bseg")
    query = update.callback_query
    if data is None or query is None:
        return
    user_data = context.user_data
    draft = user_data.broadcast if user_data is not None else None
    names = draft.segments if draft is not None else ()
    if user_data is None or not data.arg.isdigit() or int(data.arg) >= len(names):
        await query.answer(t("button_expired", "en"))
        return
    segment = names[int(data.arg)]
    user_data.broadcast = BroadcastDraft(segment=segment)  # the segment buttons are spent
    await query.answer()
    shown = "everyone" if segment == ALL_USERS else f"segment “{segment}”"
    await query.edit_message_text(f"Broadcast to {shown}. Now send me the message text (/cancel to stop).")


async def take_broadcast_text(update: Update, context: Context) -> None:
    """Store the text and show the preview with recipients, duration and the send options."""
    message, user = update.effective_message, update.effective_user
    draft = context.user_data.broadcast if context.user_data is not None else None
    if message is None or user is None or draft is None or draft.segment is None or not message.text:
        return
    if len(message.text) > MAX_MESSAGE_CHARS:
        await message.reply_text(
            f"That is longer than Telegram's {MAX_MESSAGE_CHARS} characters; send a shorter text."
        )
        return
    services = services_of(context)
    variants = parse_variants(message.text)
    if variants is not None:
        try:
            check_draft(experiment_draft(variants))
        except ExperimentError as exc:
            await message.reply_text(f"{exc}. Send the variants again, separated by a line ---.")
            return
        await _preview_variants(update, context, variants)
        return
    draft.text = message.text
    draft.recipients = await _recipients(services, draft.segment)
    duration = format_duration(draft.recipients / services.settings.send_rate_per_s)
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
        f"↑ Preview. Recipients: {draft.recipients}; sending takes about {duration} at "
        f"{services.settings.send_rate_per_s:.0f} messages/s. When should it go out? "
        f"(Or reply with a time like {(datetime.now(UTC) + timedelta(days=1)):{TIME_FORMAT}} UTC.)",
        reply_markup=InlineKeyboardMarkup(keyboard),
    )


def experiment_draft(variants: tuple[VariantDraft, ...], *, phased: bool = False) -> ExperimentDraft:
    """The experiment a Telegram draft asks for: clicks when a variant has a tracked button, else returns."""
    trackable = any(b.trackable for v in variants for b in v.buttons)
    return ExperimentDraft(
        variants,
        test_share=TEST_SHARE if phased else None,
        pick_winner_after=PICK_WINNER_AFTER if phased else None,
        goal="click" if trackable else "return",
    )


async def _preview_variants(update: Update, context: Context, variants: tuple[VariantDraft, ...]) -> None:
    """Show each variant as it will read, then offer: all at once, test share first, or cancel."""
    message, user = update.effective_message, update.effective_user
    draft = context.user_data.broadcast if context.user_data is not None else None
    if message is None or user is None or draft is None or draft.segment is None:
        return
    services = services_of(context)
    draft.variants, draft.text = variants, message.text
    draft.recipients = await _recipients(services, draft.segment)
    for key, variant in zip("ABCDEFGH", variants, strict=False):
        extra = describe_buttons(variant)
        await message.reply_text(f"Variant {key}:\n{variant.text}" + (f"\n\n{extra}" if extra else ""))
    codec = services.codec
    keyboard = [
        [InlineKeyboardButton(label, callback_data=codec.encode("bexp", key, user_id=user.id))]
        for key, label in EXPERIMENT_CHOICES.items()
    ]
    keyboard.append(
        [InlineKeyboardButton("Cancel", callback_data=codec.encode("bgo", "no", user_id=user.id))]
    )
    goal = experiment_draft(variants).goal
    await message.reply_text(
        f"↑ Preview of {len(variants)} variants. Recipients: {draft.recipients} (the holdout gets none); "
        f"users are split by a stable hash, and a conversion is a {goal} within 48 h. How should it go out?",
        reply_markup=InlineKeyboardMarkup(keyboard),
    )


async def on_experiment_button(update: Update, context: Context) -> None:
    """Schedule the previewed variants now: split evenly, or a test share first and the winner later."""
    data = await verified_button(update, context, "bexp")
    query = update.callback_query
    if data is None or query is None:
        return
    user_data = context.user_data
    draft = user_data.broadcast if user_data is not None else None
    if user_data is None or draft is None or draft.segment is None or not draft.variants:
        await query.answer(t("button_expired", "en"))
        return
    user_data.broadcast = None
    await query.answer()
    await _schedule_experiment(query, context, draft, phased=data.arg == "test", at=datetime.now(UTC))


async def _schedule_experiment(
    query: CallbackQuery, context: Context, draft: BroadcastDraft, *, phased: bool, at: datetime
) -> None:
    services = services_of(context)
    if services.broadcasts is None:
        await query.edit_message_text(NEEDS_SCHEDULER)
        return
    segment = None if draft.segment == ALL_USERS else draft.segment
    try:
        campaign_id, experiment_id = await services.broadcasts.schedule_experiment(
            segment=segment,
            draft=experiment_draft(draft.variants, phased=phased),
            at=at,
            created_by=query.from_user.id,
        )
    except ExperimentError as exc:
        await query.edit_message_text(f"Not scheduled: {exc}")
        return
    how = (
        f"{TEST_SHARE:.0%} get the variants now; the winner goes to the rest in "
        f"{PICK_WINNER_AFTER // HOUR} h (the default, A, if none is significantly better)"
        if phased
        else "the variants go out now, split evenly"
    )
    logger.info(
        "manager %d scheduled experiment #%d (campaign #%d)", query.from_user.id, experiment_id, campaign_id
    )
    await query.edit_message_text(
        f"Experiment #{experiment_id} (broadcast #{campaign_id}) scheduled for {draft.recipients} "
        f"recipients: {how}. /campaigns shows progress; `rapport experiments report {experiment_id}` "
        "the figures."
    )


async def offer_broadcast_time(update: Update, context: Context) -> None:
    """A send time typed for a previewed draft: offer a button that schedules it then."""
    message, user = update.effective_message, update.effective_user
    turn = turn_of(update, context)
    draft = context.user_data.broadcast if context.user_data is not None else None
    if message is None or user is None or draft is None or turn is None or turn.send_at is None:
        return
    at = turn.send_at
    codec = services_of(context).codec
    button = InlineKeyboardButton(
        f"Schedule for {at:{TIME_FORMAT}} UTC",
        callback_data=codec.encode("bgo", str(int(at.timestamp())), user_id=user.id),
    )
    cancel = InlineKeyboardButton("Cancel", callback_data=codec.encode("bgo", "no", user_id=user.id))
    await message.reply_text(f"Send to {draft.recipients} recipients at {at:{TIME_FORMAT}} UTC?",
                             reply_markup=InlineKeyboardMarkup([[button], [cancel]]))  # fmt: skip


async def on_confirm_button(update: Update, context: Context) -> None:
    """Schedule the previewed broadcast now or at the chosen time, or drop it."""
    data = await verified_button(update, context, "bgo")
    query = update.callback_query
    if data is None or query is None:
        return
    user_data = context.user_data
    draft = user_data.broadcast if user_data is not None else None
    if user_data is None or draft is None or draft.segment is None or draft.text is None:
        await query.answer(t("button_expired", "en"))
        return
    user_data.broadcast = None
    await query.answer()
    if data.arg == "no":
        await query.edit_message_text("Broadcast cancelled; nothing was sent.")
        return
    now = datetime.now(UTC)
    at = send_time(data.arg, now) or now
    if draft.variants:  # a typed time for variants: all of them at that time, split evenly
        await _schedule_experiment(query, context, draft, phased=False, at=at)
        return
    services = services_of(context)
    if services.broadcasts is None:
        await query.edit_message_text(NEEDS_SCHEDULER)
        return
    segment = None if draft.segment == ALL_USERS else draft.segment
    campaign_id = await services.broadcasts.schedule(
        segment=segment, text=draft.text, at=at, created_by=query.from_user.id
    )
    when = "now" if at <= now else f"at {at:{TIME_FORMAT}} UTC"
    logger.info("manager %d scheduled broadcast #%d %s", query.from_user.id, campaign_id, when)
    await query.edit_message_text(
        f"Broadcast #{campaign_id} scheduled {when} for {draft.recipients} recipients. "
        "/campaigns shows progress."
    )


async def cancel(update: Update, context: Context) -> None:
    """Drop whatever is being composed: a broadcast draft or a feedback comment."""
    message = update.effective_message
    if message is None:
        return
    user_data = context.user_data
    had_draft = had_comment = False
    if user_data is not None:
        had_draft = user_data.broadcast is not None
        user_data.broadcast = None
        had_comment = user_data.clear_comment()
    await message.reply_text("Cancelled." if had_draft or had_comment else "Nothing to cancel.")
