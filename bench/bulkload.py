"""A streaming COPY loader for PostgreSQL: a million users and twenty million events in minutes.

`demo.synthetic.populate` writes through the store (inserts, profiles, sequences), which is right
for the demo and far too slow at this size. This writes plain rows (users; events of a few kinds
with intents, a diurnal rhythm, most activity on a user's first days) straight into COPY, with
the events' secondary indexes dropped during the load and rebuilt after it, like a restore.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import Engine

logger = logging.getLogger(__name__)

INTENTS = (
    "greet",
    "price",
    "hours",
    "delivery",
    "refund",
    "thanks",
    "menu",
    "order_status",
    "complain",
    "bye",
)
KINDS = ("message",) * 6 + ("fallback", "callback", "reaction", "command")
HOUR_WEIGHTS = tuple(1 + 4 * (8 <= h <= 22) + 3 * (18 <= h <= 21) for h in range(24))
EVENT_INDEXES = (
    ("ix_events_user_ts", "(user_id, ts)"),
    ("ix_events_ts_user", "(ts, user_id)"),
    ("ix_events_kind_ts", "(kind, ts)"),
)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Loaded:
    """What `copy_population` wrote and how long it took."""

    users: int
    events: int
    seconds: float


def _libpq_url(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def copy_population(
    engine: Engine,
    users: int,
    *,
    events_per_user: float,
    end: datetime,
    days: int = 90,
    seed: int = 7,
    first_user_id: int = 1,
    rebuild_indexes: bool = True,
) -> Loaded:
    """COPY `users` users and about `events_per_user` events each, over the `days` days before `end`."""
    if engine.dialect.name != "postgresql":
        raise ValueError("the COPY loader needs PostgreSQL (--database-url postgresql+psycopg://...)")
    started = time.perf_counter()
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    user_rows: list[str] = []
    n_events = 0
    with psycopg.connect(_libpq_url(engine), autocommit=False) as connection:
        if rebuild_indexes:
            for name, _ in EVENT_INDEXES:
                connection.execute(f"DROP INDEX IF EXISTS {name}")
        with connection.cursor() as cursor:
            with cursor.copy("COPY events (user_id, chat_id, ts, kind, intent) FROM STDIN") as copy:
                for chunk, count in _event_chunks(
                    rng, users, events_per_user, start, days, first_user_id, user_rows
                ):
                    copy.write(chunk)
                    n_events += count
            with cursor.copy("COPY users (id, first_seen, last_seen, opted_out, blocked) FROM STDIN") as copy:
                for i in range(0, len(user_rows), 50_000):
                    copy.write("".join(user_rows[i : i + 50_000]))
        if rebuild_indexes:
            for name, columns in EVENT_INDEXES:
                connection.execute(f"CREATE INDEX {name} ON events {columns}")
        connection.commit()
        # VACUUM too, as autovacuum would soon: the visibility map lets the index-only scans skip the heap.
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE events")
        connection.execute("VACUUM ANALYZE users")
    return Loaded(users, n_events, time.perf_counter() - started)


def _event_chunks(
    rng: random.Random,
    users: int,
    events_per_user: float,
    start: datetime,
    days: int,
    first_user_id: int,
    user_rows: list[str],
) -> Iterator[tuple[str, int]]:
    """COPY text of the events, about a megabyte at a time, and each user's row into `user_rows`."""
    prefixes: dict[tuple[int, int], str] = {}
    hours = list(range(24))
    buffer: list[str] = []
    size = count = 0
    for user_id in range(first_user_id, first_user_id + users):
        first_day = rng.randrange(days)
        n = max(1, int(rng.expovariate(1 / events_per_user)))
        span = days - first_day
        picked = []
        for _ in range(n):
            offset = int(rng.expovariate(3 / span))  # most activity in a user's first days
            picked.append(
                (
                    first_day + (offset if offset < span else rng.randrange(span)),
                    rng.choices(hours, HOUR_WEIGHTS)[0],
                )
            )
        lo = hi = None
        for day, hour in picked:
            prefix = prefixes.get((day, hour))
            if prefix is None:
                prefix = prefixes[(day, hour)] = (start + timedelta(days=day)).strftime(
                    "%Y-%m-%d "
                ) + f"{hour:02d}:"
            second = rng.randrange(3600)
            ts = f"{prefix}{second // 60:02d}:{second % 60:02d}+00"
            lo = ts if lo is None or ts < lo else lo
            hi = ts if hi is None or ts > hi else hi
            kind = rng.choice(KINDS)
            intent = (
                rng.choice(INTENTS)
                if kind == "message"
                else ("nlu_fallback" if kind == "fallback" else "\\N")
            )
            line = f"{user_id}\t{user_id}\t{ts}\t{kind}\t{intent}\n"
            buffer.append(line)
            size += len(line)
            count += 1
        user_rows.append(f"{user_id}\t{lo}\t{hi}\tf\tf\n")
        if size >= _CHUNK:
            yield "".join(buffer), count
            buffer, size, count = [], 0, 0
    if buffer:
        yield "".join(buffer), count


def copy_new_events(engine: Engine, n: int, *, users: int, end: datetime, seed: int = 11) -> None:
    """COPY `n` more events of existing users in the last day (some dated weeks back: late ones)."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        user_id = rng.randint(1, users)
        back = timedelta(seconds=rng.randrange(86400)) if i % 10 else timedelta(days=rng.randint(2, 60))
        ts = (end - back).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
        lines.append(f"{user_id}\t{user_id}\t{ts}\tmessage\t{rng.choice(INTENTS)}\n")
    statement = "COPY events (user_id, chat_id, ts, kind, intent) FROM STDIN"
    with (
        psycopg.connect(_libpq_url(engine)) as connection,
        connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        copy.write("".join(lines))
