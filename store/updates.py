"""Claimed webhook updates: each Telegram `update_id` is handled by one replica, once.

Telegram re-sends a webhook delivery it did not see answered with 2xx, and a load balancer
may send that retry to another replica. Before handling an update, a replica claims its id
with one `INSERT ... ON CONFLICT DO NOTHING` (SQLAlchemy's SQLite and PostgreSQL dialect
inserts), so two replicas racing for one update cannot both win: the loser's insert adds
no row. What the loser does depends on the row it finds:

- `done_at` set: the update was handled (events written, answers sent); answer 200 again,
  with the Bot API call it was answered with in its webhook response (`reply`, kept with
  `done_at` in one statement by `finish_update`; `stored_reply` reads it): Telegram retries
  only a delivery whose 2xx it did not get, so it never executed that call;
- claimed recently and not done: another replica is on it, or died on it; answer non-2xx
  so that Telegram retries later;
- claimed longer ago than the takeover bound and not done: the claimer is taken to be dead;
  one conditional UPDATE (still not done, still that old) hands the claim over, so two
  replicas taking over at once cannot both win either.

A taken-over update may already have had its events written by the dead replica (it died
between the write and its answer): `logged_events` tells the new claimer, which then answers
without logging them again. Rows are kept a day (Telegram stops retrying long before) and
pruned by `prune_claims` on the `claimed_at` index.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, exists, select, update

from store.db import dialect_insert, unit_of_work
from store.models import Event, ProcessedUpdate

__all__ = ["Claim", "claim_update", "finish_update", "logged_events", "prune_claims", "stored_reply"]

logger = logging.getLogger(__name__)


class Claim(enum.Enum):
    """What claiming an update found."""

    NEW = "new"  # ours: nobody had claimed it
    TAKEN_OVER = "taken_over"  # ours: its earlier claimer never finished it within the bound
    DONE = "done"  # handled already: acknowledge, do nothing
    BUSY = "busy"  # claimed recently by a replica that has not finished: retry later

    @property
    def ours(self) -> bool:
        """Whether this replica now handles the update."""
        return self in (Claim.NEW, Claim.TAKEN_OVER)


_CLAIMS: Any = ProcessedUpdate.__table__


def _insert(engine: Engine) -> Any:
    return dialect_insert(engine.dialect.name, _CLAIMS)


def claim_update(
    engine: Engine, update_id: int, replica: str, *, now: datetime, stale_after: timedelta
) -> Claim:
    """Claim `update_id` for `replica`; see the module docstring for the outcomes.

    Core statements on one connection, not an ORM session: this runs for every update a
    replica receives, and the common case is the single INSERT.
    """
    statement = (
        _insert(engine)
        .values(update_id=update_id, replica=replica, claimed_at=now, done_at=None, reply=None)
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(_CLAIMS.c.update_id)  # rowcount is not reliable here on every driver
    )
    with engine.begin() as connection:
        if connection.execute(statement).first() is not None:
            return Claim.NEW
        row = connection.execute(
            select(_CLAIMS.c.replica, _CLAIMS.c.claimed_at, _CLAIMS.c.done_at).where(
                _CLAIMS.c.update_id == update_id
            )
        ).first()
        if row is None:  # pruned between the two statements: a day old, so handled long ago
            return Claim.DONE
        if row.done_at is not None:
            return Claim.DONE
        if row.claimed_at > now - stale_after:
            return Claim.BUSY
        taken = connection.execute(
            update(_CLAIMS)
            .where(
                _CLAIMS.c.update_id == update_id,
                _CLAIMS.c.done_at.is_(None),
                _CLAIMS.c.claimed_at <= now - stale_after,
            )
            .values(replica=replica, claimed_at=now)
        ).rowcount
        if not taken:  # another replica took it over first
            return Claim.BUSY
    logger.warning(
        "update %d: took over the claim of %s (unfinished since %s)", update_id, row.replica, row.claimed_at
    )
    return Claim.TAKEN_OVER


def finish_update(
    engine: Engine, update_id: int, replica: str, *, now: datetime, reply: str | None = None
) -> bool:
    """Mark the update handled, with the webhook reply it is answered with (None: an empty 200).

    One UPDATE: the reply is stored exactly when the claim is marked done, so a retry that
    finds the update done always finds the answer it must give. False when the claim is no
    longer this replica's (taken over): nothing is stored.
    """
    with engine.begin() as connection:
        result = connection.execute(
            update(_CLAIMS)
            .where(_CLAIMS.c.update_id == update_id, _CLAIMS.c.replica == replica)
            .values(done_at=now, reply=reply)
        )
        return bool(result.rowcount)


def stored_reply(engine: Engine, update_id: int) -> str | None:
    """The webhook reply a handled update was answered with; None for none (or a pruned claim)."""
    with engine.connect() as connection:
        return connection.execute(
            select(_CLAIMS.c.reply).where(_CLAIMS.c.update_id == update_id, _CLAIMS.c.done_at.is_not(None))
        ).scalar()


def logged_events(engine: Engine, update_id: int, *, user_id: int | None) -> bool:
    """Whether events of `update_id` are in the log already (a dead claimer wrote them).

    Looked up through the user's `(user_id, ts)` index (only on a takeover, which is rare);
    an update without a user (a channel post) scans by update id alone.
    """
    condition = Event.update_id == update_id
    if user_id is not None:
        condition = condition & (Event.user_id == user_id)
    with unit_of_work(engine) as session:
        return bool(session.scalar(select(exists().where(condition))))


def prune_claims(engine: Engine, *, before: datetime) -> int:
    """Delete claims older than `before` (by the `claimed_at` index); how many went."""
    with unit_of_work(engine) as session:
        result = session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.claimed_at < before))
        return int(result.rowcount)  # type: ignore[attr-defined]
