"""The users table in step with Telegram: profiles kept fresh, opt-out and opt-in, forgetting.

Blocking store calls run in a worker thread so the event loop keeps serving updates.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from telegram import User

from store import EventWriter, ForgetReport, UserInfo, UserState, set_opted_out, upsert_user

logger = logging.getLogger(__name__)

_Profile = tuple[str | None, str | None, str | None]


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


def _profile(user: User) -> _Profile:
    return (user.username, user.first_name, user.language_code)


class UserProfiles:
    """Creates, refreshes, opts out and in, and forgets users.

    A profile is written once per process unless it changed, so a chatty user costs one
    upsert, not one per message.

    Args:
        engine: The database engine (migrated).
        writer: The event writer, flushed before a user is forgotten.
    """

    def __init__(self, engine: Engine, writer: EventWriter) -> None:
        self.engine = engine
        self.writer = writer
        self._seen: dict[int, _Profile] = {}

    async def remember(self, user: User) -> None:
        """Store or refresh a user's profile, once per process unless it changed."""
        profile = _profile(user)
        if self._seen.get(user.id) == profile:
            return
        await asyncio.to_thread(_upsert, self.engine, user_info(user))
        self._seen[user.id] = profile

    async def start(self, user: User) -> bool:
        """Create the user or resume an opted-out one; True when they were opted out before."""
        state = await asyncio.to_thread(_upsert, self.engine, user_info(user))
        self._seen[user.id] = _profile(user)
        if state.opted_out:
            await asyncio.to_thread(set_opted_out, self.engine, user.id, False)
            logger.info("user %d opted in again", user.id)
        return state.opted_out

    async def stop(self, user: User) -> None:
        """Switch off pushes and broadcasts for a user (`/stop`)."""
        await asyncio.to_thread(_upsert, self.engine, user_info(user))
        await asyncio.to_thread(set_opted_out, self.engine, user.id, True)
        logger.info("user %d opted out", user.id)

    async def forget(self, user_id: int) -> ForgetReport:
        """Delete everything about a user, after the event log has caught up.

        The writer is flushed first so that no event of this user lands after the delete, and
        the user's events still in the spool or dead-letter files go too.

        Raises:
            EventLogBehindError: the log did not catch up; nothing was deleted.
        """
        report = await asyncio.to_thread(self.writer.forget, user_id)
        self._seen.pop(user_id, None)
        logger.info("forgot user %d (%d rows)", user_id, report.total)
        return report
