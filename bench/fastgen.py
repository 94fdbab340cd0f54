"""The synthetic history of `demo.synthetic.populate`, written at COPY speed for million-user benchmarks.

`populate` builds an `EventRecord` (and a dict of attributes, JSON-encoded once more by the
store) for each of ~20M rows: 653 s for 1M users on PostgreSQL, nearly all of it Python objects.
This writes the same rows (same generator, same random draws, same JSON text, in the same
order: `tests/bench/test_fastgen.py` checks it against `batch_rows`) as plain tuples, streamed
one chunk of users at a time into PostgreSQL with `COPY` (or SQLite with `executemany`), and the
users table in one upsert-free insert per chunk. Nothing but one chunk is ever in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from demo.simulation import Population, iter_actions
from demo.simulation.activity import DEFAULT_CHUNK_USERS, ActionBatch
from demo.simulation.behaviour import ACTIONS
from demo.simulation.bulk import _REACTIONS, GROUP_CHAT_ID, GROUP_CHAT_TYPE
from demo.synthetic import DEFAULT_DAYS, DEFAULT_END, synthetic_population
from store.sanitize import storable_json

__all__ = ["FastHistory", "Row", "fast_populate", "history_rows"]

logger = logging.getLogger(__name__)

Row = tuple[int, int | None, int, str, str | None, float | None, str]
"""(user_id, chat_id, ts in Unix seconds, kind, intent, confidence, attributes as JSON text)."""

_START = ACTIONS.index("start")
_FEEDBACK = ACTIONS.index("feedback")
_JOIN = ACTIONS.index("join")
_REACTION = ACTIONS.index("reaction")
_POLL = ACTIONS.index("poll_answer")
_CHATTER = ACTIONS.index("chatter")
_OUT_OF_SCOPE = ACTIONS.index("out_of_scope")
# The store's encoder escapes non-ASCII, so the emoji's JSON text is fixed per emoji.
_EMOJI_JSON = tuple(storable_json([emoji]) or "" for emoji in _REACTIONS)


@dataclass(frozen=True)
class FastHistory:
    """What `fast_populate` wrote: true types (user id → type name), event and user counts."""

    types: dict[int, str]
    n_events: int
    n_users: int


def _chunk_rows(population: Population, batch: ActionBatch, seed: int) -> list[Row]:
    """`demo.simulation.bulk.batch_rows` as tuples: the same draws, values and JSON text."""
    rng = np.random.default_rng([population.seed, 3, seed])
    confidence = rng.random(len(batch)).tolist()
    message_ids = rng.integers(1, 1_000_000, len(batch)).tolist()
    ids = population.ids[batch.row].tolist()
    stamps = batch.ts.tolist()
    actions = batch.action.tolist()
    groups = batch.in_group.tolist()
    ratings = batch.rating.tolist()
    rows: list[Row] = []
    append = rows.append
    for i, user in enumerate(ids):
        ts, action, group, mid = stamps[i], actions[i], groups[i], message_ids[i]
        chat_type = GROUP_CHAT_TYPE if group else "private"
        chat: int | None = GROUP_CHAT_ID if group else user
        if action == _START:
            append(
                (user, chat, ts, "command", None, None, f'{{"chat_type": "{chat_type}", "command": "start"}}')
            )
        elif action == _FEEDBACK:
            append((user, chat, ts, "command", None, None, '{"chat_type": "private", "command": "feedback"}'))
            append(
                (
                    user,
                    chat,
                    ts,
                    "feedback",
                    None,
                    None,
                    f'{{"chat_type": "private", "rating": {ratings[i]}}}',
                )
            )
            append((user, chat, ts, "command", None, None, '{"chat_type": "private", "command": "skip"}'))
        elif action == _JOIN:
            append(
                (user, chat, ts, "join", None, None, f'{{"chat_type": "{chat_type}", "status": "member"}}')
            )
        elif action == _REACTION:
            emoji = _EMOJI_JSON[mid % len(_EMOJI_JSON)]
            text = f'{{"chat_type": "{chat_type}", "message_id": {mid}, "new": {emoji}, "old": []}}'
            append((user, chat, ts, "reaction", None, None, text))
        elif action == _POLL:
            text = f'{{"poll_id": "sim-poll-{mid % 97}", "options": [{mid % 3}]}}'
            append((user, None, ts, "poll_answer", None, None, text))
        else:
            text = f'"chat_type": "{chat_type}", "message_id": {mid}, "length": {12 + mid % 40}'
            if group:
                text += ', "addressed": false' if action == _CHATTER else ', "addressed": true'
            if action == _CHATTER:
                append((user, chat, ts, "message", None, None, f"{{{text}}}"))
            elif action == _OUT_OF_SCOPE:
                score = round(0.55 + 0.44 * confidence[i], 3)
                append((user, chat, ts, "fallback", "out_of_scope", score, f'{{{text}, "unanswered": true}}'))
            else:
                score = round(0.55 + 0.44 * confidence[i], 3)
                append((user, chat, ts, "message", ACTIONS[action], score, f"{{{text}}}"))
    return rows


def history_rows(
    population: Population, *, start: datetime, chunk_users: int = DEFAULT_CHUNK_USERS
) -> Iterator[list[Row]]:
    """The population's event rows from `start`, one list per chunk of users (sorted by user, time)."""
    for number, batch in enumerate(iter_actions(population, start=start, chunk_users=chunk_users)):
        yield _chunk_rows(population, batch, number)


