"""The event log on SQLite and PostgreSQL: order, users, atomicity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from store import (
    EventRecord,
    EventWriter,
    append_events,
    count_events,
    get_user,
    iter_user_sequences,
    user_events,
)
from store.records import UserInfo
from store.users import forget_user, upsert_user

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _row(user_id: int, minutes: int, kind: str = "message", intent: str | None = None) -> EventRecord:
    return EventRecord(
        user_id=user_id,
        ts=T0 + timedelta(minutes=minutes),
        kind=kind,
        intent=intent,
        attributes={"n": minutes},
    )


def test_events_read_back_per_user_in_time_order(engine: Engine) -> None:
    append_events(engine, [_row(2, 5, intent="b"), _row(1, 3, intent="x"), _row(2, 1, intent="a")])
    append_events(engine, [_row(2, 3, intent="m")])
    sequences = {user: [e.intent for e in events] for user, events in iter_user_sequences(engine)}
    assert sequences == {1: ["x"], 2: ["a", "m", "b"]}
    latest = user_events(engine, 2, limit=2)
    assert [e.intent for e in latest] == ["m", "b"]
    assert latest[0].ts == T0 + timedelta(minutes=3)
    assert latest[0].ts.tzinfo is not None
    assert latest[1].attributes == {"n": 5}


def test_append_creates_users_and_widens_their_span(engine: Engine) -> None:
    append_events(engine, [_row(7, 10)])
    append_events(engine, [_row(7, 0), _row(7, 30)])
    user = get_user(engine, 7)
    assert user is not None
    assert (user.first_seen, user.last_seen) == (T0, T0 + timedelta(minutes=30))


def test_events_without_a_user_are_stored_alone(engine: Engine) -> None:
    # Channel posts and similar updates have no user: the batch must not try to upsert nobody.
    channel_post = EventRecord(user_id=None, chat_id=-100, ts=T0, kind="channel_post")
    assert append_events(engine, [channel_post]) == 1
    writer = EventWriter(engine, max_delay_s=0.001)
    writer.start()
    writer.log(EventRecord(user_id=None, chat_id=-100, ts=T0, kind="channel_post"))
    writer.close()
    assert writer.failures == 0
    assert count_events(engine, kind="channel_post") == 2
    assert get_user(engine, -100) is None


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive"):
        upsert_user(engine, UserInfo(id=1), seen_at=datetime(2026, 1, 1))


def test_writer_flushes_everything_and_drops_text_unless_enabled(engine: Engine) -> None:
    writer = EventWriter(engine, store_text=False, max_delay_s=0.001)
    writer.start()
    for i in range(250):
        writer.log(EventRecord(user_id=i % 5, ts=T0 + timedelta(seconds=i), kind="message", text="secret"))
    assert writer.flush(timeout=10)
    writer.close()
    assert count_events(engine) == 250
    assert all(e.text is None for e in user_events(engine, 1))


def test_writer_spools_when_database_is_gone_and_replays(tmp_path, engine: Engine) -> None:
    from store import create_db_engine, replay_spool

    dead = create_db_engine(f"sqlite:///{tmp_path / 'missing' / 'nope.db'}")  # no schema: inserts fail
    writer = EventWriter(dead, spool_dir=tmp_path / "spool", max_delay_s=0.001)
    writer.start()
    writer.log(EventRecord(user_id=9, ts=T0, kind="command", intent="start"))
    assert not writer.flush(timeout=0.3)
    writer.close(timeout=1)
    assert list((tmp_path / "spool").glob("*.jsonl"))
    assert replay_spool(engine, tmp_path / "spool") == 1
    assert [e.intent for e in user_events(engine, 9)] == ["start"]
    assert not list((tmp_path / "spool").glob("*.jsonl"))


def test_forget_deletes_everything_about_one_user(engine: Engine) -> None:
    append_events(engine, [_row(1, 0), _row(1, 1), _row(2, 0)])
    report = forget_user(engine, 1)
    assert report.deleted["events"] == 2
    assert report.deleted["users"] == 1
    assert get_user(engine, 1) is None
    assert count_events(engine) == 1
