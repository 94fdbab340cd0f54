"""The benchmarks' fast history writer gives exactly `populate`'s rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from bench.fastgen import fast_populate, history_rows
from demo.simulation.activity import iter_actions
from demo.simulation.bulk import batch_rows
from demo.synthetic import DEFAULT_DAYS, DEFAULT_END, populate, synthetic_population
from store import count_events, create_db_engine, upgrade
from store.sanitize import storable_json


def test_rows_equal_the_bulk_writers_records() -> None:
    population = synthetic_population(400, events_per_user=20, seed=3)
    start = DEFAULT_END - timedelta(days=DEFAULT_DAYS)
    fast = [row for chunk in history_rows(population, start=start, chunk_users=150) for row in chunk]
    slow = [
        record
        for number, batch in enumerate(iter_actions(population, start=start, chunk_users=150))
        for record in batch_rows(population, batch, seed=number)
    ]
    assert len(fast) == len(slow) > 400 * 5
    kinds = set()
    for (user, chat, ts, kind, intent, confidence, attributes), record in zip(fast, slow, strict=True):
        assert (user, chat, kind, intent, confidence) == (
            record.user_id,
            record.chat_id,
            record.kind,
            record.intent,
            record.confidence,
        )
        assert datetime.fromtimestamp(ts, UTC) == record.ts
        assert attributes == storable_json(record.attributes)
        kinds.add(kind)
    # Every row shape of the generator was compared, not just the common ones.
    assert kinds == {"command", "feedback", "join", "reaction", "poll_answer", "message", "fallback"}


def _log(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with engine.connect() as connection:
        events = connection.execute(
            text(
                "SELECT user_id, chat_id, ts, kind, intent, confidence, text, attributes, update_id"
                " FROM events ORDER BY id"
            )
        ).all()
        users = connection.execute(
            text(
                "SELECT id, username, language, first_seen, last_seen, opted_out, blocked"
                " FROM users ORDER BY id"
            )
        ).all()
    return [tuple(r) for r in events], [tuple(r) for r in users]


def _sqlite_terms(
    row: tuple[object, ...], *, times: tuple[int, ...], json_at: int | None = None
) -> tuple[object, ...]:
    """A PostgreSQL row as SQLite gives it back: naive-UTC timestamp text, JSON as stored text."""
    cells = list(row)
    for at in times:
        stamp = cells[at]
        assert isinstance(stamp, datetime)
        cells[at] = stamp.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if json_at is not None:
        cells[json_at] = storable_json(cells[json_at])
    return tuple(cells)


def test_store_equals_populate(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    fast_engine = create_db_engine(db_url)
    slow_engine = create_db_engine(f"sqlite:///{tmp_path_factory.mktemp('slow') / 'slow.db'}")
    try:
        upgrade(fast_engine)
        upgrade(slow_engine)
        seed = 5
        done: list[tuple[int, int]] = []
        # The chunking is part of the draws: populate's default chunk, as the benchmarks use.
        written = fast_populate(fast_engine, 250, seed=seed, progress=lambda u, e: done.append((u, e)))
        expected = populate(slow_engine, 250, seed=seed)
        assert written.n_events == expected.n_events == count_events(fast_engine)
        assert written.types == expected.types
        assert done == [(250, written.n_events)]
        fast_events, fast_users = _log(fast_engine)
        slow_events, slow_users = _log(slow_engine)
        assert len(fast_users) == 250
        if fast_engine.dialect.name == "postgresql":  # compare on SQLite's terms
            fast_events = [_sqlite_terms(r, times=(2,), json_at=7) for r in fast_events]
            fast_users = [_sqlite_terms(r, times=(3, 4)) for r in fast_users]
        assert fast_events == slow_events
        assert fast_users == slow_users
        with pytest.raises(ValueError, match="empty store"):
            fast_populate(fast_engine, 10)
        assert count_events(fast_engine) == written.n_events
    finally:
        fast_engine.dispose()
        slow_engine.dispose()
