"""Rollups of the event log that the dashboard reads instead of the log itself.

`user_days` (events per user and UTC day), `event_hours` (events per UTC hour, kind and intent),
`user_last_events` (each user's last event time) and `cohort_counts` (the weekly retention
triangle) are folded in from the events whose id is
past a watermark (`rollup_state`), in bounded id ranges, each range and its watermark in one
transaction: a crash loses nothing and counts nothing twice. The watermark is by id, not time,
so a late event (an old `ts` written now) is folded in like any other. Forgetting a user takes
their events out of the rollups in the forgetting transaction (`forget_from_rollups`).

Limitation: events must commit in id order (the single writer does); an event whose transaction
commits after a higher id was folded in would be skipped until `rebuild_rollups`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from store.db import unit_of_work

__all__ = [
    "RefreshReport",
    "day_sql",
    "forget_from_rollups",
    "hour_sql",
    "rebuild_rollups",
    "refresh_rollups",
]

logger = logging.getLogger(__name__)

STATE = "events"
BATCH = 50_000  # events per transaction: bounded memory and lock time, whatever the backlog
DELTA_USERS = 20_000  # above this many users in a batch the cohorts are rebuilt in SQL at the end
_CHUNK = 900  # ids per IN (...) list: under SQLite's bound-variable limit


def day_sql(dialect: str, ts: str = "ts") -> str:
    """SQL for the UTC day number (days since 1970-01-01) of a timestamp column."""
    if dialect == "sqlite":  # stored as naive UTC text `YYYY-MM-DD HH:MM:SS...`
        return f"CAST(julianday(substr({ts}, 1, 10)) - 2440587.5 AS INTEGER)"
    return f"CAST(floor(extract(epoch FROM {ts}) / 86400) AS INTEGER)"


def hour_sql(dialect: str, ts: str = "ts") -> str:
    """SQL for the UTC hour number (hours since the epoch) of a timestamp column."""
    if dialect == "sqlite":
        return f"({day_sql(dialect, ts)} * 24 + CAST(substr({ts}, 12, 2) AS INTEGER))"
    return f"CAST(floor(extract(epoch FROM {ts}) / 3600) AS INTEGER)"


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did: events folded in, in how many batches, up to which id, how long."""

    events: int
    batches: int
    last_event_id: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.events} events in {self.batches} batches "
            f"up to id {self.last_event_id} ({self.seconds:.1f} s)"
        )


def refresh_rollups(
    engine: Engine, *, batch: int = BATCH, max_batches: int | None = None, now: datetime | None = None
) -> RefreshReport:
    """Fold the events past the watermark into the rollups, `batch` ids per transaction.

    `max_batches` bounds the work. Only writers call this (the scheduler's `rollups` job, the
    analytics run, the CLI): the dashboard's reads never write; they merge the events past the
    watermark themselves where a figure must be current (`store.overview_queries`).
    """
    started = time.perf_counter()
    with unit_of_work(engine) as session:
        _ensure_state(session)
        high = int(session.execute(text("SELECT coalesce(max(id), 0) FROM events")).scalar_one())
    folded = batches = 0
    rebuild = False
    last = 0
    while True:
        with unit_of_work(engine) as session:
            # The no-op UPDATE takes the row's write lock first: two refreshers cannot fold one range twice.
            session.execute(
                text("UPDATE rollup_state SET last_event_id = last_event_id WHERE name = :n"), {"n": STATE}
            )
            last = int(
                session.execute(
                    text("SELECT last_event_id FROM rollup_state WHERE name = :n"), {"n": STATE}
                ).scalar_one()
            )
            if last >= high or (max_batches is not None and batches >= max_batches):
                break
            upto = min(high, last + batch)
            n, large = _fold(session, last, upto)
            rebuild = rebuild or large
            session.execute(
                text("UPDATE rollup_state SET last_event_id = :upto, refreshed_at = :now WHERE name = :n"),
                {"upto": upto, "now": _stamp(session, now), "n": STATE},
            )
            folded += n
            batches += 1
    if rebuild:
        with unit_of_work(engine) as session:
            _rebuild_derived(session)
        if engine.dialect.name == "postgresql":
            # Fresh statistics after a bulk build: without them the next batch's lookups by user
            # (an IN list on user_days' key) may be planned as scans of the whole table.
            with engine.connect() as connection:
                for table in (
                    "user_days",
                    "user_last_events",
                    "period_users",
                    "cohort_counts",
                    "event_hours",
                ):
                    connection.exec_driver_sql(f"ANALYZE {table}")
                connection.commit()
    report = RefreshReport(folded, batches, last, time.perf_counter() - started)
    if batches:
        logger.info("rollups refreshed: %s", report.summary())
    return report


