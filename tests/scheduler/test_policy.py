"""Pure scheduling rules: holdout hash, quiet hours across zones and DST, inactivity thresholds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.policy import (
    InactivityRule,
    QuietHours,
    holdout_bucket,
    in_holdout,
    parse_hhmm,
    parse_segment_days,
)


def test_holdout_is_stable_and_close_to_its_share() -> None:
    assert holdout_bucket(12345) == holdout_bucket(12345)
    share = sum(in_holdout(user_id, 0.1) for user_id in range(20_000)) / 20_000
    assert 0.09 < share < 0.11
    assert not any(in_holdout(user_id, 0.0) for user_id in range(1000))
    assert all(in_holdout(user_id, 1.0) for user_id in range(1000))


def test_holdout_rejects_a_bad_share() -> None:
    with pytest.raises(ValueError, match=r"1\.5"):
        in_holdout(1, 1.5)


@given(st.integers(min_value=1, max_value=2**62), st.floats(min_value=0.0, max_value=1.0))
def test_holdout_membership_is_monotone_in_the_share(user_id: int, share: float) -> None:
    if in_holdout(user_id, share):
        assert in_holdout(user_id, min(1.0, share + 0.05))


def test_quiet_hours_in_the_users_zone() -> None:
    quiet = QuietHours(22, 8)
    noon_utc = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert not quiet.is_quiet(noon_utc, "Europe/Berlin")  # 14:00 local
    assert not quiet.is_quiet(noon_utc, "Asia/Tokyo")  # 21:00 local
    assert quiet.is_quiet(noon_utc, "Pacific/Auckland")  # 00:00 local (NZST, UTC+12)
    assert quiet.is_quiet(noon_utc, "America/Los_Angeles")  # 05:00 local (PDT)


def test_quiet_hours_window_edges() -> None:
    quiet = QuietHours(22, 8)
    tokyo_2159 = datetime(2026, 6, 1, 12, 59, tzinfo=UTC)  # 21:59 in Tokyo
    tokyo_2200 = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert not quiet.is_quiet(tokyo_2159, "Asia/Tokyo")
    assert quiet.is_quiet(tokyo_2200, "Asia/Tokyo")
    # Deferred to 08:00 Tokyo the next morning = 23:00 UTC.
    assert quiet.next_allowed(tokyo_2200, "Asia/Tokyo") == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    # Before midnight or after: the same morning end.
    after_midnight = datetime(2026, 6, 1, 16, 30, tzinfo=UTC)  # 01:30 Tokyo, June 2
    assert quiet.next_allowed(after_midnight, "Asia/Tokyo") == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    allowed = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # 09:00 Tokyo
    assert quiet.next_allowed(allowed, "Asia/Tokyo") == allowed


def test_quiet_hours_across_the_spring_dst_change() -> None:
    """Berlin switches from UTC+1 to UTC+2 on 2026-03-29 at 02:00 local."""
    quiet = QuietHours(22, 8)
    saturday_night = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # 23:30 CET
    # 08:00 CEST on Sunday is 06:00 UTC (not 07:00 as before the change).
    assert quiet.next_allowed(saturday_night, "Europe/Berlin") == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert quiet.is_quiet(datetime(2026, 3, 29, 5, 59, tzinfo=UTC), "Europe/Berlin")
    assert not quiet.is_quiet(datetime(2026, 3, 29, 6, 0, tzinfo=UTC), "Europe/Berlin")


def test_quiet_hours_across_the_autumn_dst_change() -> None:
    """Berlin goes back from UTC+2 to UTC+1 on 2026-10-25 at 03:00 local."""
    quiet = QuietHours(22, 8)
    night = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)  # 23:00 CEST
    assert quiet.next_allowed(night, "Europe/Berlin") == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_quiet_hours_ending_in_a_dst_gap_resolve_after_the_gap() -> None:
    quiet = QuietHours(0, 2)  # quiet until 02:00, which does not exist on 2026-03-29 in Berlin
    at = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 CET
    allowed = quiet.next_allowed(at, "Europe/Berlin")
    assert allowed == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST, right after the gap
    assert not quiet.is_quiet(allowed, "Europe/Berlin")


def test_quiet_hours_fall_back_to_the_default_zone() -> None:
    quiet = QuietHours(22, 8, default_timezone="Asia/Tokyo")
    at = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert quiet.is_quiet(at, None)
    assert quiet.is_quiet(at, "Not/AZone")


def test_quiet_hours_validation_and_no_window() -> None:
    with pytest.raises(ValueError, match="0-23"):
        QuietHours(25, 8)
    assert not QuietHours(8, 8).is_quiet(datetime(2026, 6, 1, 3, tzinfo=UTC), "UTC")
    day = QuietHours(9, 17)  # a non-wrapping window
    assert day.is_quiet(datetime(2026, 6, 1, 10, tzinfo=UTC), "UTC")
    assert day.next_allowed(datetime(2026, 6, 1, 10, tzinfo=UTC), "UTC") == datetime(
        2026, 6, 1, 17, tzinfo=UTC
    )


def test_inactivity_rule_per_segment() -> None:
    rule = InactivityRule(7, {"power users": 3})
    assert rule.days_for("power users") == 3
    assert rule.days_for("newcomers") == 7
    assert rule.days_for(None) == 7
    assert rule.shortest == 3
    with pytest.raises(ValueError, match="inactivity days"):
        InactivityRule(0)


def test_parsers() -> None:
    assert parse_hhmm("03:30").hour == 3
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm("3h")
    assert parse_segment_days("power users=3, new=14") == {"power users": 3, "new": 14}
    with pytest.raises(ValueError, match="segment=days"):
        parse_segment_days("oops")
