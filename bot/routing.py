"""Routing: which update goes to which handler, in one place (observer, users, managers)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.addressing import ADDRESSED
from bot.admin.broadcast import broadcast, cancel, on_confirm_button, on_segment_button
from bot.admin.dashboard import dashboard
from bot.admin.reports import campaigns, insights, segments, stats
from bot.handlers.answers import on_non_text, on_text, on_topic_button, unknown_command, use_private_chat
from bot.handlers.buttons import on_stale_button
from bot.handlers.community import poll, welcome
from bot.handlers.errors import on_error
from bot.handlers.feedback import feedback, on_rating_button, skip
from bot.handlers.private import forget, help_command, on_forget_button, privacy, start, stop
from bot.observer import observe

__all__ = ["register_handlers"]

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


def register_handlers(application: Application) -> None:  # type: ignore[type-arg]
    """Register the observer (group -1), the handlers (group 0) and the error handler."""
    application.add_handler(TypeHandler(Update, observe), group=-1)
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
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & PRIVATE, on_text))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & GROUPS & ADDRESSED, on_text))
    application.add_handler(MessageHandler(_NON_TEXT & PRIVATE, on_non_text))
    application.add_handler(CallbackQueryHandler(on_topic_button, pattern=r"^topic:"))
    application.add_handler(CallbackQueryHandler(on_forget_button, pattern=r"^forget:"))
    application.add_handler(CallbackQueryHandler(on_rating_button, pattern=r"^rate:"))
    application.add_handler(CallbackQueryHandler(on_stale_button))
    application.add_handler(ChatMemberHandler(welcome, ChatMemberHandler.CHAT_MEMBER))
    application.add_error_handler(on_error)


def register_admin_handlers(application: Application) -> None:  # type: ignore[type-arg]
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
