"""A dashboard over a migrated SQLite store with a movable clock, and logged-in clients."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.exceptions import StarletteDeprecationWarning

from dashboard import DashboardConfig, create_app
from store import EventRecord, UserInfo, append_events, mark_blocked, set_opted_out, upsert_user
from store.logins import issue_login_token
from store.models import AnalyticsRun, Rule, Segment, SegmentMembership

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2`; the installed httpx works the same for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ADMIN = 700_001
OTHER_ADMIN = 700_002
STRANGER = 555
BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The dashboard's clock, moved by tests."""

    now: datetime = field(default=NOW)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Dash:
    """The app, its clock, its config and helpers to log in."""

    engine: Engine
    config: DashboardConfig
    clock: Clock
    app: object

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)  # type: ignore[arg-type]

    def link_token(self, user_id: int = ADMIN, *, at: datetime | None = None) -> str:
        return issue_login_token(self.engine, self.config.secret, user_id=user_id, now=at or self.clock.now)

    def logged_in(self, user_id: int = ADMIN) -> TestClient:
        client = self.client()
        response = client.post("/login", data={"token": self.link_token(user_id)})
        assert response.status_code == 303, response.text
        return client


def csrf_of(html: str) -> str:
    """The CSRF token embedded in a page's forms."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "page has no CSRF field"
    return match.group(1)


def seed_users(engine: Engine, *, n: int = 12, now: datetime = NOW) -> None:
    """`n` users with a few events each; user 3 blocked the bot, user 4 opted out."""
    rows = []
    for uid in range(1, n + 1):
        upsert_user(
            engine, UserInfo(id=uid, username=f"user{uid}", language="en"), seen_at=now - timedelta(days=uid)
        )
        for k in range(3):
            rows.append(
                EventRecord(
                    user_id=uid,
                    chat_id=uid,
                    ts=now - timedelta(days=uid, hours=k),
                    kind="message",
                    intent="pricing",
                )
            )
    append_events(engine, rows)
    mark_blocked(engine, 3)
    set_opted_out(engine, 4, True)


def seed_runs(engine: Engine) -> tuple[int, int]:
    """Two analytics runs over users 1-12: 'Askers' (1-6) then 'Askers' (1-4) and 'Quiet' (5-12)."""
    with Session(engine) as session, session.begin():
        first = AnalyticsRun(
            status="done",
            is_current=False,
            created_at=NOW - timedelta(days=1),
            n_users=12,
            params={"as_of": NOW.isoformat()},
            metrics={},
        )
        session.add(first)
        session.flush()
        a = Segment(run_id=first.id, label=0, name="Askers", description="ask a lot", size=6, profile={})
        b = Segment(run_id=first.id, label=1, name="Lurkers", description="read", size=6, profile={})
        session.add_all([a, b])
        session.flush()
        for uid in range(1, 13):
            session.add(SegmentMembership(run_id=first.id, user_id=uid, segment_id=(a if uid <= 6 else b).id))
        second = AnalyticsRun(
            status="done",
            is_current=True,
            created_at=NOW,
            n_users=12,
            params={"as_of": NOW.isoformat()},
            metrics={"matched_segments": {"0": a.id}},
        )
        session.add(second)
        session.flush()
        askers = Segment(
            run_id=second.id,
            label=0,
            name="Askers",
            description="ask a lot",
            size=4,
            profile={"questions": 9.0, "recency_days": 2.0},
        )
        quiet = Segment(
            run_id=second.id, label=1, name="Quiet", description="silent", size=8, profile={"questions": 1.0}
        )
        session.add_all([askers, quiet])
        session.flush()
        for uid in range(1, 13):
            session.add(
                SegmentMembership(
                    run_id=second.id, user_id=uid, segment_id=(askers if uid <= 4 else quiet).id
                )
            )
        for ante, cons, lift in (
            (["segment:Askers"], ["intent:pricing"], 3.0),
            (["intent:pricing"], ["segment:Askers"], 2.5),
            (["intent:docs"], ["churned_30d"], 1.5),
        ):
            session.add(
                Rule(
                    run_id=second.id,
                    antecedents=ante,
                    consequents=cons,
                    support=0.3,
                    confidence=0.8,
                    lift=lift,
                    leverage=0.1,
                    conviction=2.0,
                    sentence=f"{ante} then {cons}",
                )
            )
        return askers.id, quiet.id


@pytest.fixture
def dash(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Dash]:
    """A dashboard on a fresh SQLite store, managers ADMIN and OTHER_ADMIN."""
    clock = Clock()
    config = DashboardConfig(
        engine=sqlite_engine,
        secret=b"test-secret",
        admin_ids=frozenset({ADMIN, OTHER_ADMIN}),
        base_url="http://testserver",
        bot_token=BOT_TOKEN,
        cache_ttl_s=0.0,
    )
    yield Dash(sqlite_engine, config, clock, create_app(config, now=clock))
