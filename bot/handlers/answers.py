"""Questions and answers: free text through the NLU, answered from the knowledge base."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.addressing import without_mention
from bot.admin.broadcast import take_broadcast_text, take_broadcast_time
from bot.conversation import broadcast_draft, pending_rating
from bot.handlers.buttons import verified_button
from bot.handlers.feedback import take_feedback_comment
from bot.i18n import t
from bot.replies import answer_for, lang_of, topic_reply
from bot.services import services_of

logger = logging.getLogger(__name__)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a question in private chat, or in a group when the bot is addressed."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    if message.chat.type == "private":
        if pending_rating(context.user_data) is not None:
            await take_feedback_comment(update, context)
            return
        draft = broadcast_draft(context.user_data)
        sender_id = message.from_user.id if message.from_user else None
        if draft is not None and services_of(context).is_admin(sender_id):
            if "text" not in draft:
                await take_broadcast_text(update, context)
                return
            if await take_broadcast_time(update, context, draft):
                return
    services = services_of(context)
    understood = services.cached_understanding(update.update_id)
    if understood is None:  # the observer did not run the NLU (e.g. a handler test)
        text = without_mention(message.text, message.get_bot().username)
        understood = await services.understand(update.update_id, text or message.text)
    if message.chat.type != "private" and not services.allow_group_reply(message.chat.id):
        logger.warning("not answering in group %d: its reply budget is spent", message.chat.id)
        return
    reply = answer_for(understood, lang_of(update), services.knowledge, services.codec)
    if not reply.answered:
        logger.info("unanswered message (intent %s, %.2f)", understood.intent, understood.confidence or 0.0)
    await message.reply_text(reply.text, reply_markup=reply.markup)


async def on_topic_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the topic of a suggested or follow-up button."""
    data = await verified_button(update, context, "topic")
    query = update.callback_query
    if data is None or query is None:
        return
    services = services_of(context)
    topic = services.knowledge.topic(data.arg)
    if topic is None:  # the knowledge base changed since the button was made
        await query.answer(t("button_expired", lang_of(update)))
        return
    await query.answer()
    message = query.message
    if message is None or not message.is_accessible:
        return
    reply = topic_reply(topic, lang_of(update), services.knowledge, services.codec, {})
    await context.bot.send_message(message.chat.id, reply.text, reply_markup=reply.markup)


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tell a private-chat user that stickers, photos and the like can't be read."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(t("non_text", lang_of(update)))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point to /help for commands the bot does not know."""
    message = update.effective_message
    if message is None:
        return
    if message.chat.type != "private" and not services_of(context).allow_group_reply(message.chat.id):
        return
    await message.reply_text(t("unknown_command", lang_of(update)))


async def use_private_chat(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point a personal command used in a group to the private chat."""
    message = update.effective_message
    if message is None or not services_of(context).allow_group_reply(message.chat.id):
        return
    await message.reply_text(t("private_only", lang_of(update)))
