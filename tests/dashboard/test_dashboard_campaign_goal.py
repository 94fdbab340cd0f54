"""The campaign page's goal: the CLI report's conversions per group, intervals and verdict, or when due."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import Engine, update

from scheduler import campaign_report
from store import EventRecord, append_events
from store.campaigns import NewDelivery, create_campaign
from store.db import unit_of_work
from store.models import Delivery
from tests.dashboard.conftest import NOW, Dash

SENT_AT = NOW - timedelta(hours=72)


def _product(user: int, at: datetime) -> EventRecord:
    return EventRecord(
        user_id=user, ts=at, kind="product", attributes={"source": "product", "event": "upgrade"}
    )


def _campaign(
    engine: Engine,
    *,
    kind: str = "reengagement",
    sent: int,
    held: int,
    converted: int,
    held_converted: int,
    sent_at: datetime = SENT_AT,
    pending: int = 0,
) -> int:
    """A campaign with goal `product:upgrade` over 24 h; the first `converted` sent users upgrade."""
    sent_ids = list(range(1, sent + 1))
    held_ids = list(range(1001, 1001 + held))
    pending_ids = list(range(2001, 2001 + pending))
    rows = [NewDelivery(u, u, "t", sent_at) for u in sent_ids + pending_ids]
    rows += [NewDelivery(u, u, "t", sent_at, status="skipped", reason="holdout") for u in held_ids]
    campaign = create_campaign(
        engine,
        kind=kind,
        name="c",
        segment="all",
        text="t",
        scheduled_at=sent_at,
        now=sent_at,
        deliveries=rows,
        attributes={"goal": "product:upgrade", "goal_window_hours": 24.0},
    )
    with unit_of_work(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign, Delivery.user_id.in_(sent_ids))
            .values(status="sent", sent_at=sent_at)
        )
    hit = sent_ids[:converted] + held_ids[:held_converted]
    append_events(engine, [_product(u, sent_at + timedelta(hours=2)) for u in hit])
    return campaign


def _section(html: str) -> str:
    match = re.search(r'<section class="card" id="goal">(.*?)</section>', html, re.S)
    assert match is not None, "no goal section"
    return match.group(1)


def test_the_goal_shows_both_groups_and_the_reports_significant_interval(dash: Dash) -> None:
    campaign = _campaign(dash.engine, sent=60, held=60, converted=30, held_converted=3)
    goal = _section(dash.logged_in().get(f"/campaigns/{campaign}").text)
    report = campaign_report(dash.engine, campaign, now=dash.clock.now, rate_per_s=30.0).goal
    assert report is not None and report.uplift_interval is not None
    low, high = report.uplift_interval
    assert "Goal: product:upgrade within 24 h of each send" in goal
    assert re.search(r'id="goal-pushed">.*?>60<.*?>30<.*?>50.0%<', goal, re.S)
    assert re.search(r'id="goal-holdout">.*?>60<.*?>3<.*?>5.0%<', goal, re.S)
    assert f"95% CI {low * 100:+.1f} to {high * 100:+.1f} pp" in goal
    assert low > 0 and "the 95% interval excludes zero" in goal
    assert "not significant" not in goal


def test_an_interval_across_zero_says_not_significant(dash: Dash) -> None:
    campaign = _campaign(dash.engine, sent=12, held=12, converted=3, held_converted=2)
    goal = _section(dash.logged_in().get(f"/campaigns/{campaign}").text)
    report = campaign_report(dash.engine, campaign, now=dash.clock.now, rate_per_s=30.0).goal
    assert report is not None and report.uplift_interval is not None
    low, high = report.uplift_interval
    assert low < 0 < high
    assert "not significant: the 95% interval includes zero" in goal


def test_an_open_window_is_an_empty_state_with_the_time_it_closes(dash: Dash) -> None:
    campaign = _campaign(
        dash.engine, sent=10, held=10, converted=5, held_converted=0, sent_at=NOW - timedelta(hours=20)
    )
    client = dash.logged_in()
    goal = _section(client.get(f"/campaigns/{campaign}").text)
    assert 'id="goal-open"' in goal and "2026-11-20 16:00" in goal  # sent 16:00 the day before + 24 h
    assert 'id="goal-pushed"' not in goal
    dash.clock.now = NOW + timedelta(hours=5)  # the window has closed
    goal = _section(client.get(f"/campaigns/{campaign}").text)
    assert 'id="goal-open"' not in goal and 'id="goal-pushed"' in goal


def test_rows_still_to_send_keep_the_window_open(dash: Dash) -> None:
    campaign = _campaign(dash.engine, sent=10, held=10, converted=5, held_converted=0, pending=3)
    goal = _section(dash.logged_in().get(f"/campaigns/{campaign}").text)
    assert 'id="goal-open"' in goal and "2026-11-21 12:00" in goal  # at the earliest: now + 24 h


def test_a_broadcast_goal_has_no_holdout_to_compare_with(dash: Dash) -> None:
    campaign = _campaign(dash.engine, kind="broadcast", sent=20, held=0, converted=4, held_converted=0)
    goal = _section(dash.logged_in().get(f"/campaigns/{campaign}").text)
    assert re.search(r'id="goal-pushed">.*?>20<.*?>4<.*?>20.0%<', goal, re.S)
    assert 'id="goal-holdout"' not in goal and 'id="goal-no-holdout"' in goal


def test_a_campaign_without_a_goal_has_no_goal_section(dash: Dash) -> None:
    campaign = create_campaign(
        dash.engine,
        kind="broadcast",
        name="c",
        segment="all",
        text="t",
        scheduled_at=NOW,
        now=NOW,
        deliveries=[],
    )
    assert 'id="goal"' not in dash.logged_in().get(f"/campaigns/{campaign}").text
