"""The overview's rollup readers give exactly the figures of the per-figure queries on the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from dashboard.views.overview import _heatmap
from demo.synthetic import populate
from store import EventRecord, append_events
from store.analytics_queries import (
    active_users_by,
    activity_heatmap,
    distinct_users_between,
    period_counts,
    retention_cohorts,
)
from store.db import read_snapshot
from store.overview_queries import active_by, cohort_rows, hour_events, period_messages, rolling_active_users
from store.rollups import refresh_rollups
from store.users import forget_user
from tests.dashboard.conftest import Dash

UNTIL = datetime(2026, 11, 20, 12, 37, tzinfo=UTC)  # not on an hour: the rolling windows cut hours


@pytest.fixture
def populated(engine: Engine) -> Engine:
    populate(engine, 80, events_per_user=25, end=UNTIL, seed=11)
    refresh_rollups(engine, batch=500)  # several batches
    extra = [  # a channel post (no user), unanswered questions, one right at a window's edge
        EventRecord(user_id=None, chat_id=-100, ts=UNTIL - timedelta(days=2), kind="message", intent="news"),
        EventRecord(
            user_id=3, chat_id=3, ts=UNTIL - timedelta(hours=5), kind="fallback", intent="nlu_fallback"
        ),
        EventRecord(
            user_id=4, chat_id=4, ts=UNTIL - timedelta(days=7), kind="fallback", intent="nlu_fallback"
        ),
        EventRecord(user_id=5, chat_id=5, ts=UNTIL - timedelta(days=1, seconds=1), kind="reaction"),
        # late: written after the first refresh, dated weeks back (a new cohort week for user 900)
        EventRecord(user_id=900, chat_id=900, ts=UNTIL - timedelta(days=40), kind="message", intent="hi"),
        EventRecord(user_id=6, chat_id=6, ts=UNTIL - timedelta(days=60, minutes=3), kind="message"),
    ]
    append_events(engine, extra)
    refresh_rollups(engine)
    return engine


@pytest.mark.parametrize("days", [7, 30, 90])
def test_the_rollups_match_the_queries_on_the_log(populated: Engine, days: int) -> None:
    since = UNTIL - timedelta(days=days)
    with read_snapshot(populated) as db:
        hours = hour_events(db, since=since, until=UNTIL)
        assert sum(n for _, n in hours) > 100  # the population is in the window
        assert period_messages(db, since=since, until=UNTIL, top=8) == period_counts(
            db, since=since, until=UNTIL, top=8
        )
        for period in (1, 7):
            expected_rows = active_users_by(db, period_days=period, since=since, until=UNTIL).rows
            assert active_by(db, period_days=period, since=since, until=UNTIL) == expected_rows
        expected = tuple(
            distinct_users_between(db, since=UNTIL - timedelta(days=d), until=UNTIL) for d in (1, 7, 30)
        )
        assert rolling_active_users(db, until=UNTIL, days=(1, 7, 30)) == expected
        assert cohort_rows(db) == retention_cohorts(db, until=UNTIL).rows
        grid = [[0] * 24 for _ in range(7)]
        for weekday_sun0, hour, n in activity_heatmap(db, since=since, until=UNTIL).rows:
            grid[(weekday_sun0 - 1) % 7][hour] += n
        assert _heatmap(hours, ZoneInfo("UTC")) == grid


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (UNTIL - timedelta(minutes=20), UNTIL),  # inside one hour
        (UNTIL.replace(hour=0, minute=0), UNTIL.replace(hour=6, minute=0)),  # aligned, inside one day
        (UNTIL - timedelta(days=3, hours=1), UNTIL.replace(minute=0)),  # aligned end, cut start
    ],
)
def test_windows_cut_anywhere_match(populated: Engine, since: datetime, until: datetime) -> None:
    with read_snapshot(populated) as db:
        assert period_messages(db, since=since, until=until, top=5) == period_counts(
            db, since=since, until=until, top=5
        )
        assert active_by(db, period_days=1, since=since, until=until) == (
            active_users_by(db, period_days=1, since=since, until=until).rows
        )
        assert rolling_active_users(db, until=until, days=(1,)) == (
            distinct_users_between(db, since=until - timedelta(days=1), until=until),
        )


def test_the_heatmap_places_each_hour_by_the_offset_of_its_own_day() -> None:
    summer = datetime(2026, 7, 6, 10, tzinfo=UTC)  # Monday 12:00 in Berlin (CEST, +2)
    winter = datetime(2026, 12, 7, 10, tzinfo=UTC)  # Monday 11:00 in Berlin (CET, +1)
    grid = _heatmap([(summer, 3), (winter, 6)], ZoneInfo("Europe/Berlin"))
    assert grid[0][12] == 3 and grid[0][11] == 6
    assert sum(map(sum, grid)) == 9


def _rolling_on_the_log(db: Session, until: datetime, days: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(distinct_users_between(db, since=until - timedelta(days=d), until=until) for d in days)


def test_the_events_past_the_watermark_count_without_a_refresh(populated: Engine) -> None:
    """The rolling figures and today's bar take in the unfolded tail, and reading writes nothing."""
    tail = [
        EventRecord(user_id=4000, chat_id=4000, ts=UNTIL - timedelta(minutes=2), kind="message"),  # new user
        EventRecord(user_id=3, chat_id=3, ts=UNTIL - timedelta(minutes=1), kind="message"),
        EventRecord(user_id=4001, chat_id=4001, ts=UNTIL - timedelta(days=20), kind="message"),  # late
        EventRecord(user_id=4002, chat_id=4002, ts=UNTIL + timedelta(seconds=5), kind="message"),  # after
    ]
    append_events(populated, tail)
    with populated.connect() as connection:
        watermark = connection.execute(text("SELECT last_event_id FROM rollup_state")).scalar_one()
    with read_snapshot(populated) as db:
        expected = _rolling_on_the_log(db, UNTIL, (1, 7, 30))
        assert rolling_active_users(db, until=UNTIL, days=(1, 7, 30)) == expected
        today = UNTIL.replace(hour=0, minute=0)
        assert active_by(db, period_days=1, since=today, until=UNTIL) == (
            active_users_by(db, period_days=1, since=today, until=UNTIL).rows
        )
        month = UNTIL - timedelta(days=30)
        whole = UNTIL.replace(hour=0, minute=0) - timedelta(days=28)  # whole days and weeks: the rollups'
        for period in (1, 7):
            assert active_by(db, period_days=period, since=whole, until=UNTIL) == (
                active_users_by(db, period_days=period, since=whole, until=UNTIL).rows
            )
        assert period_messages(db, since=month, until=UNTIL, top=8) == period_counts(
            db, since=month, until=UNTIL, top=8
        )
        assert sum(n for _, n in hour_events(db, since=month, until=UNTIL)) == sum(
            n for _, _, n in activity_heatmap(db, since=month, until=UNTIL).rows
        )
    with read_snapshot(populated) as db:
        assert rolling_active_users(db, until=UNTIL, days=(30,))[0] == expected[2]
    with populated.connect() as connection:
        assert connection.execute(text("SELECT last_event_id FROM rollup_state")).scalar_one() == watermark