def rebuild_rollups(engine: Engine, *, batch: int = BATCH) -> RefreshReport:
    """Empty the rollups and fold the whole log in again (after a restore, or to check them)."""
    with unit_of_work(engine) as session:
        _ensure_state(session)
        for table in ("user_days", "event_hours", "cohort_counts", "period_users", "user_last_events"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(text("UPDATE rollup_state SET last_event_id = 0 WHERE name = :n"), {"n": STATE})
    return refresh_rollups(engine, batch=batch)


def forget_from_rollups(session: Session, user_id: int) -> None:
    """Take the events `store.users.forget_user` is about to delete out of the rollups.

    Same predicate as its deletion (their events and those in their private chat), only the ids
    already folded in; other users with events in that chat have their days recomputed.
    """
    dialect = session.get_bind().dialect.name
    state = session.execute(
        text("SELECT last_event_id FROM rollup_state WHERE name = :n"), {"n": STATE}
    ).scalar()
    if not state:
        return
    where = "(user_id = :u OR chat_id = :u) AND id <= :wm"
    params = {"u": user_id, "wm": int(state)}
    hour = hour_sql(dialect)
    rows = session.execute(
        text(
            f"SELECT {hour}, kind, coalesce(intent, ''), count(*), count(user_id) FROM events "
            f"WHERE {where} GROUP BY {hour}, kind, coalesce(intent, '')"
        ),
        params,
    ).all()
    for h, kind, intent, n, with_user in rows:
        session.execute(
            text(
                "UPDATE event_hours SET events = events - :n, user_events = user_events - :w "
                "WHERE hour = :h AND kind = :k AND intent = :i"
            ),
            {"n": int(n), "w": int(with_user), "h": int(h), "k": kind, "i": intent},
        )
    session.execute(text("DELETE FROM event_hours WHERE events <= 0"))
    others = {
        int(u)
        for (u,) in session.execute(
            text(f"SELECT DISTINCT user_id FROM events WHERE {where} AND user_id IS NOT NULL"), params
        )
    }
    affected = sorted(others | {user_id})
    before = _user_day_sets(session, affected)
    day = day_sql(dialect)
    for other in affected:
        # Their days as they will be once the deletion ran: recounted from the rest of their events.
        session.execute(text("DELETE FROM user_days WHERE user_id = :o"), {"o": other})
        if other != user_id:
            session.execute(
                text(
                    "INSERT INTO user_days (user_id, day, events) "
                    f"SELECT user_id, {day}, count(*) FROM events WHERE user_id = :o "
                    f"AND (chat_id IS NULL OR chat_id <> :u) AND id <= :wm GROUP BY user_id, {day}"
                ),
                {"o": other, **params},
            )
    _apply_delta(session, before, _user_day_sets(session, affected))
    session.execute(text("DELETE FROM user_last_events WHERE user_id = :u"), {"u": user_id})
    for other in sorted(others - {user_id}):
        last = session.execute(
            text(
                "SELECT max(ts) FROM events WHERE user_id = :o "
                "AND (chat_id IS NULL OR chat_id <> :u) AND id <= :wm"
            ),
            {"o": other, **params},
        ).scalar()
        if last is None:
            session.execute(text("DELETE FROM user_last_events WHERE user_id = :o"), {"o": other})
        else:
            session.execute(
                text("UPDATE user_last_events SET last_ts = :t WHERE user_id = :o"), {"t": last, "o": other}
            )


def _ensure_state(session: Session) -> None:
    exists = session.execute(text("SELECT 1 FROM rollup_state WHERE name = :n"), {"n": STATE}).scalar()
    if not exists:
        session.execute(text("INSERT INTO rollup_state (name, last_event_id) VALUES (:n, 0)"), {"n": STATE})


def _stamp(session: Session, now: datetime | None) -> datetime | str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if session.get_bind().dialect.name == "sqlite":
        return moment.replace(tzinfo=None).isoformat(sep=" ")
    return moment


def _fold(session: Session, low: int, high: int) -> tuple[int, bool]:
    """Add events with id in (low, high] to the rollups: `(events, whether the cohorts need a rebuild)`."""
    dialect = session.get_bind().dialect.name
    day, hour = day_sql(dialect), hour_sql(dialect)
    window = {"lo": low, "hi": high}
    users = [
        int(u)
        for (u,) in session.execute(
            text("SELECT DISTINCT user_id FROM events WHERE id > :lo AND id <= :hi AND user_id IS NOT NULL"),
            window,
        )
    ]
    large = len(users) > DELTA_USERS
    before = {} if large else _user_day_sets(session, users)
    session.execute(
        text(
            f"INSERT INTO user_days (user_id, day, events) SELECT user_id, {day}, count(*) FROM events "
            f"WHERE id > :lo AND id <= :hi AND user_id IS NOT NULL GROUP BY user_id, {day} "
            "ON CONFLICT (user_id, day) DO UPDATE SET events = user_days.events + excluded.events"
        ),
        window,
    )
    session.execute(
        text(
            "INSERT INTO event_hours (hour, kind, intent, events, user_events) "
            f"SELECT {hour}, kind, coalesce(intent, ''), count(*), count(user_id) FROM events "
            f"WHERE id > :lo AND id <= :hi GROUP BY {hour}, kind, coalesce(intent, '') "
            "ON CONFLICT (hour, kind, intent) DO UPDATE SET events = event_hours.events + excluded.events, "
            "user_events = event_hours.user_events + excluded.user_events"
        ),
        window,
    )
    later = "greatest" if dialect == "postgresql" else "max"  # SQLite's two-argument max() is scalar
    session.execute(
        text(
            "INSERT INTO user_last_events (user_id, last_ts) SELECT user_id, max(ts) FROM events "
            "WHERE id > :lo AND id <= :hi AND user_id IS NOT NULL GROUP BY user_id "
            "ON CONFLICT (user_id) DO UPDATE SET "
            f"last_ts = {later}(user_last_events.last_ts, excluded.last_ts)"
        ),
        window,
    )
    n = int(
        session.execute(text("SELECT count(*) FROM events WHERE id > :lo AND id <= :hi"), window).scalar_one()
    )
    if not large:
        _apply_delta(session, before, _user_day_sets(session, users))
    return n, large


def _user_day_sets(session: Session, users: Iterable[int]) -> dict[int, set[int]]:
    """The active UTC days of each of `users`, from the rollup."""
    ids = list(users)
    found: dict[int, set[int]] = {u: set() for u in ids}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join(str(int(u)) for u in chunk)  # ints only: safe to inline
        for user_id, day in session.execute(
            text(f"SELECT user_id, day FROM user_days WHERE user_id IN ({marks})")
        ):
            found[int(user_id)].add(int(day))
    return found


def _contributions(days_by_user: dict[int, set[int]]) -> Counter[tuple[int, int]]:
    """Each user counted once per (first week, weeks since) they were active: their cohort cells."""
    cells: Counter[tuple[int, int]] = Counter()
    for days in days_by_user.values():
        if not days:
            continue
        weeks = {d // 7 for d in days}
        first = min(weeks)
        cells.update((first, w - first) for w in weeks)
    return cells


PERIODS = (1, 7)  # the overview's daily and weekly active users


def _apply_delta(session: Session, before: dict[int, set[int]], after: dict[int, set[int]]) -> None:
    """Move what the changed users' days feed: cohort cells, users per day and week."""
    cohorts = _contributions(after)
    cohorts.subtract(_contributions(before))
    _add(session, "cohort_counts", ("cohort", "week_offset"), "users", cohorts)
    periods: Counter[tuple[int, int]] = Counter()
    for user_id, now in after.items():
        was = before.get(user_id, set())
        for p in PERIODS:
            periods.update((p, b) for b in {d // p for d in now} - {d // p for d in was})
            periods.subtract((p, b) for b in {d // p for d in was} - {d // p for d in now})
    _add(session, "period_users", ("period_days", "bucket"), "users", periods)


def _add(
    session: Session, table: str, keys: tuple[str, str], value: str, delta: Counter[tuple[int, int]]
) -> None:
    changes = [{"a": a, "b": b, "n": n} for (a, b), n in delta.items() if n]
    if not changes:
        return
    session.execute(
        text(
            f"INSERT INTO {table} ({keys[0]}, {keys[1]}, {value}) VALUES (:a, :b, :n) "
            f"ON CONFLICT ({keys[0]}, {keys[1]}) DO UPDATE SET {value} = {table}.{value} + excluded.{value}"
        ),
        changes,
    )
    session.execute(text(f"DELETE FROM {table} WHERE {value} <= 0"))


def _rebuild_derived(session: Session) -> None:
    """Cohorts, users per day and week: recounted from `user_days` in SQL (a large backlog)."""
    for table in ("cohort_counts", "period_users"):
        session.execute(text(f"DELETE FROM {table}"))
    session.execute(
        text(
            "INSERT INTO cohort_counts (cohort, week_offset, users) "
            "SELECT f.first_week, w.week - f.first_week, count(*) FROM "
            "(SELECT DISTINCT user_id, day / 7 AS week FROM user_days) w JOIN "
            "(SELECT user_id, min(day) / 7 AS first_week FROM user_days GROUP BY user_id) f "
            "ON f.user_id = w.user_id GROUP BY f.first_week, w.week - f.first_week"
        )
    )
    for p in PERIODS:
        session.execute(
            text(
                "INSERT INTO period_users (period_days, bucket, users) "
                f"SELECT {p}, day / {p}, count(DISTINCT user_id) FROM user_days GROUP BY day / {p}"
            )
        )
