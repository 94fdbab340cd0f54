"""Who may use the manager commands: admin ids from settings, in private chat only."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType

from bot.context import Context, language_for, services_of
from bot.i18n import t

logger = logging.getLogger(__name__)


async def admin_in_private(update: Update, context: Context) -> bool:
    """True for a manager in private chat; otherwise a polite refusal, logged as an attempt.

    The observer has already logged the command with `admin: false`; the warning here
    makes refused attempts visible in the operator's log as well.
    """
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return False
    lang = language_for(update, context).lang
    if not services_of(context).is_admin(user.id):
        logger.warning("refused manager command %r from user %d", message.text, user.id)
        await message.reply_text(t("not_admin", lang))
        return False
    if message.chat.type != ChatType.PRIVATE:
        await message.reply_text(t("private_only", lang))
        return False
    return True
