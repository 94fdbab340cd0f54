"""The overview's four scans give exactly the figures of the per-figure queries they replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from dashboard.views.overview import _active_by, _cohort_rows, _heatmap
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
from store.overview_queries import period_messages, rolling_active_users, user_days, user_hours

UNTIL = datetime(2026, 11, 20, 12, 37, tzinfo=UTC)  # not on an hour: the rolling windows cut hours


@pytest.fixture
def populated(engine: Engine) -> Engine:
    populate(engine, 80, events_per_user=25, end=UNTIL, seed=11)
    extra = [  # a channel post (no user), unanswered questions, one right at a window's edge
        EventRecord(user_id=None, chat_id=-100, ts=UNTIL - timedelta(days=2), kind="message", intent="news"),
        EventRecord(
            user_id=3, chat_id=3, ts=UNTIL - timedelta(hours=5), kind="fallback", intent="nlu_fallback"
        ),
        EventRecord(
            user_id=4, chat_id=4, ts=UNTIL - timedelta(days=7), kind="fallback", intent="nlu_fallback"
        ),
        EventRecord(user_id=5, chat_id=5, ts=UNTIL - timedelta(days=1, seconds=1), kind="reaction"),
    ]
    append_events(engine, extra)
    return engine


@pytest.mark.parametrize("days", [7, 30, 90])
def test_the_scans_match_the_queries_they_replace(populated: Engine, days: int) -> None:
    since = UNTIL - timedelta(days=days)
    with read_snapshot(populated) as db:
        hours = user_hours(db, since=since, until=UNTIL)
        assert sum(n for _, _, n in hours) > 100  # the population is in the window
        assert period_messages(db, since=since, until=UNTIL, top=8) == period_counts(
            db, since=since, until=UNTIL, top=8
        )
        assert _active_by(hours, 1) == active_users_by(db, period_days=1, since=since, until=UNTIL).rows
        assert _active_by(hours, 7) == active_users_by(db, period_days=7, since=since, until=UNTIL).rows
        expected = tuple(
            distinct_users_between(db, since=UNTIL - timedelta(days=d), until=UNTIL) for d in (1, 7, 30)
        )
        assert rolling_active_users(db, until=UNTIL, days=(1, 7, 30)) == expected
        assert _cohort_rows(user_days(db, until=UNTIL)) == retention_cohorts(db, until=UNTIL).rows
        grid = [[0] * 24 for _ in range(7)]
        for weekday_sun0, hour, n in activity_heatmap(db, since=since, until=UNTIL).rows:
            grid[(weekday_sun0 - 1) % 7][hour] += n
        assert _heatmap(hours, ZoneInfo("UTC")) == grid


def test_the_heatmap_places_each_hour_by_the_offset_of_its_own_day() -> None:
    summer = datetime(2026, 7, 6, 10, tzinfo=UTC)  # Monday 12:00 in Berlin (CEST, +2)
    winter = datetime(2026, 12, 7, 10, tzinfo=UTC)  # Monday 11:00 in Berlin (CET, +1)
    grid = _heatmap([(1, summer, 3), (2, winter, 5), (3, winter, 1)], ZoneInfo("Europe/Berlin"))
    assert grid[0][12] == 3 and grid[0][11] == 6
    assert sum(map(sum, grid)) == 9
