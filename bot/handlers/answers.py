"""Questions and answers: free text through the NLU, answered from the knowledge base."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType

from bot.buttons import verified_button
from bot.context import Context, language_for, services_of, understanding_of
from bot.i18n import t
from bot.replies import answer_for, topic_reply

logger = logging.getLogger(__name__)


async def on_text(update: Update, context: Context) -> None:
    """Answer a question in private chat, or in a group when the bot is addressed."""
    message = update.effective_message
    understood = await understanding_of(update, context)
    if message is None or understood is None:
        return
    services = services_of(context)
    if message.chat.type != ChatType.PRIVATE and not await services.allow_group_reply(message.chat.id):
        logger.warning("not answering in group %d: its reply budget is spent", message.chat.id)
        return
    reply = answer_for(understood, language_for(update, context).lang, services.knowledge, services.codec)
    if not reply.answered:
        logger.info("unanswered message (intent %s, %.2f)", understood.intent, understood.confidence or 0.0)
    await message.reply_text(reply.text, reply_markup=reply.markup)


async def on_topic_button(update: Update, context: Context) -> None:
    """Answer the topic of a suggested or follow-up button."""
    data = await verified_button(update, context, "topic")
    query = update.callback_query
    if data is None or query is None:
        return
    services = services_of(context)
    topic = services.knowledge.topic(data.arg)
    if topic is None:  # the knowledge base changed since the button was made
        await query.answer(t("button_expired", language_for(update, context).lang))
        return
    await query.answer()
    message = query.message
    if message is None or not message.is_accessible:
        return
    reply = topic_reply(topic, language_for(update, context).lang, services.knowledge, services.codec, {})
    await context.bot.send_message(message.chat.id, reply.text, reply_markup=reply.markup)


async def on_push_button(update: Update, context: Context) -> None:
    """Acknowledge a press of a push's button (the observer has logged it as `push_click`)."""
    data = await verified_button(update, context, "push")
    query = update.callback_query
    if data is None or query is None:
        return
    await query.answer(t("push_thanks", language_for(update, context).lang))


async def on_non_text(update: Update, context: Context) -> None:
    """Tell a private-chat user that stickers, photos and the like can't be read."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(t("non_text", language_for(update, context).lang))


async def unknown_command(update: Update, context: Context) -> None:
    """Point to /help for commands the bot does not know."""
    message = update.effective_message
    if message is None:
        return
    if message.chat.type != ChatType.PRIVATE and not await services_of(context).allow_group_reply(
        message.chat.id
    ):
        return
    await message.reply_text(t("unknown_command", language_for(update, context).lang))


async def use_private_chat(update: Update, context: Context) -> None:
    """Point a personal command used in a group to the private chat."""
    message = update.effective_message
    if message is None or not await services_of(context).allow_group_reply(message.chat.id):
        return
    await message.reply_text(t("private_only", language_for(update, context).lang))
