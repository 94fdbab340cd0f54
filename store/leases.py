"""Named leases in the database: one process at a time may hold each (e.g. the scheduler).

A lease is a row (name, owner, expires_at). Taking it is one conditional UPDATE (free,
expired or already ours) or an INSERT when the row is missing, so two processes racing for it
cannot both win on SQLite or PostgreSQL: the loser's UPDATE matches no row, or its INSERT
hits the primary key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.db import unit_of_work
from store.models import Lease

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a lease and until when."""

    name: str
    owner: str
    expires_at: datetime


def acquire_lease(engine: Engine, name: str, owner: str, *, ttl: timedelta, now: datetime) -> bool:
    """Take or renew the lease `name` for `owner` until `now + ttl`; False if someone else holds it.

    Renewing is the same call: the holder extends its own lease before it expires.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")
    expires_at = now + ttl
    with unit_of_work(engine) as session:
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.owner == owner, Lease.expires_at <= now))
            .values(owner=owner, expires_at=expires_at)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if session.get(Lease, name) is not None:
            return False
    try:
        with unit_of_work(engine) as session:
            session.add(Lease(name=name, owner=owner, expires_at=expires_at))
    except IntegrityError:  # another process inserted it between our two transactions
        logger.debug("lease %s was taken concurrently", name)
        return False
    return True


def release_lease(engine: Engine, name: str, owner: str) -> bool:
    """Give the lease up (only if `owner` holds it), so a standby process can take over at once."""
    with unit_of_work(engine) as session:
        result = session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def lease_holder(engine: Engine, name: str, *, now: datetime) -> LeaseInfo | None:
    """The current, unexpired holder of the lease, or None."""
    with unit_of_work(engine) as session:
        lease = session.scalar(select(Lease).where(Lease.name == name, Lease.expires_at > now))
        return None if lease is None else LeaseInfo(lease.name, lease.owner, lease.expires_at)
