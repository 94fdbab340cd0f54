"""The overview's rollup readers give exactly the figures of the per-figure queries on the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

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
