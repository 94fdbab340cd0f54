"""The interaction log: one observer turns every update into exactly one event row.

Registered as `TypeHandler(Update, observe)` in group -1, it runs before any answering handler,
so logging is not repeated in each handler. It gathers the facts an event needs (the
conversation step and the NLU's reading, both decided once per update through `bot.context`),
describes the update (`bot.describe`, pure) and logs the row. Flood control runs before it
(`bot.throttle`, group -2); blocking is handled after it (`bot.membership`). With replicas
(`bot.replicas`) it waits until the event is durable before any handler answers, so a replica
killed after answering has logged what it answered.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import Context, language_for, services_of, turn_of, understanding_of, writes_in
from bot.describe import Facts, describe
from bot.services import BotServices
from store.vocabulary import EventKind

logger = logging.getLogger(__name__)


async def _facts(update: Update, context: Context, services: BotServices) -> Facts:
    """What describing this update needs beyond the update itself."""
    user = update.effective_user
    # Before the NLU, so that the language is remembered even when the NLU fails on this update.
    language = language_for(update, context) if user is not None else None
    understood = await understanding_of(update, context)
    query = update.callback_query
    return Facts(
        is_admin=services.is_admin(user.id if user else None),
        turn=turn_of(update, context),
        understood=understood,
        answerable=understood is not None
        and services.knowledge.can_answer(understood.intent, understood.confidence),
        button=services.codec.decode(query.data, user_id=query.from_user.id) if query else None,
        store_text=services.settings.store_text,
        language=language,
    )


async def observe(update: Update, context: Context) -> None:
    """Log one event for every update, before any handler answers it."""
    services = services_of(context)
    record = describe(update, await _facts(update, context, services))
    user = update.effective_user
    if user is not None and not user.is_bot and record.kind != EventKind.LEAVE:
        # Before logging, so that the writer thread finds the user and doesn't race to create it.
        # `language_for` (in `_facts`) has updated the language they write in, for pushes.
        await services.users.remember(user, writes_in=writes_in(context))
    services.log_update_event(update, record)
    ledger = services.ledger
    if ledger is not None and not await ledger.durable(update.update_id, services.writer):
        # Replicas answer only what is logged: a replica that dies after answering must leave
        # the event in the log, or the one that takes the update over would answer it again.
        logger.warning("update %d: event log not durable, not answering", update.update_id)
        raise ApplicationHandlerStop
