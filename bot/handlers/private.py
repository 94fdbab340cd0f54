"""Private-chat commands of every user: /start, /help, /privacy, /stop, /forget."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.buttons import verified_button
from bot.context import Context, language_for, services_of, writes_in
from bot.i18n import t
from store import EventLogBehindError

logger = logging.getLogger(__name__)


async def start(update: Update, context: Context) -> None:
    """Welcome the user, create them, and resume pushes if they had opted out."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = language_for(update, context).lang
    was_opted_out = await services_of(context).users.start(user, writes_in=writes_in(context))
    key = "welcome_back" if was_opted_out else "welcome"
    await message.reply_text(t(key, lang, name=user.first_name))


async def help_command(update: Update, context: Context) -> None:
    """List what the bot can do (and the manager commands to managers)."""
    message, user = update.effective_message, update.effective_user
    if message is None:
        return
    services = services_of(context)
    if message.chat.type != "private" and not services.allow_group_reply(message.chat.id):
        return
    lang = language_for(update, context).lang
    text = t("help", lang)
    if user is not None and services.is_admin(user.id) and message.chat.type == "private":
        text += t("admin_help", lang)
    await message.reply_text(text)


async def privacy(update: Update, context: Context) -> None:
    """Explain what is stored, why, and how to remove it."""
    message = update.effective_message
    if message is None:
        return
    lang = language_for(update, context).lang
    policy = t("text_on" if services_of(context).settings.store_text else "text_off", lang)
    await message.reply_text(t("privacy", lang, text_policy=policy))


async def stop(update: Update, context: Context) -> None:
    """Opt the user out of pushes and broadcasts until the next /start."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    await services_of(context).users.stop(user, writes_in=writes_in(context))
    await message.reply_text(t("stopped", language_for(update, context).lang))


async def forget(update: Update, context: Context) -> None:
    """Ask for confirmation before deleting everything stored about the user."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = language_for(update, context).lang
    codec = services_of(context).codec
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t("forget_yes", lang), callback_data=codec.encode("forget", "yes", user_id=user.id)
                ),
                InlineKeyboardButton(
                    t("forget_no", lang), callback_data=codec.encode("forget", "no", user_id=user.id)
                ),
            ]
        ]
    )
    await message.reply_text(t("forget_confirm", lang), reply_markup=keyboard)


async def on_forget_button(update: Update, context: Context) -> None:
    """Delete the user's data on "yes", keep it on "no"."""
    data = await verified_button(update, context, "forget")
    query = update.callback_query
    if data is None or query is None:
        return
    lang = language_for(update, context).lang
    await query.answer()
    if data.arg != "yes":
        await query.edit_message_text(t("forget_cancelled", lang))
        return
    try:
        await services_of(context).users.forget(query.from_user.id)
    except EventLogBehindError:
        logger.warning("forget of user %d refused: the event log is behind", query.from_user.id)
        await query.edit_message_text(t("forget_later", lang))
        return
    context.application.drop_user_data(query.from_user.id)  # drafts and comments due go too
    await query.edit_message_text(t("forgotten", lang))
