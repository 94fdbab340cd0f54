"""Flood counters shared by webhook replicas: one user's limit holds across every replica.

With one process, `bot.flood.FloodGuard` keeps each user's recent messages in memory. Behind a
load balancer consecutive messages of one user land on different replicas, so an in-memory
window lets a flooder through `replicas x limit` times; the counts live in the database
instead (`flood_counters`), one row per (scope, key, window).

The estimate is the usual sliding-window counter: the current fixed window's count plus the
previous window's count weighted by how much of it still overlaps the sliding window. It is
exact for a steady rate and never more than one window's count off, and it needs one upsert
and one read per message rather than a row per message. Every message counts, throttled ones
too: a user who keeps flooding stays throttled until they slow down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select, update

from store.db import dialect_insert
from store.models import FloodCounter

__all__ = ["FloodCount", "count_message", "prune_flood_counters"]

_COUNTERS: Any = FloodCounter.__table__


@dataclass(frozen=True, slots=True)
class FloodCount:
    """One counted message: the sliding-window estimate, and whether this call claimed the warning."""

    estimate: float
    first_over: bool


def _insert(engine: Engine) -> Any:
    return dialect_insert(engine.dialect.name, _COUNTERS)


def count_message(
    engine: Engine, scope: str, key: int, *, now_s: float, window_s: float, limit: int
) -> FloodCount:
    """Count one message of `key` under `scope` at unix time `now_s`; the estimate and the warning claim.

    `first_over` is True for exactly one caller (across replicas) per window once the estimate
    exceeds `limit`: a conditional UPDATE of `warned` decides it, so two replicas cannot both
    send the "slow down" reply.
    """
    bucket = math.floor(now_s / window_s)
    elapsed = now_s / window_s - bucket
    counted = (
        _insert(engine)
        .values(scope=scope, key=key, bucket=bucket, count=1, warned=False)
        .on_conflict_do_update(
            index_elements=["scope", "key", "bucket"], set_={"count": _COUNTERS.c.count + 1}
        )
        .returning(_COUNTERS.c.count)
    )
    with engine.begin() as connection:
        current = int(connection.execute(counted).scalar_one())
        previous = connection.execute(
            select(_COUNTERS.c.count).where(
                _COUNTERS.c.scope == scope, _COUNTERS.c.key == key, _COUNTERS.c.bucket == bucket - 1
            )
        ).scalar()
        estimate = current + (int(previous or 0)) * (1.0 - elapsed)
        if estimate <= limit:
            return FloodCount(estimate, first_over=False)
        claimed = connection.execute(
            update(_COUNTERS)
            .where(
                _COUNTERS.c.scope == scope,
                _COUNTERS.c.key == key,
                _COUNTERS.c.bucket == bucket,
                _COUNTERS.c.warned.is_(False),
            )
            .values(warned=True)
        ).rowcount
    return FloodCount(estimate, first_over=bool(claimed))


def prune_flood_counters(engine: Engine, *, now_s: float, window_s: float, scope: str) -> int:
    """Delete `scope`'s windows older than the previous one (by the `bucket` index); how many went."""
    with engine.begin() as connection:
        result = connection.execute(
            delete(_COUNTERS).where(
                _COUNTERS.c.scope == scope, _COUNTERS.c.bucket < math.floor(now_s / window_s) - 1
            )
        )
        return int(result.rowcount)
