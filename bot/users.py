"""The users table in step with Telegram: profiles kept fresh, opt-out and opt-in, forgetting.

Blocking store calls run in a worker thread so the event loop keeps serving updates.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from telegram import User

from bot.i18n import language_of
from store import EventWriter, ForgetReport, UserInfo, UserState, set_opted_out, upsert_user

logger = logging.getLogger(__name__)

_Profile = tuple[str | None, str | None, str | None]


def _upsert(engine: Engine, info: UserInfo) -> UserState:
    """`upsert_user`, once more if a concurrent writer created the same user first."""
    try:
        return upsert_user(engine, info)
    except IntegrityError:
        return upsert_user(engine, info)


def stored_language(user: User, writes_in: str | None = None) -> str | None:
    """The language the users row keeps, which pushes and broadcasts are written in.

    The client's `language_code` (`zh-hans`, `en-GB`), unless the user writes to the bot in
    another language (`writes_in`, e.g. `zh` from an English client): then that one, so the
    scheduler's pushes speak the language the conversation is in.
    """
    if writes_in is None or language_of(user.language_code) == writes_in:
        return user.language_code
    return writes_in


def user_info(user: User, writes_in: str | None = None) -> UserInfo:
    """The store's view of a Telegram user (`writes_in`: see `stored_language`)."""
    return UserInfo(
        id=user.id,
        username=user.username,
        first_name=user.first_name,
        language=stored_language(user, writes_in),
    )


def _profile(user: User, writes_in: str | None) -> _Profile:
    return (user.username, user.first_name, stored_language(user, writes_in))


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

    async def remember(self, user: User, *, writes_in: str | None = None) -> None:
        """Store or refresh a user's profile, once per process unless it changed.

        `writes_in` is the language the user last wrote in (see `stored_language`); a switch
        to another language is a profile change, written at once.
        """
        profile = _profile(user, writes_in)
        if self._seen.get(user.id) == profile:
            return
        await asyncio.to_thread(_upsert, self.engine, user_info(user, writes_in))
        self._seen[user.id] = profile

    async def start(self, user: User, *, writes_in: str | None = None) -> bool:
        """Create the user or resume an opted-out one; True when they were opted out before."""
        state = await asyncio.to_thread(_upsert, self.engine, user_info(user, writes_in))
        self._seen[user.id] = _profile(user, writes_in)
        if state.opted_out:
            await asyncio.to_thread(set_opted_out, self.engine, user.id, False)
            logger.info("user %d opted in again", user.id)
        return state.opted_out

    async def stop(self, user: User, *, writes_in: str | None = None) -> None:
        """Switch off pushes and broadcasts for a user (`/stop`)."""
        await asyncio.to_thread(_upsert, self.engine, user_info(user, writes_in))
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
