"""The buffered event writer under faults: poison rows, unexpected errors, outages, forget."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

import store.writer
from store import (
    EventLogBehindError,
    EventRecord,
    EventWriter,
    append_events,
    count_events,
    create_db_engine,
    get_user,
    replay_spool,
    user_events,
)
from store.spool import DEAD_LETTER_DIR, DEAD_LETTER_FILE, write_spool

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(user_id: int, n: int = 0, **fields: object) -> EventRecord:
    return EventRecord(
        user_id=user_id, chat_id=user_id, ts=T0 + timedelta(seconds=n), kind="message", **fields
    )  # type: ignore[arg-type]


def _dead_letters(spool: Path) -> list[dict[str, object]]:
    path = spool / DEAD_LETTER_DIR / DEAD_LETTER_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_poison_event_is_dead_lettered_and_the_rest_written(engine: Engine, tmp_path: Path) -> None:
    # A user id beyond 64 bits: PostgreSQL answers DataError, SQLite raises OverflowError.
    # Before, the first retried the batch forever and the second killed the writer thread.
    spool = tmp_path / "spool"
    writer = EventWriter(engine, spool_dir=spool, max_delay_s=0.05)
    writer.start()
    for n in range(20):
        writer.log(_event(1 + n % 3, n))
    writer.log(_event(2**70, 99))
    writer.log(EventRecord(user_id=3, chat_id=2**70, ts=T0, kind="message"))  # fails in COPY itself
    for n in range(20, 40):
        writer.log(_event(1 + n % 3, n))
    assert writer.flush(timeout=10)
    writer.log(_event(5, 100))  # the writer is still alive afterwards
    assert writer.flush(timeout=10)
    writer.close()
    assert count_events(engine) == 41
    assert writer.dead_lettered == 2
    letters = _dead_letters(spool)
    assert [(letter["event"]["user_id"], letter["event"]["chat_id"]) for letter in letters] == [  # type: ignore[index]
        (2**70, 2**70),
        (3, 2**70),
    ]
    assert letters[0]["reason"]


@pytest.mark.parametrize("text", ["NUL \x00 inside", "lone \ud800 surrogate", "pair \ud83d\ude00 ok"])
def test_text_no_backend_can_store_is_cleaned_in_every_column(engine: Engine, text: str) -> None:
    # PostgreSQL refuses NUL in text (a raw COPY error, which stopped the writer for good);
    # no UTF-8 database takes a lone surrogate (UnicodeEncodeError, on SQLite too).
    writer = EventWriter(engine, store_text=True, max_delay_s=0.001)
    writer.start()
    record = EventRecord(
        user_id=7,
        ts=T0,
        kind=f"k{text}"[:32],
        intent=f"i{text}",
        text=text,
        attributes={"name": text, text: [text, float("nan")]},
    )
    writer.log(record)
    writer.log(_event(7, 1))
    assert writer.flush(timeout=10)
    writer.close()
    assert writer.dead_lettered == 0
    stored = user_events(engine, 7)
    assert len(stored) == 2
    first = stored[0]
    for value in (first.kind, first.intent, first.text, *first.attributes):  # type: ignore[union-attr]
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogate left
    assert first.text is not None and first.text.startswith(text.split()[0])
    if "pair" in text:
        assert "\U0001f600" in first.text  # a valid pair is one character, kept
    values = list(first.attributes.values())  # type: ignore[union-attr]
    assert values[1][1] is None  # NaN, which JSON cannot hold, became null


def test_an_unexpected_exception_does_not_kill_the_writer(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.writer.append_events

    def flaky(engine: Engine, records: Sequence[EventRecord]) -> int:
        if any(r.kind == "boom" for r in records):
            raise RuntimeError("a bug, not a database error")
        return real(engine, records)

    monkeypatch.setattr(store.writer, "append_events", flaky)
    calls: list[int] = []

    def on_written(count: int) -> None:
        calls.append(count)
        if len(calls) == 1:
            raise KeyError("the callback fails too")

    spool = tmp_path / "spool"
    writer = EventWriter(sqlite_engine, spool_dir=spool, max_delay_s=0.02, on_written=on_written)
    writer.start()
    writer.log(_event(1, 0))
    writer.log(EventRecord(user_id=1, ts=T0, kind="boom"))
    writer.log(_event(1, 1))
    assert writer.flush(timeout=5)
    writer.log(_event(1, 2))
    assert writer.flush(timeout=5)
    writer.close()
    assert [e.ts for e in user_events(sqlite_engine, 1)] == [
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
    ]
    assert [letter["event"]["kind"] for letter in _dead_letters(spool)] == ["boom"]  # type: ignore[index]
    assert "RuntimeError" in str(_dead_letters(spool)[0]["reason"])


def _unmigrated_url(db_url: str, tmp_path: Path) -> str:
    """A database with no schema: every insert fails for the database's sake, not the rows'."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return db_url.replace("search_path%3D", "search_path%3Dnowhere_")