def _iso(stamps: NDArray[np.int64]) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' (UTC) for Unix seconds, vectorised."""
    text = np.datetime_as_string(stamps.astype("datetime64[s]"), unit="s")
    return [t.replace("T", " ") for t in text.tolist()]


def _user_spans(rows: list[Row]) -> list[tuple[int, int, int]]:
    """(user, first ts, last ts) for the users of one chunk (rows are sorted by user, then time)."""
    users = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    stamps = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    order = np.lexsort((stamps, users))
    users, stamps = users[order], stamps[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)] - 1
    return list(zip(users[starts].tolist(), stamps[starts].tolist(), stamps[ends].tolist(), strict=True))


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\")


def _write_postgres(connection: Connection, rows: list[Row]) -> None:
    stamps = _iso(np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)))
    raw: Any = connection.connection.dbapi_connection  # psycopg 3: cursor.copy
    assert raw is not None
    with raw.cursor() as cursor:
        columns = "user_id, chat_id, ts, kind, intent, confidence, text, attributes"
        with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
            lines = [
                f"{u}\t{_copy_text(c)}\t{stamps[i]}+00\t{k}\t{_copy_text(n)}\t{_copy_text(f)}\t\\N\t"
                f"{_copy_text(a)}\n"
                for i, (u, c, _, k, n, f, a) in enumerate(rows)
            ]
            copy.write("".join(lines))
        spans = _user_spans(rows)
        first = _iso(np.array([s[1] for s in spans], dtype=np.int64))
        last = _iso(np.array([s[2] for s in spans], dtype=np.int64))
        with cursor.copy("COPY users (id, first_seen, last_seen, opted_out, blocked) FROM STDIN") as copy:
            copy.write("".join(f"{s[0]}\t{first[i]}+00\t{last[i]}+00\tf\tf\n" for i, s in enumerate(spans)))


def _write_sqlite(connection: Connection, rows: list[Row]) -> None:
    stamps = [f"{t}.000000" for t in _iso(np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)))]
    connection.exec_driver_sql(
        "INSERT INTO events (user_id, chat_id, ts, kind, intent, confidence, text, attributes)"
        " VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
        [(u, c, stamps[i], k, n, f, a) for i, (u, c, _, k, n, f, a) in enumerate(rows)],  # type: ignore[arg-type]
    )
    spans = _user_spans(rows)
    first = _iso(np.array([s[1] for s in spans], dtype=np.int64))
    last = _iso(np.array([s[2] for s in spans], dtype=np.int64))
    connection.exec_driver_sql(
        "INSERT INTO users (id, first_seen, last_seen, opted_out, blocked) VALUES (?, ?, ?, 0, 0)",
        [(s[0], f"{first[i]}.000000", f"{last[i]}.000000") for i, s in enumerate(spans)],  # type: ignore[arg-type]
    )


def fast_populate(
    engine: Engine,
    n_users: int,
    *,
    events_per_user: float | None = 20.0,
    end: datetime = DEFAULT_END,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    chunk_users: int = DEFAULT_CHUNK_USERS,
    progress: Callable[[int, int], None] | None = None,
) -> FastHistory:
    """`populate(engine, n_users, …)`'s history into an empty store, one transaction per chunk.

    The users table gets each user's first and last event as first and last seen, as the
    store's own import does; no profiles. `progress` gets (users done, events done).

    Raises:
        ValueError: the store already holds users (the insert does not merge).
    """
    population = synthetic_population(n_users, events_per_user=events_per_user, days=days, seed=seed)
    writer = _write_postgres if engine.dialect.name == "postgresql" else _write_sqlite
    with engine.connect() as connection:
        if connection.exec_driver_sql("SELECT count(*) FROM users").scalar_one():
            raise ValueError("fast_populate writes into an empty store; this one already has users")
    events = users = 0
    for rows in history_rows(population, start=end - timedelta(days=days), chunk_users=chunk_users):
        with engine.begin() as connection:
            writer(connection, rows)
        events += len(rows)
        users = min(users + chunk_users, n_users)
        if progress is not None:
            progress(users, events)
    logger.info("fast synthetic history: %d users, %d events", n_users, events)
    return FastHistory(types=population.true_types(), n_events=events, n_users=n_users)
