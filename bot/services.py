"""The bot's runtime services: one object holding what handlers need, kept in `bot_data`.

Handlers stay thin (parse, call a service, reply); everything that touches the database,
the NLU or shared state lives in a service with one job: `understander` (the NLU),
`users` (profiles, opt-out, forgetting), `flood` and `group_replies` (rate guards),
`broadcasts` (the scheduler's side of /broadcast). `bot.context.services_of(context)`
is how a handler reaches them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine
from telegram import Update

from bot.callbacks import CallbackCodec
from bot.flood import FloodGuard, FloodVerdict, SharedFloodGuard
from bot.knowledge import KnowledgeBase
from bot.replicas import UpdateLedger, stamp
from bot.understanding import Understander
from bot.users import UserProfiles
from nlu import IntentParser
from scheduler.experiments import ExperimentDraft
from store import EventRecord, EventWriter, Settings

logger = logging.getLogger(__name__)

GROUP_REPLIES_PER_MIN = 15

Hook = Callable[[Any], Awaitable[None]]
"""An async callable given the `Application`, run in post_init or post_shutdown."""


class BroadcastScheduler(Protocol):
    """Creates broadcast campaigns; `rapport run` plugs in the scheduler's implementation."""

    async def schedule(self, *, segment: str | None, text: str, at: datetime, created_by: int) -> int:
        """Create a broadcast to `segment` (None: every reachable user) sent at `at`; its campaign id."""
        ...

    async def schedule_experiment(
        self, *, segment: str | None, draft: ExperimentDraft, at: datetime, created_by: int
    ) -> tuple[int, int]:
        """Create a broadcast with variants (an experiment); (campaign id, experiment id)."""
        ...


class BotServices:
    """Shared state and the services the handlers call.

    Args:
        settings: The process settings.
        engine: The database engine (migrated).
        writer: The buffered event writer (started in post_init).
        parser: The NLU parser.
        knowledge: The knowledge base.
        codec: Signs and verifies callback data.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        writer: EventWriter,
        parser: IntentParser,
        knowledge: KnowledgeBase,
        codec: CallbackCodec,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.writer = writer
        self.knowledge = knowledge
        self.codec = codec
        self.understander = Understander(parser)
        self.users = UserProfiles(engine, writer)
        self.flood: FloodGuard | SharedFloodGuard = FloodGuard(
            settings.flood_max_messages, settings.flood_window_s
        )
        # Telegram allows 20 messages a minute in a group; keep a margin for broadcasts.
        self.group_replies: FloodGuard | SharedFloodGuard = FloodGuard(GROUP_REPLIES_PER_MIN, 60.0)
        self.admin_ids = frozenset(settings.admin_ids)
        # The scheduler (`bot.app.attach_scheduler`) or a test double; None: no broadcasts here.
        self.broadcasts: BroadcastScheduler | None = None
        # Async callables run in post_init / (reversed) in post_shutdown, e.g. the scheduler.
        self.startup_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []
        # Set by the webhook receiver when updates are claimed in the database (replicas).
        self.ledger: UpdateLedger | None = None

    def log_update_event(self, update: Update, record: EventRecord) -> None:
        """Log an event that `update` caused, with its update_id (and, replicas, Telegram's time).

        A taken-over update whose events the dead replica had written logs nothing again.
        """
        ledger = self.ledger
        if ledger is not None and update.update_id in ledger.already_logged:
            return
        self.writer.log(stamp(record, update, telegram_clock=ledger is not None))
        if ledger is not None:
            ledger.logged(update.update_id)

    def is_admin(self, user_id: int | None) -> bool:
        """Whether `user_id` is one of the configured community managers."""
        return user_id is not None and user_id in self.admin_ids

    async def allow_group_reply(self, chat_id: int) -> bool:
        """Whether the bot may post in this group now without flooding it."""
        return await self.group_replies.acheck(chat_id) is FloodVerdict.OK

    def share_flood_limits(self) -> None:
        """Count the flood limits in the database, for webhook replicas that share one user's messages."""
        self.flood = SharedFloodGuard(
            self.engine,
            scope="user",
            max_messages=self.settings.flood_max_messages,
            window_s=self.settings.flood_window_s,
        )
        self.group_replies = SharedFloodGuard(
            self.engine, scope="group", max_messages=GROUP_REPLIES_PER_MIN, window_s=60.0
        )