@pytest.mark.parametrize(
    "until",
    [
        UNTIL.replace(hour=0, minute=20),  # just past midnight: the windows cut two days
        UNTIL.replace(hour=0, minute=0),  # on midnight
        UNTIL - timedelta(days=3, minutes=7),  # in the past: users active after it must not count
    ],
)
def test_rolling_windows_match_the_log_wherever_they_end(populated: Engine, until: datetime) -> None:
    with read_snapshot(populated) as db:
        assert rolling_active_users(db, until=until, days=(1, 7, 30)) == _rolling_on_the_log(
            db, until, (1, 7, 30)
        )
        assert active_by(db, period_days=7, since=until - timedelta(days=30), until=until) == (
            active_users_by(db, period_days=7, since=until - timedelta(days=30), until=until).rows
        )


def test_forgetting_a_user_keeps_the_rolling_figures_exact(populated: Engine) -> None:
    # user 9 also wrote in user 3's private chat, today: it goes with user 3's chat
    append_events(
        populated, [EventRecord(user_id=9, chat_id=3, ts=UNTIL - timedelta(minutes=30), kind="message")]
    )
    refresh_rollups(populated)
    forget_user(populated, 3)
    with read_snapshot(populated) as db:
        assert rolling_active_users(db, until=UNTIL, days=(1, 7, 30)) == _rolling_on_the_log(
            db, UNTIL, (1, 7, 30)
        )


def test_a_get_of_the_overview_writes_nothing(dash: Dash) -> None:
    """The page reads the rollups and the unfolded tail; folding is the scheduler's job."""
    populate(dash.engine, 20, events_per_user=10, end=dash.clock.now, seed=3)
    refresh_rollups(dash.engine)
    append_events(
        dash.engine,
        [EventRecord(user_id=5000, chat_id=5000, ts=dash.clock.now - timedelta(minutes=1), kind="message")],
    )
    with dash.engine.connect() as connection:
        before = connection.execute(text("SELECT last_event_id, refreshed_at FROM rollup_state")).one()
    client = dash.logged_in()
    assert client.get("/").status_code == 200
    with dash.engine.connect() as connection:
        assert (
            connection.execute(text("SELECT last_event_id, refreshed_at FROM rollup_state")).one() == before
        )
        assert (
            connection.execute(text("SELECT count(*) FROM user_last_events WHERE user_id = 5000")).scalar()
            == 0
        )
