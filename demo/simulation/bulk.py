"""Bulk mode: simulated actions written straight into the event log, without the bot.

Rows have the shape the bot's observer logs (kinds, intents, `chat_type` and the other
attributes), so analytics cannot tell bulk history from live traffic, except that the NLU
is replaced by the true intent with a plausible confidence and no text is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from demo.simulation.activity import DEFAULT_CHUNK_USERS, ActionBatch, iter_actions
from demo.simulation.behaviour import ACTIONS
from demo.simulation.population import Population
from store import EventRecord, UserInfo, append_events, upsert_user

__all__ = [
    "GROUP_CHAT_ID",
    "BulkReport",
    "batch_rows",
    "row_count",
    "time_zone_of",
    "write_history",
    "write_profiles",
]

logger = logging.getLogger(__name__)

GROUP_CHAT_ID = -1_001_700_000_001
"""The community supergroup every simulated group member belongs to."""
GROUP_CHAT_TYPE = "supergroup"
_REACTIONS = ("👍", "❤", "🔥", "🎉", "😁")
_INSERT_BATCH = 50_000


@dataclass(frozen=True)
class BulkReport:
    """What one bulk run wrote."""

    users: int
    events: int
    events_by_action: dict[str, int]


def _row(
    user_id: int, ts: datetime, action: str, group: bool, rating: int, message_id: int, rng_value: float
) -> list[dict[str, Any]]:
    chat_type = GROUP_CHAT_TYPE if group else "private"
    chat_id = GROUP_CHAT_ID if group else user_id
    base: dict[str, Any] = {"user_id": user_id, "chat_id": chat_id, "ts": ts, "text": None}
    if action == "start":
        return [{**base, "kind": "command", "attributes": {"chat_type": chat_type, "command": "start"}}]
    if action == "feedback":
        command = {**base, "kind": "command", "attributes": {"chat_type": "private", "command": "feedback"}}
        rated = {**base, "kind": "feedback", "attributes": {"chat_type": "private", "rating": rating}}
        skip = {**base, "kind": "command", "attributes": {"chat_type": "private", "command": "skip"}}
        return [command, rated, skip]
    if action == "join":
        return [{**base, "kind": "join", "attributes": {"chat_type": chat_type, "status": "member"}}]
    if action == "reaction":
        emoji = _REACTIONS[message_id % len(_REACTIONS)]
        attributes = {"chat_type": chat_type, "message_id": message_id, "new": [emoji], "old": []}
        return [{**base, "kind": "reaction", "attributes": attributes}]
    if action == "poll_answer":
        attributes = {"poll_id": f"sim-poll-{message_id % 97}", "options": [message_id % 3]}
        return [{**base, "chat_id": None, "kind": "poll_answer", "attributes": attributes}]
    attributes = {"chat_type": chat_type, "message_id": message_id, "length": 12 + message_id % 40}
    if group:
        attributes["addressed"] = action != "chatter"
    if action == "chatter":
        return [{**base, "kind": "message", "attributes": attributes}]
    confidence = round(0.55 + 0.44 * rng_value, 3)
    if action == "out_of_scope":
        attributes["unanswered"] = True
        return [
            {**base, "kind": "fallback", "intent": action, "confidence": confidence, "attributes": attributes}
        ]
    return [{**base, "kind": "message", "intent": action, "confidence": confidence, "attributes": attributes}]


_FEEDBACK = ACTIONS.index("feedback")
_FEEDBACK_ROWS = 3  # `/feedback`, the rating, `/skip`: see `_row`


def row_count(batch: ActionBatch) -> int:
    """How many event rows `batch_rows` makes of `batch`, without building them."""
    feedback = int(np.count_nonzero(batch.action == _FEEDBACK))
    return len(batch) + (_FEEDBACK_ROWS - 1) * feedback


def batch_rows(population: Population, batch: ActionBatch, *, seed: int = 0) -> list[EventRecord]:
    """Event records (as `store.append_events` takes them) for one batch of actions."""
    rng = np.random.default_rng([population.seed, 3, seed])
    confidence = rng.random(len(batch))
    message_ids = rng.integers(1, 1_000_000, len(batch))
    ids = population.ids[batch.row].tolist()
    stamps = batch.ts.tolist()
    actions = batch.action.tolist()
    groups = batch.in_group.tolist()
    ratings = batch.rating.tolist()
    msg = message_ids.tolist()
    conf = confidence.tolist()
    rows: list[EventRecord] = []
    for i, user_id in enumerate(ids):
        ts = datetime.fromtimestamp(stamps[i], UTC)
        rows.extend(
            EventRecord(**row)
            for row in _row(user_id, ts, ACTIONS[actions[i]], groups[i], ratings[i], msg[i], conf[i])
        )
    return rows


def time_zone_of(utc_offset_h: int) -> str:
    """The IANA zone name of a whole-hour UTC offset (`Etc/GMT-8` is UTC+8)."""
    return f"Etc/GMT{-utc_offset_h:+d}" if utc_offset_h else "UTC"


def write_profiles(engine: Engine, population: Population, rows: Iterable[int], *, seen_at: datetime) -> None:
    """Store language and time zone of users already logged, as the bot learns them from Telegram.

    Run after their events, with `seen_at` at or before their first event, so first and last
    seen stay what the log says. One upsert per user: fine for demo sizes; the benchmark skips it.
    """
    for row in rows:
        persona = population.persona(row)
        zone = time_zone_of(persona.utc_offset_h)
        info = UserInfo(
            id=persona.id,
            username=persona.username,
            first_name=persona.first_name,
            language=persona.language,
            time_zone=zone,
        )
        upsert_user(engine, info, seen_at=seen_at)


def write_history(
    engine: Engine,
    population: Population,
    *,
    start: datetime,
    until: datetime | None = None,
    chunk_users: int = DEFAULT_CHUNK_USERS,
    profiles: bool = True,
    progress: Callable[[int], None] | None = None,
) -> BulkReport:
    """Generate the population's actions from `start` and append those before `until`.

    Args:
        engine: The store's engine (schema already upgraded).
        population: Who acts.
        start: The first instant of the simulated window.
        until: Stop here (e.g. where the live part of the demo takes over); default: the end.
        chunk_users: Users generated per chunk (memory vs. speed).
        profiles: Also store language and time zone per user (slow beyond ~100k users).
        progress: Called with the number of users done after each chunk.
    """
    limit = int(until.timestamp()) if until is not None else None
    events = 0
    counts = np.zeros(len(ACTIONS), dtype=np.int64)
    seen: set[int] = set()
    for number, batch in enumerate(iter_actions(population, start=start, chunk_users=chunk_users)):
        chosen = batch if limit is None else batch.select(batch.ts < limit)
        counts += np.bincount(chosen.action.astype(np.int64), minlength=len(ACTIONS))
        rows = batch_rows(population, chosen, seed=number)
        for offset in range(0, len(rows), _INSERT_BATCH):
            events += append_events(engine, rows[offset : offset + _INSERT_BATCH])
        if profiles:
            seen.update(np.unique(chosen.row).tolist())
        if progress is not None:
            progress(min(chunk_users, len(population) - number * chunk_users))
    if profiles:
        write_profiles(engine, population, sorted(seen), seen_at=start)
    logger.info("bulk history: %d users, %d events", len(population), events)
    return BulkReport(
        users=len(population),
        events=events,
        events_by_action={a: int(c) for a, c in zip(ACTIONS, counts, strict=True) if c},
    )
