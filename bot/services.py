"""The bot's runtime services: one object holding what handlers need, stored in bot_data.

Handlers stay thin (parse, call a service, reply); everything that touches the database,
the NLU or shared state lives here. Blocking store calls run in a worker thread so the
event loop keeps serving updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from telegram import User
from telegram.ext import ContextTypes

from bot.callbacks import CallbackCodec
from bot.flood import FloodGuard, FloodVerdict
from bot.knowledge import KnowledgeBase
from nlu import IntentParser, ParseResult
from scheduler import SchedulerService
from store import (
    EventWriter,
    ForgetReport,
    Settings,
    UserInfo,
    UserState,
    set_opted_out,
    upsert_user,
)

logger = logging.getLogger(__name__)

SERVICES_KEY = "rapport"
_PARSE_CACHE_SIZE = 2048
GROUP_REPLIES_PER_MIN = 15

Hook = Callable[[Any], Awaitable[None]]
"""An async callable given the `Application`, run in post_init or post_shutdown."""


class BroadcastScheduler(Protocol):
    """Creates broadcast campaigns; `rapport run` plugs in the scheduler's implementation."""

    async def schedule(self, *, segment: str | None, text: str, at: datetime, created_by: int) -> int:
        """Create a broadcast to `segment` (None: every reachable user) sent at `at`; its campaign id."""
        ...


@dataclass(frozen=True)
class Understanding:
    """What the NLU made of one message, reduced to what the bot and the log use."""

    intent: str | None
    confidence: float | None
    entities: dict[str, str] = field(default_factory=dict)
    ranking: tuple[str, ...] = ()


def understanding_from(result: ParseResult) -> Understanding:
    """Reduce an NLU `ParseResult` to what the bot and the event log use."""
    return Understanding(
        intent=result.intent.name or None,
        confidence=float(result.intent.confidence),
        entities={entity.entity: str(entity.value) for entity in result.entities},
        ranking=tuple(score.name for score in result.intent_ranking),
    )


def _upsert(engine: Engine, info: UserInfo) -> UserState:
    """`upsert_user`, once more if a concurrent writer created the same user first."""
    try:
        return upsert_user(engine, info)
    except IntegrityError:
        return upsert_user(engine, info)


def user_info(user: User) -> UserInfo:
    """The store's view of a Telegram user."""
    return UserInfo(
        id=user.id,
        username=user.username,
        first_name=user.first_name,
        language=user.language_code,
    )


class BotServices:
    """Shared state and the service calls of the handlers.

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
        self.parser = parser
        self.knowledge = knowledge
        self.codec = codec
        self.flood = FloodGuard(settings.flood_max_messages, settings.flood_window_s)
        # Telegram allows 20 messages a minute in a group; keep a margin for broadcasts.
        self.group_replies = FloodGuard(GROUP_REPLIES_PER_MIN, 60.0)
        self.admin_ids = frozenset(settings.admin_ids)
        self.scheduler: SchedulerService | None = None  # set by `bot.app.attach_scheduler`
        self.broadcasts: BroadcastScheduler | None = None  # the same service, or a test double
        # Async callables run in post_init / (reversed) in post_shutdown, e.g. the scheduler.
        self.startup_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []
        self._parses: OrderedDict[int, Understanding] = OrderedDict()
        self._profiles: dict[int, tuple[str | None, str | None, str | None]] = {}

    # ---- NLU ------------------------------------------------------------------------
    async def understand(self, update_id: int, text: str) -> Understanding:
        """Run the NLU once per update; the answering handler reads the cached result."""
        cached = self._parses.get(update_id)
        if cached is not None:
            return cached
        # Off the event loop; the local engine batches the updates handled concurrently.
        raw: ParseResult = await self.parser.aparse(text)
        result = understanding_from(raw)
        self._parses[update_id] = result
        while len(self._parses) > _PARSE_CACHE_SIZE:
            self._parses.popitem(last=False)
        return result

    def cached_understanding(self, update_id: int) -> Understanding | None:
        """The NLU result the observer stored for this update, if it ran."""
        return self._parses.get(update_id)

    def allow_group_reply(self, chat_id: int) -> bool:
        """Whether the bot may post in this group now without flooding it."""
        return self.group_replies.check(chat_id) is FloodVerdict.OK

    # ---- users ----------------------------------------------------------------------
    def is_admin(self, user_id: int | None) -> bool:
        """Whether `user_id` is one of the configured community managers."""
        return user_id is not None and user_id in self.admin_ids

    async def remember_user(self, user: User) -> None:
        """Store or refresh a user's profile, once per process unless it changed."""
        profile = (user.username, user.first_name, user.language_code)
        if self._profiles.get(user.id) == profile:
            return
        await asyncio.to_thread(_upsert, self.engine, user_info(user))
        self._profiles[user.id] = profile

    async def start_user(self, user: User) -> bool:
        """Create the user or resume an opted-out one; True when they were opted out before."""
        state = await asyncio.to_thread(_upsert, self.engine, user_info(user))
        self._profiles[user.id] = (user.username, user.first_name, user.language_code)
        if state.opted_out:
            await asyncio.to_thread(set_opted_out, self.engine, user.id, False)
            logger.info("user %d opted in again", user.id)
        return state.opted_out

    async def stop_user(self, user: User) -> None:
        """Switch off pushes and broadcasts for a user (`/stop`)."""
        await asyncio.to_thread(_upsert, self.engine, user_info(user))
        await asyncio.to_thread(set_opted_out, self.engine, user.id, True)
        logger.info("user %d opted out", user.id)

    async def forget(self, user_id: int) -> ForgetReport:
        """Delete everything about a user, after the event log has caught up.

        The writer is flushed first so that no event of this user lands after the delete.

        Raises:
            EventLogBehindError: the log did not catch up; nothing was deleted.
        """
        report = await asyncio.to_thread(self.writer.forget, user_id)
        self._profiles.pop(user_id, None)
        logger.info("forgot user %d (%d rows)", user_id, report.total)
        return report


def services_of(context: ContextTypes.DEFAULT_TYPE) -> BotServices:
    """The services object `build_application` put into `bot_data`."""
    services = context.bot_data.get(SERVICES_KEY)
    if not isinstance(services, BotServices):
        raise RuntimeError("bot_data has no BotServices: build the application with bot.app")
    return services