def test_an_outage_is_retried_and_spooled_never_dead_lettered(db_url: str, tmp_path: Path) -> None:
    dead = create_db_engine(_unmigrated_url(db_url, tmp_path))
    spool = tmp_path / "spool"
    writer = EventWriter(dead, spool_dir=spool, max_delay_s=0.001)
    writer.start()
    for n in range(5):
        writer.log(_event(3, n))
    assert not writer.flush(timeout=0.5)
    writer.close(timeout=2)
    dead.dispose()
    assert writer.dead_lettered == 0
    assert writer.failures >= 1
    assert len(list(spool.glob("events-*.jsonl"))) == 1
    live = create_db_engine(db_url)
    try:
        assert replay_spool(live, spool) == 5
    finally:
        live.dispose()


def test_flush_is_not_starved_by_a_steady_stream(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flush used to wait for the queue to be empty, which steady traffic never allows once
    # an insert takes longer than the gap between two events (here 10 ms against ~0.3 ms).
    real = store.writer.append_events

    def slow(engine: Engine, records: Sequence[EventRecord]) -> int:
        time.sleep(0.01)
        return real(engine, records)

    monkeypatch.setattr(store.writer, "append_events", slow)
    writer = EventWriter(sqlite_engine, max_delay_s=0.05)
    writer.start()
    stop = threading.Event()

    def chatter() -> None:
        n = 0
        while not stop.is_set():
            writer.log(_event(2, n))
            n += 1
            time.sleep(0.0002)

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        time.sleep(0.1)
        writer.log(_event(1, 0))
        assert writer.flush(timeout=3)
        assert len(user_events(sqlite_engine, 1)) == 1
    finally:
        stop.set()
        thread.join()
        writer.close()


def test_replaying_a_corrupt_or_poison_spool_never_blocks_start(engine: Engine, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_spool(spool, [_event(1, 0), _event(2**70, 1), _event(1, 2)])
    (spool / "events-1.jsonl").write_text(
        '{"user_id": 4, "ts": "2026-03-01T12:00:00+00:00", "kind": "message"}\n'
        "{not json\n"
        '{"user_id": 4, "kind": "message"}\n'
        '{"user_id": "4; DROP", "ts": "2026-03-01T12:00:00+00:00", "kind": "message"}\n'
        '["a list"]\n',
        encoding="utf-8",
    )
    (spool / "events-2.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    assert replay_spool(engine, spool) == 3
    assert not list(spool.glob("events-*.jsonl"))
    assert len(user_events(engine, 1)) == 2
    assert len(user_events(engine, 4)) == 1
    letters = _dead_letters(spool)
    assert len(letters) == 5  # the poison event and four unreadable lines
    assert (spool / DEAD_LETTER_DIR / "events-2.jsonl").exists()  # the unreadable file, set aside
    assert replay_spool(engine, spool) == 0  # dead letters are never replayed


def test_forget_is_refused_while_the_log_is_behind(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, forget ignored a flush that timed out: the user's event landed after the delete.
    real = store.writer.append_events
    release = threading.Event()

    def slow(engine: Engine, records: Sequence[EventRecord]) -> int:
        release.wait(10)
        return real(engine, records)

    append_events(sqlite_engine, [_event(6, 0)])
    monkeypatch.setattr(store.writer, "append_events", slow)
    writer = EventWriter(sqlite_engine, spool_dir=tmp_path / "spool")
    writer.start()
    writer.log(_event(6, 1))
    with pytest.raises(EventLogBehindError, match="nothing was deleted"):
        writer.forget(6, timeout=0.1, attempts=2)
    assert get_user(sqlite_engine, 6) is not None
    release.set()
    report = writer.forget(6, timeout=5)
    writer.close()
    assert report.deleted["events"] == 2
    assert count_events(sqlite_engine) == 0


def test_forget_also_removes_the_user_from_spool_and_dead_letters(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    join = EventRecord(
        user_id=11, chat_id=-100, ts=T0, kind="join", attributes={"by": 10, "status": "member"}
    )
    write_spool(spool, [_event(10, 0), join, _event(12, 0)])
    writer = EventWriter(sqlite_engine, spool_dir=spool)
    writer._dead_letters.add(_event(10, 5), "test")
    report = writer.forget(10, timeout=1)
    assert report.deleted["spooled events"] == 3
    assert _dead_letters(spool) == []
    assert replay_spool(sqlite_engine, spool) == 2
    assert user_events(sqlite_engine, 10) == []
    assert user_events(sqlite_engine, 11)[0].attributes == {"by": None, "status": "member"}


def test_when_done_calls_back_once_the_events_logged_before_it_are_written(engine: Engine) -> None:
    writer = EventWriter(engine, max_delay_s=0.2)
    called: list[int] = []
    writer.when_done(lambda: called.append(0))  # nothing pending: at once
    assert called == [0]
    writer.log(_event(31, update_id=5))
    writer.when_done(lambda: called.append(count_events(engine)))
    assert called == [0]  # not before the writer has written it
    writer.start()
    try:
        deadline = time.monotonic() + 5
        while len(called) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        writer.close()
    assert called == [0, 1]
    assert [e.update_id for e in user_events(engine, 31)] == [5]


def test_when_done_has_been_called_when_close_returns(engine: Engine, tmp_path: Path) -> None:
    writer = EventWriter(engine, spool_dir=tmp_path / "spool")
    called: list[bool] = []
    writer.log(_event(32))
    writer.when_done(lambda: called.append(True))
    writer.start()
    writer.close()
    assert called == [True]
