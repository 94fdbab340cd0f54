"""Button presses: the verification every button handler starts with, and the answer to stale ones.

It sits below `bot/handlers/` and `bot/admin/`, which both have buttons and never import each other.
"""

from __future__ import annotations

import logging

from telegram import Update

from bot.callbacks import CallbackData
from bot.context import Context, language_for, services_of
from bot.i18n import t

logger = logging.getLogger(__name__)


async def verified_button(update: Update, context: Context, action: str) -> CallbackData | None:
    """The verified data of this button press, or None after telling the user it expired."""
    query = update.callback_query
    if query is None:
        return None
    data = services_of(context).codec.decode(query.data, user_id=query.from_user.id)
    if data is None or data.action != action:
        logger.info("user %d pressed a forged or stale button %r", query.from_user.id, query.data)
        await query.answer(t("button_expired", language_for(update, context).lang), show_alert=False)
        return None
    return data


async def on_stale_button(update: Update, context: Context) -> None:
    """Answer any button no other handler accepted: forged, stale or from an old version."""
    query = update.callback_query
    if query is None:
        return
    user_id = query.from_user.id
    logger.info("user %d pressed an unknown button %r", user_id, query.data)
    await query.answer(t("button_expired", language_for(update, context).lang))
