"""/feedback: a 1–5 rating by buttons, then an optional comment, both logged as events."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.buttons import verified_button
from bot.context import Context, language_for, services_of
from bot.i18n import t

logger = logging.getLogger(__name__)

RATINGS = ("1", "2", "3", "4", "5")


async def feedback(update: Update, context: Context) -> None:
    """Offer the five rating buttons."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    codec = services_of(context).codec
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(f"{r} ★", callback_data=codec.encode("rate", r, user_id=user.id))
                for r in RATINGS
            ]
        ]
    )
    await message.reply_text(t("feedback_ask", language_for(update, context).lang), reply_markup=keyboard)


async def on_rating_button(update: Update, context: Context) -> None:
    """Thank for the rating and invite a comment."""
    data = await verified_button(update, context, "rate")
    query = update.callback_query
    if data is None or query is None:
        return
    lang = language_for(update, context).lang
    if data.arg not in RATINGS:
        await query.answer(t("button_expired", lang))
        return
    rating = int(data.arg)  # the observer logged it as a feedback event
    if context.user_data is not None:
        context.user_data.await_comment(rating)
    await query.answer()
    await query.edit_message_text(t("feedback_thanks_rating", lang, rating=rating))


async def take_feedback_comment(update: Update, context: Context) -> None:
    """Thank the user for the comment the observer logged as a feedback event."""
    message = update.effective_message
    if context.user_data is not None:
        context.user_data.clear_comment()
    if message is not None:
        await message.reply_text(t("feedback_thanks", language_for(update, context).lang))


async def skip(update: Update, context: Context) -> None:
    """End the feedback without a comment."""
    message = update.effective_message
    if context.user_data is not None:
        context.user_data.clear_comment()
    if message is not None:
        await message.reply_text(t("feedback_skipped", language_for(update, context).lang))
