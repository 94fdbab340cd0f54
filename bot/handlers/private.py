"""Private-chat commands of every user: /start, /help, /privacy, /stop, /forget."""

from __future__ import annotations

import asyncio
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.buttons import verified_button
from bot.context import Context, language_for, services_of, writes_in
from bot.i18n import t
from store import EventLogBehindError, EventRecord
from store.links import LinkRefusal, PayloadRejected
from store.models import utcnow
from store.product import redeem_payload
from store.vocabulary import EventKind

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
    if context.args:  # a deep link: https://t.me/<bot>?start=<payload>
        await _link_account(update, context, context.args[0], lang)


_REFUSAL_KEYS = {LinkRefusal.TAKEN: "link_taken", LinkRefusal.NOT_CONFIGURED: "link_unavailable"}


async def _link_account(update: Update, context: Context, payload: str, lang: str) -> None:
    """Redeem a deep-link payload: link the user to a product account once, or refuse politely.

    Forged, expired and reused payloads get the same answer (nothing to learn from it); a
    payload that is not a link at all (e.g. a referral code) gets none. Every outcome is logged
    as an `account_link` event.
    """
    message, user = update.effective_message, update.effective_user
    assert message is not None and user is not None
    services = services_of(context)
    attributes: dict[str, object]
    try:
        result = await asyncio.to_thread(
            redeem_payload, services.engine, payload, user.id, secret=services.settings.link_secret
        )
    except PayloadRejected as exc:
        logger.warning("refused a /start link payload from user %d: %s", user.id, exc)
        attributes = {"outcome": exc.reason.value}
        if exc.reason is not LinkRefusal.MALFORMED:
            await message.reply_text(t(_REFUSAL_KEYS.get(exc.reason, "link_refused"), lang))
    else:
        attributes = {"outcome": "linked" if result.new else "already_linked", "attached": result.attached}
        logger.info(
            "user %d linked to account %s (%d waiting events)", user.id, result.account_id, result.attached
        )
        await message.reply_text(t("link_done" if result.new else "link_already", lang))
    services.log_update_event(
        update,
        EventRecord(
            user_id=user.id,
            chat_id=message.chat.id,
            ts=utcnow(),
            kind=EventKind.ACCOUNT_LINK,
            attributes=attributes,
        ),
    )


async def help_command(update: Update, context: Context) -> None:
    """List what the bot can do (and the manager commands to managers)."""
    message, user = update.effective_message, update.effective_user
    if message is None:
        return
    services = services_of(context)
    if message.chat.type != "private" and not await services.allow_group_reply(message.chat.id):
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
