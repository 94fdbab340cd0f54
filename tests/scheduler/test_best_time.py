"""Best-time sends: the planner picks each user's best allowed hour within 24 h, from the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from scheduler.best_time import (
    BEST_TIME,
    FIXED,
    SendTimeConfig,
    best_due_at,
    read_send_profiles,
    send_time_arm,
)
from scheduler.errors import BroadcastError
from scheduler.planning import create_broadcast
from scheduler.policy import QuietHours
from scheduler.reengagement import ReengagementConfig, plan_reengagement
from store.db import read_snapshot, unit_of_work
from store.models import AnalyticsRun, Campaign, Delivery, Event, Segment, SegmentMembership
from tests.scheduler.conftest import add_users

NOW = datetime(2026, 10, 21, 0, 0, tzinfo=UTC)  # a Wednesday
QUIET = QuietHours(22, 8)
CONFIG = SendTimeConfig(quiet_hours=QUIET)


def _events_at(engine: Engine, user_id: int, zone: str, hour: int, days: Iterable[int]) -> None:
    """One event a day at `hour`:10 local time in `zone`, on the given days before NOW."""
    local = ZoneInfo(zone)
    with unit_of_work(engine) as session:
        for back in days:
            day = (NOW - timedelta(days=back)).astimezone(local).date()
            ts = datetime(day.year, day.month, day.day, hour, 10, tzinfo=local).astimezone(UTC)
            session.add(Event(user_id=user_id, chat_id=user_id, ts=ts, kind="message"))


def _profiles(engine: Engine, zones: dict[int, str | None]) -> dict[int, object]:
    with read_snapshot(engine) as session:
        return dict(read_send_profiles(session, list(zones), zones, now=NOW, config=CONFIG))


def _segment(engine: Engine, name: str, members: Iterable[int]) -> None:
    with unit_of_work(engine) as session:
        run = AnalyticsRun(status="done", is_current=True)
        session.add(run)
        session.flush()
        segment = Segment(run_id=run.id, label=0, name=name)
        session.add(segment)
        session.flush()
        for user_id in members:
            session.add(SegmentMembership(run_id=run.id, user_id=user_id, segment_id=segment.id))


def test_a_far_zone_across_a_dst_change_keeps_its_local_hour(engine: Engine) -> None:
    # Auckland moved to NZDT (UTC+13) on Sunday 2026-09-27: 19:10 local was 07:10 UTC before
    # and 06:10 UTC after. Counted in local time, all 50 days land in the same hour.
    add_users(engine, [1], seen_at=NOW - timedelta(days=1), time_zone="Pacific/Auckland")
    _events_at(engine, 1, "Pacific/Auckland", 19, range(1, 51))
    profile = _profiles(engine, {1: "Pacific/Auckland"})[1]
    assert profile.events == 50  # type: ignore[attr-defined]
    assert profile.best_hour % 24 == 19  # type: ignore[attr-defined]
    due = best_due_at(profile, NOW, "Pacific/Auckland", CONFIG)  # type: ignore[arg-type]
    assert due.astimezone(ZoneInfo("Pacific/Auckland")).hour == 19
    assert due == datetime(2026, 10, 21, 6, 0, tzinfo=UTC)


def test_a_user_with_one_event_is_scheduled_by_their_segment(engine: Engine) -> None:
    add_users(engine, range(1, 8), seen_at=NOW - timedelta(days=1), time_zone="UTC")
    for user_id in range(2, 8):
        _events_at(engine, user_id, "UTC", 20, range(1, 31))
    _events_at(engine, 1, "UTC", 9, [3])  # one event at 09:10
    _segment(engine, "evening people", range(1, 8))
    profile = _profiles(engine, {1: "UTC"})[1]
    assert profile.events == 1  # type: ignore[attr-defined]
    assert profile.best_hour % 24 == 20  # type: ignore[attr-defined]
    assert best_due_at(profile, NOW, "UTC", CONFIG).hour == 20  # type: ignore[arg-type]


def test_a_user_without_history_follows_the_community(engine: Engine) -> None:
    add_users(engine, range(1, 5), seen_at=NOW - timedelta(days=1), time_zone="UTC")
    for user_id in range(2, 5):
        _events_at(engine, user_id, "UTC", 13, range(1, 20))
    profiles = _profiles(engine, {1: None, 2: "UTC"})
    assert profiles[1].best_hour % 24 == 13  # type: ignore[attr-defined]


def test_due_times_respect_quiet_hours_the_window_and_the_cap(engine: Engine) -> None:
    add_users(engine, [1], seen_at=NOW - timedelta(days=1), time_zone="America/New_York")
    _events_at(engine, 1, "America/New_York", 23, range(1, 40))  # a night owl: 23:10 local
    profile = _profiles(engine, {1: "America/New_York"})[1]
    zone = ZoneInfo("America/New_York")
    due = best_due_at(profile, NOW, "America/New_York", CONFIG)  # type: ignore[arg-type]
    assert NOW <= due <= NOW + timedelta(hours=24)
    assert not QUIET.is_quiet(due, "America/New_York")
    assert due.astimezone(zone).hour == 21  # the last allowed hour, next to 23:00
    # The frequency cap ends after tonight's 21:00: the next allowed best hour is tomorrow's.
    cap_end = due + timedelta(hours=1)
    later = best_due_at(profile, NOW, "America/New_York", CONFIG, not_before=cap_end)  # type: ignore[arg-type]
    assert later >= cap_end and not QUIET.is_quiet(later, "America/New_York")
    # A cap ending beyond the window: the first allowed moment after it.
    far = NOW + timedelta(days=3, hours=3)  # 23:00 New York time
    assert best_due_at(profile, NOW, "America/New_York", CONFIG, not_before=far) == QUIET.next_allowed(
        far, "America/New_York"
    )
    # No profile: as soon as quiet hours allow.
    assert best_due_at(None, NOW, "America/New_York", CONFIG) == QUIET.next_allowed(NOW, "America/New_York")


def test_send_time_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="within"):
        SendTimeConfig(within=timedelta(0))
    with pytest.raises(ValueError, match="history_days"):
        SendTimeConfig(history_days=0)


def _deliveries(engine: Engine, campaign_id: int) -> list[Delivery]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)))


def _evening_community(engine: Engine, users: range) -> None:
    add_users(engine, users, seen_at=NOW - timedelta(days=10), time_zone="Asia/Shanghai")
    for user_id in users:
        _events_at(engine, user_id, "Asia/Shanghai", 20, range(10, 40))


def test_reengagement_sends_at_each_users_best_time_by_default(engine: Engine) -> None:
    _evening_community(engine, range(1, 41))
    config = ReengagementConfig(seed=1, quiet_hours=QUIET, holdout_share=0.1)
    plan = plan_reengagement(engine, config, now=NOW, use_active_model=False)
    rows = _deliveries(engine, plan.campaign_id)
    assert sorted(d.user_id for d in rows) == list(range(1, 41))  # one row per user
    for row in rows:
        assert NOW <= row.due_at <= NOW + timedelta(hours=24)
        assert row.due_at.astimezone(ZoneInfo("Asia/Shanghai")).hour == 20
    with unit_of_work(engine) as session:
        campaign = session.get(Campaign, plan.campaign_id)
        assert campaign is not None and (campaign.attributes or {}).get("send_at") == "best_time"
    assert "due later" in plan.summary() and plan.deferred == plan.pending


def test_reengagement_without_best_time_sends_at_once(engine: Engine) -> None:
    _evening_community(engine, range(1, 11))
    config = ReengagementConfig(seed=1, quiet_hours=QUIET, best_time=False)
    plan = plan_reengagement(engine, config, now=NOW, use_active_model=False)
    # 00:00 UTC is 08:00 in Shanghai: allowed, so every row is due now.
    assert {d.due_at for d in _deliveries(engine, plan.campaign_id)} == {NOW}


def test_reengagement_keeps_the_cap_with_best_time(engine: Engine) -> None:
    _evening_community(engine, range(1, 11))
    config = ReengagementConfig(seed=1, quiet_hours=QUIET, holdout_share=0.0)
    first = plan_reengagement(engine, config, now=NOW, use_active_model=False)
    second = plan_reengagement(engine, config, now=NOW + timedelta(hours=1), use_active_model=False)
    assert first.pending == 10
    assert second.pending == 0 and second.skipped == {"capped": 10}


def test_a_best_time_broadcast_has_one_row_per_user_within_24_hours(engine: Engine) -> None:
    _evening_community(engine, range(1, 21))
    campaign_id = create_broadcast(
        engine, segment="all", text="hello", at=NOW, now=NOW, send_at="best_time", send_time=CONFIG
    )
    rows = _deliveries(engine, campaign_id)
    assert sorted(d.user_id for d in rows) == list(range(1, 21))
    assert all(NOW <= d.due_at <= NOW + timedelta(hours=24) and d.variant is None for d in rows)
    assert {d.due_at.astimezone(ZoneInfo("Asia/Shanghai")).hour for d in rows} == {20}


def test_a_send_time_comparison_splits_users_between_both_arms(engine: Engine) -> None:
    _evening_community(engine, range(1, 201))
    campaign_id = create_broadcast(
        engine, segment="all", text="hello", at=NOW, now=NOW, send_at="best_time_vs_fixed", send_time=CONFIG
    )
    rows = _deliveries(engine, campaign_id)
    with unit_of_work(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        key = (campaign.attributes or {})["send_time_key"]
    arms = {d.user_id: d.variant for d in rows}
    assert set(arms.values()) == {BEST_TIME, FIXED}
    assert all(arms[u] == send_time_arm(key, u) for u in arms)  # stable, reproducible assignment
    assert 60 <= sum(v == FIXED for v in arms.values()) <= 140
    assert all(d.due_at == NOW for d in rows if d.variant == FIXED)
    assert all(
        d.due_at.astimezone(ZoneInfo("Asia/Shanghai")).hour == 20 for d in rows if d.variant == BEST_TIME
    )


def test_an_unknown_send_at_is_refused(engine: Engine) -> None:
    add_users(engine, [1])
    with pytest.raises(BroadcastError, match="send_at"):
        create_broadcast(engine, segment="all", text="hi", at=NOW, now=NOW, send_at="whenever")
