"""Routing: which update goes to which handler, in one place.

Groups run in order for every update, at most one handler each:

- group -2, `bot.throttle`: a flooding user's message is logged as throttled and stops here;
- group -1, `bot.observer`: every other update is logged as exactly one event;
- group 0: the handler that answers it (users' commands and questions, managers' commands,
  buttons, welcomes, blocks).

A private text message goes by its conversation step (`bot.context.turn_of`), the same
decision the observer logged it by: a feedback comment, a manager's broadcast text or send
time, or a question.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.addressing import ADDRESSED
from bot.admin.broadcast import (
    broadcast,
    cancel,
    offer_broadcast_time,
    on_confirm_button,
    on_experiment_button,
    on_segment_button,
    take_broadcast_text,
)
from bot.admin.dashboard import dashboard
from bot.admin.reports import campaigns, insights, segments, stats
from bot.buttons import on_stale_button
from bot.context import Context, RapportApp, turn_of
from bot.conversation import Step
from bot.handlers.answers import (
    on_non_text,
    on_push_button,
    on_text,
    on_topic_button,
    unknown_command,
    use_private_chat,
)
from bot.handlers.community import poll, welcome
from bot.handlers.errors import on_error
from bot.handlers.feedback import feedback, on_rating_button, skip, take_feedback_comment
from bot.handlers.private import forget, help_command, on_forget_button, privacy, start, stop
from bot.membership import on_bot_membership
from bot.observer import observe
from bot.throttle import throttle

__all__ = ["register_handlers"]

THROTTLE_GROUP = -2
OBSERVER_GROUP = -1

# Only new messages: an edit is logged by the observer but not answered a second time.
NEW = filters.UpdateType.MESSAGE
PRIVATE = filters.ChatType.PRIVATE & NEW
GROUPS = filters.ChatType.GROUPS & NEW
_NON_TEXT = (
    filters.Sticker.ALL
    | filters.PHOTO
    | filters.VIDEO
    | filters.VOICE
    | filters.Document.ALL
    | (filters.ANIMATION | filters.AUDIO | filters.VIDEO_NOTE | filters.LOCATION | filters.CONTACT)
)


async def on_private_text(update: Update, context: Context) -> None:
    """Hand a private text message to the step of the conversation it belongs to."""
    turn = turn_of(update, context)
    step = turn.step if turn is not None else Step.QUESTION
    if step is Step.FEEDBACK_COMMENT:
        await take_feedback_comment(update, context)
    elif step is Step.BROADCAST_TEXT:
        await take_broadcast_text(update, context)
    elif step is Step.BROADCAST_TIME:
        await offer_broadcast_time(update, context)
    else:
        await on_text(update, context)


def register_handlers(application: RapportApp) -> None:
    """Register flood control (group -2), the observer (group -1), the handlers (group 0), errors."""
    application.add_handler(MessageHandler(NEW & ADDRESSED, throttle), group=THROTTLE_GROUP)
    application.add_handler(TypeHandler(Update, observe), group=OBSERVER_GROUP)
    private_commands = {
        "start": start,
        "help": help_command,
        "privacy": privacy,
        "stop": stop,
        "forget": forget,
        "feedback": feedback,
        "skip": skip,
    }
    for name, callback in private_commands.items():
        application.add_handler(CommandHandler(name, callback, filters=PRIVATE))
    application.add_handler(CommandHandler("help", help_command, filters=GROUPS))
    application.add_handler(CommandHandler(list(private_commands), use_private_chat, filters=GROUPS))
    application.add_handler(CommandHandler("poll", poll, filters=NEW))
    register_admin_handlers(application)
    application.add_handler(
        MessageHandler(filters.COMMAND & (PRIVATE | (GROUPS & ADDRESSED)), unknown_command)
    )
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & PRIVATE, on_private_text))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & GROUPS & ADDRESSED, on_text))
    application.add_handler(MessageHandler(_NON_TEXT & PRIVATE, on_non_text))
    application.add_handler(CallbackQueryHandler(on_topic_button, pattern=r"^topic:"))
    application.add_handler(CallbackQueryHandler(on_forget_button, pattern=r"^forget:"))
    application.add_handler(CallbackQueryHandler(on_rating_button, pattern=r"^rate:"))
    application.add_handler(CallbackQueryHandler(on_push_button, pattern=r"^push:"))
    application.add_handler(CallbackQueryHandler(on_stale_button))
    application.add_handler(ChatMemberHandler(welcome, ChatMemberHandler.CHAT_MEMBER))
    application.add_handler(ChatMemberHandler(on_bot_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(on_error)


def register_admin_handlers(application: RapportApp) -> None:
    """Register the manager commands (each checks the caller itself and refuses politely)."""
    for name, callback in {
        "stats": stats,
        "segments": segments,
        "insights": insights,
        "campaigns": campaigns,
        "broadcast": broadcast,
        "cancel": cancel,
        "dashboard": dashboard,
    }.items():
        application.add_handler(CommandHandler(name, callback, filters=filters.UpdateType.MESSAGE))
    application.add_handler(CallbackQueryHandler(on_segment_button, pattern=r"^bseg:"))
    application.add_handler(CallbackQueryHandler(on_confirm_button, pattern=r"^bgo:"))
    application.add_handler(CallbackQueryHandler(on_experiment_button, pattern=r"^bexp:"))
