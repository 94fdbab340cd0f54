"""Flood control ahead of everything else: a flooding user's messages stop in group -2.

Each addressed message counts against the sender's sliding window (`bot.flood.FloodGuard`).
Over the limit, the message is logged as throttled and goes no further: not understood, not
answered, not logged a second time by the observer. The first throttled message of a burst
gets one warning in private chat; the rest are dropped quietly.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop

from bot.context import Context, services_of
from bot.conversation import known_language
from bot.describe import throttled_event
from bot.flood import FloodVerdict
from bot.i18n import t

logger = logging.getLogger(__name__)


async def throttle(update: Update, context: Context) -> None:
    """Let the message through, or log it as throttled and stop all further handlers.

    Registered for new messages addressed to the bot (every private message, mentions and
    replies in groups); messages without a sender (channel posts) are not counted.

    Raises:
        ApplicationHandlerStop: the sender is over the flood limit.
    """
    message = update.message
    user = message.from_user if message is not None else None
    if message is None or user is None or message.chat.type == ChatType.CHANNEL:
        return
    services = services_of(context)
    verdict = await services.flood.acheck(user.id)
    if verdict is FloodVerdict.OK:
        return
    services.log_update_event(update, throttled_event(message))
    if verdict is FloodVerdict.WARN:
        logger.warning("user %d is flooding (over %d messages)", user.id, services.flood.max_messages)
        if message.chat.type == ChatType.PRIVATE:
            # Not read, so not told from its text: the language the user last wrote in, else the client's.
            lang = known_language(context.user_data, user.language_code).lang
            await message.reply_text(t("flood", lang))
    raise ApplicationHandlerStop
