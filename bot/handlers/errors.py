"""The one error handler: log with the traceback, then one short apology to the user."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, RetryAfter, TelegramError

from bot.context import Context, language_for
from bot.i18n import t

logger = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log the error before anything else, then apologise once where that makes sense."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("error while handling update %s", update_id, exc_info=error)
    if not isinstance(update, Update) or isinstance(error, (Forbidden, RetryAfter)):
        return  # the user can't be reached, or Telegram asked us to be quiet
    query = update.callback_query
    try:
        if query is not None:
            await query.answer(t("error", language_for(update, context).lang))
        elif (
            update.effective_message is not None
            and update.effective_chat is not None
            and update.effective_chat.type == "private"
        ):
            await update.effective_message.reply_text(t("error", language_for(update, context).lang))
    except TelegramError as exc:
        logger.warning("could not apologise for update %s: %s", update_id, exc)
