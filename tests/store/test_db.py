"""Units of work: a read snapshot sees one committed state, whatever commits beside it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from store import UserInfo, upsert_user
from store.db import read_snapshot
from store.models import User

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _users(session: object) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)  # type: ignore[attr-defined]


def test_read_snapshot_does_not_see_commits_made_during_it(engine: Engine) -> None:
    upsert_user(engine, UserInfo(id=1), seen_at=NOW)
    with read_snapshot(engine) as session:
        assert _users(session) == 1
        upsert_user(engine, UserInfo(id=2), seen_at=NOW)  # another connection commits meanwhile
        assert _users(session) == 1  # the same snapshot: the second query agrees with the first
    with read_snapshot(engine) as session:
        assert _users(session) == 2


def test_read_snapshot_writes_nothing(sqlite_engine: Engine) -> None:
    with read_snapshot(sqlite_engine) as session:
        session.add(User(id=7, first_seen=NOW, last_seen=NOW))
        session.flush()
        assert _users(session) == 1
    with read_snapshot(sqlite_engine) as session:
        assert _users(session) == 0
