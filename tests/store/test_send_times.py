"""Activity by local hour of the week, aggregated in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from store.db import read_snapshot, unit_of_work
from store.models import AnalyticsRun, Campaign, Delivery, Event, Segment, SegmentMembership, User
from store.send_times import HOURS_PER_WEEK, group_hour_counts, user_hour_counts, variant_outcomes

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
SINCE = NOW - timedelta(days=56)


def _user(session: object, user_id: int, zone: str | None) -> None:
    session.add(User(id=user_id, time_zone=zone, first_seen=SINCE, last_seen=NOW))  # type: ignore[attr-defined]


def _event(session: object, user_id: int, ts: datetime, kind: str = "message") -> None:
    session.add(Event(user_id=user_id, chat_id=user_id, ts=ts, kind=kind))  # type: ignore[attr-defined]


def _history(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        _user(session, 1, "Asia/Kolkata")  # UTC+5:30: a UTC hour straddles two local hours
        _user(session, 2, "America/New_York")  # DST ends on Sunday 2026-11-01
        _user(session, 3, "Mars/Olympus")  # invalid: counted in the default zone
        _user(session, 4, None)
        # Monday 2026-11-09 03:20 UTC = 08:50 IST; 03:40 UTC = 09:10 IST.
        _event(session, 1, datetime(2026, 11, 9, 3, 20, tzinfo=UTC))
        _event(session, 1, datetime(2026, 11, 9, 3, 40, tzinfo=UTC))
        _event(session, 1, datetime(2026, 11, 9, 3, 45, tzinfo=UTC))
        # The same 14:30 UTC is 10:30 EDT on Saturday 31 October and 09:30 EST on Monday 2 November.
        _event(session, 2, datetime(2026, 10, 31, 14, 30, tzinfo=UTC))
        _event(session, 2, datetime(2026, 11, 2, 14, 30, tzinfo=UTC))
        _event(session, 2, datetime(2026, 11, 2, 14, 31, tzinfo=UTC), kind="push_received")  # Rapport's
        _event(session, 2, SINCE - timedelta(hours=1))  # too old
        _event(session, 3, datetime(2026, 11, 8, 23, 59, tzinfo=UTC))  # Sunday 23:00 in UTC
        _event(session, 4, datetime(2026, 11, 9, 0, 0, tzinfo=UTC))  # Monday 00:00 in UTC


def _nonzero(row: list[int]) -> dict[int, int]:
    return {hour: n for hour, n in enumerate(row) if n}


def test_user_hour_counts_are_local_with_dst_and_half_hour_zones(engine: Engine) -> None:
    _history(engine)
    with read_snapshot(engine) as session:
        counts = user_hour_counts(session, None, since=SINCE, default_timezone="UTC")
    assert set(counts) == {1, 2, 3, 4}
    assert all(len(row) == HOURS_PER_WEEK for row in counts.values())
    assert _nonzero(counts[1]) == {8: 1, 9: 2}
    assert _nonzero(counts[2]) == {5 * 24 + 10: 1, 9: 1}
    assert _nonzero(counts[3]) == {6 * 24 + 23: 1}
    assert _nonzero(counts[4]) == {0: 1}


def test_user_hour_counts_take_a_subquery_or_ids_and_the_default_zone(engine: Engine) -> None:
    _history(engine)
    with read_snapshot(engine) as session:
        by_query = user_hour_counts(
            session, select(User.id).where(User.id >= 3), since=SINCE, default_timezone="Asia/Shanghai"
        )
        by_ids = user_hour_counts(session, [2], since=SINCE)
    assert set(by_query) == {3, 4}
    assert _nonzero(by_query[3]) == {7: 1}  # Monday 07:59 in Shanghai
    assert _nonzero(by_query[4]) == {8: 1}
    assert set(by_ids) == {2}


def test_group_hour_counts_sum_the_community_and_the_current_segments(engine: Engine) -> None:
    _history(engine)
    with unit_of_work(engine) as session:
        old = AnalyticsRun(status="done", is_current=False)
        run = AnalyticsRun(status="done", is_current=True)
        session.add_all([old, run])
        session.flush()
        stale = Segment(run_id=old.id, label=0, name="stale")
        owls = Segment(run_id=run.id, label=0, name="owls")
        session.add_all([stale, owls])
        session.flush()
        session.add(SegmentMembership(run_id=old.id, user_id=1, segment_id=stale.id))
        session.add(SegmentMembership(run_id=run.id, user_id=2, segment_id=owls.id))
        session.add(SegmentMembership(run_id=run.id, user_id=3, segment_id=owls.id))
    with read_snapshot(engine) as session:
        groups = group_hour_counts(session, since=SINCE)
    # The community has every own event in the window (user 1's UTC hour 03 is 08:30 IST: hour 8).
    assert sum(groups.community) == 7
    assert set(groups.by_segment) == {"owls"}
    assert _nonzero(groups.by_segment["owls"]) == {5 * 24 + 10: 1, 9: 1, 6 * 24 + 23: 1}


def test_variant_outcomes_count_only_closed_windows(engine: Engine) -> None:
    window = timedelta(hours=48)
    with unit_of_work(engine) as session:
        campaign = Campaign(kind="broadcast", name="b", segment="all", text="hi", scheduled_at=NOW)
        session.add(campaign)
        session.flush()
        sent = NOW - timedelta(days=3)
        rows = [
            (10, "fixed", sent, True),
            (11, "fixed", sent, False),
            (12, "best_time", sent, True),
            (13, "best_time", NOW - timedelta(hours=1), True),  # still in its window
        ]
        for user_id, variant, at, returns in rows:
            _user(session, user_id, "UTC")
            session.add(
                Delivery(
                    campaign_id=campaign.id,
                    user_id=user_id,
                    chat_id=user_id,
                    text="hi",
                    status="sent",
                    sent_at=at,
                    due_at=at,
                    variant=variant,
                )
            )
            _event(session, user_id, at + timedelta(minutes=5), kind="push_received")
            if returns:
                _event(session, user_id, at + timedelta(hours=2))
        session.add(
            Delivery(campaign_id=campaign.id, user_id=14, chat_id=14, text="hi", status="pending", due_at=NOW)
        )
        campaign_id = campaign.id
    with read_snapshot(engine) as session:
        outcomes = variant_outcomes(session, campaign_id, now=NOW, window=window)
    assert set(outcomes) == {"best_time", "fixed"}
    assert (outcomes["fixed"].sends, outcomes["fixed"].conversions, outcomes["fixed"].open) == (2, 1, 0)
    assert (outcomes["best_time"].sends, outcomes["best_time"].conversions) == (1, 1)
    assert outcomes["best_time"].open == 1
