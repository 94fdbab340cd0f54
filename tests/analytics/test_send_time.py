"""Best send hour: shrinkage toward segment and community, local time with DST, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.send_time import HOURS_PER_WEEK, best_send_time, build_profiles, hour_of_week, hourly_counts

UTC_ZONE = ZoneInfo("UTC")


def _daily_at(hour: int, days: int, zone: str, start: datetime) -> list[datetime]:
    local = ZoneInfo(zone)
    return [
        datetime(start.year, start.month, start.day, hour, 15, tzinfo=local) + timedelta(days=d)
        for d in range(days)
    ]


def test_hour_of_week_is_local_and_refuses_naive_times() -> None:
    monday_utc = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # a Monday
    assert hour_of_week(monday_utc, UTC_ZONE) == 23
    assert hour_of_week(monday_utc, ZoneInfo("Asia/Shanghai")) == 24 + 7  # Tuesday 07:30
    with pytest.raises(ValueError, match="time zone"):
        hour_of_week(datetime(2026, 11, 30, 23, 30), UTC_ZONE)


def test_a_regular_user_is_scheduled_by_their_own_rhythm() -> None:
    times = _daily_at(19, 60, "UTC", datetime(2026, 9, 1))
    counts = {
        1: hourly_counts(times, UTC_ZONE),
        2: hourly_counts(_daily_at(8, 60, "UTC", datetime(2026, 9, 1)), UTC_ZONE),
    }
    profiles = build_profiles(counts, {1: "UTC", 2: "UTC"}, {1: "s", 2: "s"})
    assert profiles[1].best_hour % 24 == 19
    assert profiles[2].best_hour % 24 == 8


def test_a_user_with_one_event_follows_their_segment_not_that_event() -> None:
    segment_mates = {
        u: hourly_counts(_daily_at(20, 30, "UTC", datetime(2026, 9, 1)), UTC_ZONE) for u in range(2, 8)
    }
    lone = hourly_counts([datetime(2026, 9, 2, 4, 0, tzinfo=UTC)], UTC_ZONE)
    counts = {1: lone, **segment_mates}
    profiles = build_profiles(counts, dict.fromkeys(counts, "UTC"), dict.fromkeys(counts, "night owls"))
    assert profiles[1].best_hour % 24 == 20
    # The raw argmax would have been 04:00.
    assert int(np.argmax(lone)) % 24 == 4
    assert profiles[1].probabilities.sum() == pytest.approx(1.0)


def test_segments_are_shrunk_toward_the_community() -> None:
    counts = {
        1: hourly_counts(_daily_at(9, 40, "UTC", datetime(2026, 9, 1)), UTC_ZONE),
        2: np.zeros(HOURS_PER_WEEK),
    }
    profiles = build_profiles(counts, {1: "UTC", 2: "UTC"}, {1: "a", 2: "empty"})
    # A user of a segment with no history at all is scheduled by the community's rhythm.
    assert profiles[2].best_hour % 24 == 9


def test_best_time_in_a_far_zone_across_a_dst_change() -> None:
    zone = "Pacific/Auckland"  # DST ends on Sunday 2026-04-05 at 03:00 local (back to 02:00)
    times = _daily_at(19, 50, zone, datetime(2026, 2, 10))
    profile = build_profiles({1: hourly_counts(times, ZoneInfo(zone))}, {1: zone}, {1: None})[1]
    before = best_send_time(profile, datetime(2026, 4, 3, 0, 0, tzinfo=UTC))
    after = best_send_time(profile, datetime(2026, 4, 7, 0, 0, tzinfo=UTC))
    assert before.astimezone(ZoneInfo(zone)).hour == 19
    assert after.astimezone(ZoneInfo(zone)).hour == 19
    assert (before.hour, after.hour) == (6, 7)  # NZDT is UTC+13, NZST UTC+12


def test_best_time_lies_within_the_window_and_respects_allowed_hours() -> None:
    times = _daily_at(23, 30, "UTC", datetime(2026, 9, 1))
    profile = build_profiles({1: hourly_counts(times, UTC_ZONE)}, {1: "UTC"}, {1: None})[1]
    now = datetime(2026, 11, 2, 10, 20, tzinfo=UTC)
    chosen = best_send_time(profile, now)
    assert chosen.hour == 23 and now <= chosen < now + timedelta(hours=24)
    quiet = best_send_time(profile, now, allowed_hours=range(8, 22))
    assert quiet.hour == 21  # the nearest allowed neighbour of 23:00 carries the most smoothed evidence
    assert best_send_time(profile, now, allowed_hours=[]) == now


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="strength"):
        build_profiles({}, {}, {}, strength=-1)
    with pytest.raises(ValueError, match="168"):
        build_profiles({1: np.zeros(24)}, {1: "UTC"}, {1: None})


def test_priors_can_come_from_everyone_while_only_some_users_are_profiled() -> None:
    # A broadcast profiles its recipients only; their segment's rhythm comes from all its members.
    evening = hourly_counts(_daily_at(20, 30, "UTC", datetime(2026, 9, 1)), UTC_ZONE) * 10
    lone = hourly_counts([datetime(2026, 9, 2, 4, 0, tzinfo=UTC)], UTC_ZONE)
    alone = build_profiles({1: lone}, {1: "UTC"}, {1: "s"})
    assert alone[1].best_hour % 24 == 4  # its own event is all the segment knows
    informed = build_profiles(
        {1: lone}, {1: "UTC"}, {1: "s"}, segment_counts={"s": evening + lone}, community_counts=evening + lone
    )
    assert informed[1].best_hour % 24 == 20
    # A segment the priors do not name falls back to the community.
    other = build_profiles({1: lone}, {1: "UTC"}, {1: "new"}, segment_counts={}, community_counts=evening)
    assert other[1].best_hour % 24 == 20
