"""Incremental rollups equal a recount of the whole log: batches, late events, forgetting, concurrency."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from demo.synthetic import populate
from scheduler.jobs import JOBS
from store import EventRecord, append_events
from store.rollups import rebuild_rollups, refresh_rollups
from store.users import forget_user

END = datetime(2026, 11, 20, 12, 37, tzinfo=UTC)


def _tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            "user_days": sorted(tuple(r) for r in connection.execute(text("SELECT * FROM user_days"))),
            "event_hours": sorted(
                tuple(r) for r in connection.execute(text("SELECT * FROM event_hours WHERE events > 0"))
            ),
            "cohort_counts": sorted(
                tuple(r) for r in connection.execute(text("SELECT * FROM cohort_counts"))
            ),
            "user_last_events": sorted(
                tuple(r) for r in connection.execute(text("SELECT * FROM user_last_events"))
            ),
        }


def _random_events(rng: random.Random, n: int, *, users: int) -> list[EventRecord]:
    kinds = ["message", "message", "fallback", "reaction", "callback"]
    events = []
    for _ in range(n):
        user = rng.randint(1, users)
        ts = END - timedelta(seconds=rng.randint(0, 120 * 86400))  # late: anywhere in the past
        kind = rng.choice(kinds)
        intent = rng.choice(["greet", "price", None]) if kind == "message" else None
        channel = rng.random() < 0.05
        events.append(
            EventRecord(
                user_id=None if channel else user,
                chat_id=-5 if channel else user,
                ts=ts,
                kind=kind,
                intent=intent,
            )
        )
    return events


def _recount(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    incremental = _tables(engine)
    rebuild_rollups(engine)
    return incremental


def test_incremental_batches_and_late_events_equal_a_recount(engine: Engine) -> None:
    rng = random.Random(3)
    populate(engine, 60, events_per_user=20, end=END, seed=5)
    report = refresh_rollups(engine, batch=300)
    assert report.batches > 1 and report.events > 0
    for round_ in range(3):
        append_events(engine, _random_events(rng, 400, users=90 + 10 * round_))
        refresh_rollups(engine, batch=150)
    incremental = _recount(engine)
    assert all(incremental.values())
    assert incremental == _tables(engine)
    assert refresh_rollups(engine).events == 0  # nothing new: nothing folded twice


def test_the_large_batch_path_rebuilds_the_cohorts(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("store.rollups.DELTA_USERS", 5)
    populate(engine, 40, events_per_user=15, end=END, seed=2)
    refresh_rollups(engine, batch=10_000)
    append_events(engine, _random_events(random.Random(1), 200, users=50))
    refresh_rollups(engine)
    assert _recount(engine) == _tables(engine)


def test_forgetting_a_user_takes_them_out_of_the_rollups(engine: Engine) -> None:
    populate(engine, 30, events_per_user=20, end=END, seed=8)
    # another user's event in user 7's private chat: it goes with the chat, the rest of their days stay
    append_events(engine, [EventRecord(user_id=8, chat_id=7, ts=END - timedelta(days=3), kind="message")])
    refresh_rollups(engine)
    before = _tables(engine)
    assert any(row[0] == 7 for row in before["user_days"])
    forget_user(engine, 7)
    after = _recount(engine)
    assert after == _tables(engine)
    assert not any(row[0] == 7 for row in after["user_days"])
    assert after != before


def test_a_refresh_is_idempotent_from_its_watermark(engine: Engine) -> None:
    populate(engine, 10, events_per_user=10, end=END, seed=1)
    first = refresh_rollups(engine)
    assert first.last_event_id > 0
    snapshot = _tables(engine)
    assert refresh_rollups(engine).batches == 0
    assert _tables(engine) == snapshot


def test_the_rollup_job_runs_every_minute() -> None:
    assert JOBS["rollups"].schedule == "minutely"
