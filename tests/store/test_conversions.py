"""Campaign conversion goals: goal strings, and conversions of sent and holdout users in the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from store import EventRecord, append_events
from store.campaigns import NewDelivery, create_campaign
from store.conversions import UnknownGoalError, goal_conversions, known_product_events, parse_goal
from store.db import unit_of_work
from store.models import Delivery

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "goal"),
    [
        ("upgrade", "product:upgrade"),
        ("product:upgrade", "product:upgrade"),
        (" return ", "return"),
        ("Order Completed", "product:Order Completed"),
    ],
)
def test_goal_strings_are_canonical(text: str, goal: str) -> None:
    assert parse_goal(text) == goal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("product:", "names no product event"),
        ("click:buy", "only `return`"),
        ("x" * 200, "1-128"),
        ("up\ngrade", "printable"),
    ],
)
def test_unknown_goals_are_refused(text: str, message: str) -> None:
    with pytest.raises(UnknownGoalError, match=message):
        parse_goal(text)


def _product(user: int, name: str, at: datetime) -> EventRecord:
    return EventRecord(user_id=user, ts=at, kind="product", attributes={"source": "product", "event": name})


def _campaign(engine: Engine) -> int:
    rows = [NewDelivery(user_id=u, chat_id=u, text="t", due_at=NOW) for u in (1, 2, 3, 4)]
    rows += [NewDelivery(u, u, "t", NOW, status="skipped", reason="holdout") for u in (5, 6)]
    rows += [NewDelivery(7, 7, "t", NOW, status="skipped", reason="opted_out")]
    campaign = create_campaign(
        engine,
        kind="reengagement",
        name="c",
        segment="all",
        text="t",
        scheduled_at=NOW,
        now=NOW,
        deliveries=rows,
    )
    with unit_of_work(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign, Delivery.user_id.in_([1, 2, 3]))
            .values(status="sent", sent_at=NOW)
        )  # user 4 stays pending: not counted as sent
    return campaign


def test_conversions_count_the_goal_event_inside_the_window(engine: Engine) -> None:
    campaign = _campaign(engine)
    append_events(
        engine,
        [
            _product(1, "upgrade", NOW + timedelta(hours=3)),  # converted
            _product(2, "upgrade", NOW - timedelta(hours=1)),  # before the push: not a conversion
            _product(2, "upgrade", NOW + timedelta(hours=49)),  # after the window
            _product(3, "trial_started", NOW + timedelta(hours=1)),  # another event
            _product(4, "upgrade", NOW + timedelta(hours=1)),  # not sent
            _product(5, "upgrade", NOW + timedelta(hours=2)),  # holdout converted
            _product(7, "upgrade", NOW + timedelta(hours=2)),  # opted out: neither group
            EventRecord(user_id=3, ts=NOW + timedelta(hours=1), kind="message", intent="pricing"),
        ],
    )
    with unit_of_work(engine) as session:
        upgraded = goal_conversions(session, campaign, "upgrade")
        returned = goal_conversions(session, campaign, "return")
        longer = goal_conversions(session, campaign, "product:upgrade", timedelta(hours=72))
        known = known_product_events(session)
    assert (upgraded.sent, upgraded.sent_converted, upgraded.holdout, upgraded.holdout_converted) == (
        3,
        1,
        2,
        1,
    )
    assert upgraded.goal == "product:upgrade"
    assert (returned.sent_converted, returned.holdout_converted) == (1, 0)  # only user 3 came back to the bot
    assert longer.sent_converted == 2
    assert known[0] == "upgrade" and "trial_started" in known


def test_a_bad_goal_or_window_is_refused(engine: Engine) -> None:
    campaign = _campaign(engine)
    with unit_of_work(engine) as session:
        with pytest.raises(UnknownGoalError):
            goal_conversions(session, campaign, "click:x")
        with pytest.raises(UnknownGoalError, match="positive"):
            goal_conversions(session, campaign, "upgrade", timedelta(0))


def test_a_product_event_is_a_conversion_not_a_return(engine: Engine) -> None:
    """Returns are about the bot: a user who only upgraded did not come back to Telegram."""
    from store.campaign_reports import campaign_counts

    campaign = _campaign(engine)
    append_events(engine, [_product(1, "upgrade", NOW + timedelta(hours=1))])
    counts = campaign_counts(engine, campaign, now=NOW + timedelta(days=3))
    assert counts.returned == 0
    with unit_of_work(engine) as session:
        assert goal_conversions(session, campaign, "return").sent_converted == 0
        assert goal_conversions(session, campaign, "upgrade").sent_converted == 1
