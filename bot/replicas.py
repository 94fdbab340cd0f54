"""Webhook replicas on one database: claim each update once, stamp its events in Telegram's order.

Several `rapport run --webhook` processes behind a load balancer each answer the updates they
receive. Telegram re-sends a delivery it did not see answered with 2xx, and the balancer may
hand the retry to another replica, so an update is claimed in the database first
(`store.updates`): one replica handles it, a retry of a handled update is acknowledged
without handling, and a retry of one still in hand gets 503 until its claim is older than
`RAPPORT_WEBHOOK_CLAIM_TIMEOUT_S`, when the replica it reaches takes it over.

Order: consecutive updates of one user may land on two replicas and be handled in the other
order, so the time a replica receives an update cannot order the log. In replica mode an
update's events are stamped with Telegram's time of it, in whole seconds (the date of a
message, edit, reaction or membership change; an update without a date, such as a button
press or a poll answer, gets the second it was received in), and with its `update_id`, which
Telegram assigns in order: the log's readers order by `(ts, update_id, id)`
(`store.events.SEQUENCE_ORDER`), so equal seconds fall back to Telegram's order. Long polling
(one process, updates in order) keeps the received time to the microsecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from telegram import Update

from store.models import utcnow
from store.records import EventRecord
from store.updates import Claim, claim_update, finish_update, logged_events, prune_claims, stored_reply
from store.writer import EventWriter

__all__ = ["UpdateLedger", "stamp", "telegram_time"]

logger = logging.getLogger(__name__)

KEEP_CLAIMS = timedelta(days=1)
"""How long a claim is kept: Telegram gives up re-sending an update long before."""
FLUSH_TIMEOUT_S = 10.0
"""How long an update waits for its events to be durable before it is neither answered nor acknowledged."""
PRUNE_EVERY_S = 600.0
"""Each replica prunes old claims at most this often (one indexed DELETE)."""


def telegram_time(update: Update, received: datetime) -> datetime:
    """Telegram's time of the update, whole seconds, UTC; the received second when it has none."""
    date: datetime | None = None
    if (message := update.message or update.channel_post) is not None:
        date = message.date
    elif (edited := update.edited_message or update.edited_channel_post) is not None:
        date = edited.edit_date or edited.date
    elif update.message_reaction is not None:
        date = update.message_reaction.date
    elif (change := update.chat_member or update.my_chat_member) is not None:
        date = change.date
    when = date if date is not None else received
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0)


def stamp(record: EventRecord, update: Update, *, telegram_clock: bool) -> EventRecord:
    """The record with its update's id, and (replicas) Telegram's time of the update."""
    ts = telegram_time(update, record.ts) if telegram_clock else record.ts
    return dataclasses.replace(record, update_id=update.update_id, ts=ts)


class UpdateLedger:
    """This replica's side of the claimed updates (`store.updates`), for the webhook receiver.

    Every database call runs in a worker thread. Counters say what the replica saw:
    `duplicates` (retries of handled updates), `busy` (retries answered 503) and
    `taken_over`. `already_logged` holds taken-over updates whose events the dead claimer
    had written: the observer does not log them again, the handlers still answer.

    Args:
        engine: The database.
        replica: This process's name in the claims.
        claim_timeout_s: Age after which an unfinished claim is taken over.
        clock: Time source (UTC-aware).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        replica: str,
        claim_timeout_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self.replica = replica
        self.stale_after = timedelta(seconds=claim_timeout_s)
        self._clock = clock
        self._next_prune = 0.0
        self.already_logged: set[int] = set()
        self._unwritten: set[int] = set()
        self.duplicates = 0
        self.busy = 0
        self.taken_over = 0

    async def claim(self, update: Update) -> Claim:
        """Claim the update (raises what the database raises: the caller answers 503)."""
        claim = await asyncio.to_thread(
            claim_update,
            self._engine,
            update.update_id,
            self.replica,
            now=self._clock(),
            stale_after=self.stale_after,
        )
        if claim is Claim.DONE:
            self.duplicates += 1
        elif claim is Claim.BUSY:
            self.busy += 1
        elif claim is Claim.TAKEN_OVER:
            self.taken_over += 1
            user = update.effective_user
            if await asyncio.to_thread(
                logged_events, self._engine, update.update_id, user_id=user.id if user else None
            ):
                logger.info("update %d: its events were logged before the takeover", update.update_id)
                self.already_logged.add(update.update_id)
        await self._maybe_prune()
        return claim

    def logged(self, update_id: int) -> None:
        """Note that an event of `update_id` was just queued (`BotServices.log_update_event`)."""
        self._unwritten.add(update_id)

    async def durable(self, update_id: int, writer: EventWriter, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until the events `update_id` logged so far are written (or spooled); False after `timeout_s`.

        Called by the observer before an update is answered and by the receiver before it is
        acknowledged; the second call returns at once unless a handler logged more. (An answer
        sent over HTTP, not in the webhook response (`bot.webhook_reply`), is sent again if the
        replica dies between it and marking the claim done.) No thread waits: the writer calls back
        (`EventWriter.when_done`, which covers everything logged before, so this update too),
        and dozens of updates can wait at once.
        """
        if update_id not in self._unwritten:
            return True
        self._unwritten.discard(update_id)
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def resolve() -> None:
            if not finished.done():
                finished.set_result(None)

        def from_writer() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(resolve)

        writer.when_done(from_writer)
        try:
            async with asyncio.timeout(timeout_s):
                await finished
        except TimeoutError:
            self._unwritten.add(update_id)
            return False
        return True

    async def finish(self, update_id: int, *, reply: str | None = None) -> bool:
        """Mark the update handled, keeping its webhook reply; False (and a warning) when another
        replica took it over."""
        self.already_logged.discard(update_id)
        self._unwritten.discard(update_id)
        done = await asyncio.to_thread(
            finish_update, self._engine, update_id, self.replica, now=self._clock(), reply=reply
        )
        if not done:
            logger.warning("update %d was taken over by another replica before it was finished", update_id)
        return done

    async def reply_of(self, update_id: int) -> str | None:
        """The webhook reply a handled update was answered with (a retry gets it again)."""
        return await asyncio.to_thread(stored_reply, self._engine, update_id)

    async def _maybe_prune(self) -> None:
        """Delete claims older than a day, at most every `PRUNE_EVERY_S`; a failure waits for the next."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            pruned = await asyncio.to_thread(prune_claims, self._engine, before=self._clock() - KEEP_CLAIMS)
        except Exception as exc:
            logger.warning("could not prune old update claims: %s", exc)
            return
        if pruned:
            logger.info("pruned %d update claims older than a day", pruned)
