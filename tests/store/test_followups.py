"""Follow-up store functions in the caller's session: catalogue sync, statistics, histories, cooldowns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from store.db import unit_of_work
from store.followups import (
    FollowupRow,
    SendCounts,
    active_followup_ids,
    last_sends,
    recent_events,
    response_stats,
    sync_followups,
)
from store.models import Campaign, Delivery, Event, FollowupMessage, User

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _row(message_id: str, *, default: bool = False) -> FollowupRow:
    return FollowupRow(message_id, "en", "zh", ("greet",), (), 14, default)


def test_sync_upserts_and_deactivates_in_the_callers_transaction(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        assert sync_followups(session, [_row("a"), _row("b")], now=NOW) == 2
    with unit_of_work(engine) as session:
        sync_followups(session, [_row("b", default=True), _row("c")], now=NOW + timedelta(days=1))
        assert sorted(active_followup_ids(session)) == ["b", "c"]
        stored = {m.id: m for m in session.scalars(select(FollowupMessage))}
    assert not stored["a"].active and stored["a"].updated_at == NOW + timedelta(days=1)  # kept, not deleted
    assert stored["b"].is_default
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        sync_followups(session, [_row("d")], now=NOW)
        raise RuntimeError("the rest of the unit of work fails")
    with unit_of_work(engine) as session:
        assert sorted(active_followup_ids(session)) == ["b", "c"]  # rolled back with it


def _users(session: object, ids: list[int]) -> None:
    for user_id in ids:
        session.add(User(id=user_id, first_seen=NOW, last_seen=NOW))  # type: ignore[attr-defined]


def test_recent_events_keeps_each_users_latest_in_time_order(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        _users(session, [1, 2, 3])
        for user_id, n in ((1, 6), (2, 2), (3, 4)):
            for i in range(n):
                session.add(
                    Event(user_id=user_id, ts=NOW - timedelta(hours=n - i), kind="message", intent=f"i{i}")
                )
        session.add(Event(user_id=1, ts=NOW - timedelta(days=30), kind="join"))  # before `since`
        session.add(
            Event(user_id=2, ts=NOW - timedelta(minutes=1), kind="product", attributes={"event": "upgrade"})
        )
        # Only a product event's `event` names a product: another kind's attribute is not read.
        session.add(Event(user_id=2, ts=NOW, kind="reaction", attributes={"event": "x"}))
    users = select(User.id).where(User.id.in_([1, 2]))
    with unit_of_work(engine) as session:
        found = recent_events(session, users, since=NOW - timedelta(days=7), limit=3)
    assert found == {
        1: [("message", "i3", None), ("message", "i4", None), ("message", "i5", None)],
        2: [("message", "i1", None), ("product", None, "upgrade"), ("reaction", None, None)],
    }
    with pytest.raises(ValueError, match="limit"), unit_of_work(engine) as session:
        recent_events(session, users, since=NOW, limit=0)


def test_statistics_and_last_sends(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        _users(session, [1, 2])
        rows = [
            (1, "a", "sent", NOW - timedelta(days=3), True),
            (2, "a", "sent", NOW - timedelta(days=1), False),
            (2, "b", "sent", NOW - timedelta(days=2), None),  # not measured yet
            (2, "c", "failed", None, None),
        ]
        for user_id, followup, status, sent_at, responded in rows:
            campaign = Campaign(kind="reengagement", name="c", segment="s", status="done", scheduled_at=NOW)
            session.add(campaign)
            session.flush()  # one campaign per row: a campaign reaches a user once
            session.add(
                Delivery(
                    campaign_id=campaign.id,
                    user_id=user_id,
                    chat_id=user_id,
                    text="t",
                    status=status,
                    followup_id=followup,
                    sent_at=sent_at,
                    responded=responded,
                )
            )
    with unit_of_work(engine) as session:
        assert response_stats(session) == {"a": SendCounts(sent=2, responded=1)}
        sends = last_sends(session, select(User.id).where(User.id == 2))
    assert sends == {2: {"a": NOW - timedelta(days=1), "b": NOW - timedelta(days=2)}}
