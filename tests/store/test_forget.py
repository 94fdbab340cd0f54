"""Forgetting a user removes their id from every row that holds it, not only from their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from store import EventRecord, append_events, count_events, forget_user, user_events
from store.campaigns import NewDelivery, create_campaign
from store.db import unit_of_work
from store.models import Campaign, Delivery

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUP = -100_123
ALICE, BOB, CAROL = 501, 502, 503  # Alice is forgotten; Bob and Carol stay


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _community(engine: Engine) -> None:
    append_events(
        engine,
        [
            EventRecord(
                user_id=ALICE, chat_id=ALICE, ts=_at(0), kind="command", attributes={"message_id": 1}
            ),
            EventRecord(
                user_id=ALICE, chat_id=GROUP, ts=_at(1), kind="message", attributes={"message_id": 70}
            ),
            # Alice added Bob to the group; Carol added herself via a link; Bob added Carol later.
            EventRecord(
                user_id=BOB,
                chat_id=GROUP,
                ts=_at(2),
                kind="join",
                attributes={"by": ALICE, "status": "member"},
            ),
            EventRecord(
                user_id=CAROL,
                chat_id=GROUP,
                ts=_at(3),
                kind="join",
                attributes={"by": BOB, "status": "member"},
            ),
            # Bob replies to Alice's message and to Carol's; Carol reacts to Alice's.
            EventRecord(
                user_id=BOB,
                chat_id=GROUP,
                ts=_at(4),
                kind="message",
                attributes={"message_id": 71, "reply_to": 70},
            ),
            EventRecord(
                user_id=CAROL, chat_id=GROUP, ts=_at(5), kind="message", attributes={"message_id": 72}
            ),
            EventRecord(
                user_id=BOB,
                chat_id=GROUP,
                ts=_at(6),
                kind="message",
                attributes={"message_id": 73, "reply_to": 72},
            ),
            EventRecord(
                user_id=CAROL,
                chat_id=GROUP,
                ts=_at(7),
                kind="reaction",
                attributes={"message_id": 70, "new": ["👍"]},
            ),
            # Same message id in another chat: not Alice's message.
            EventRecord(
                user_id=CAROL,
                chat_id=-999,
                ts=_at(8),
                kind="message",
                attributes={"message_id": 5, "reply_to": 70},
            ),
            # Something the bot logged in Alice's private chat without a user.
            EventRecord(user_id=None, chat_id=ALICE, ts=_at(9), kind="other", attributes={"update": "x"}),
        ],
    )


def test_forget_scrubs_the_id_from_other_users_events(engine: Engine) -> None:
    _community(engine)
    report = forget_user(engine, ALICE)
    assert report.deleted["events"] == 3  # her two, and the one in her private chat
    assert report.scrubbed["event references"] == 3
    bob = {e.ts: e.attributes for e in user_events(engine, BOB)}
    carol = {e.ts: e.attributes for e in user_events(engine, CAROL)}
    assert bob[_at(2)] == {"by": None, "status": "member"}
    assert bob[_at(4)] == {"message_id": 71, "reply_to": None}
    assert bob[_at(6)] == {"message_id": 73, "reply_to": 72}  # a reply to Carol stays
    assert carol[_at(3)] == {"by": BOB, "status": "member"}  # Bob's id stays
    assert carol[_at(7)] == {"message_id": None, "new": ["👍"]}
    assert carol[_at(8)] == {"message_id": 5, "reply_to": 70}  # another chat's message 70
    assert count_events(engine) == 7
    again = forget_user(engine, ALICE)
    assert again.total == 0


def test_forget_clears_campaign_authorship_and_private_chat_deliveries(engine: Engine) -> None:
    append_events(engine, [EventRecord(user_id=BOB, chat_id=BOB, ts=T0, kind="command")])
    campaign_id = create_campaign(
        engine,
        kind="broadcast",
        name="news",
        segment="all",
        text="hello",
        scheduled_at=T0,
        now=T0,
        created_by=ALICE,
        deliveries=[
            NewDelivery(user_id=BOB, chat_id=BOB, text="hello", due_at=T0),
            NewDelivery(user_id=ALICE, chat_id=ALICE, text="hello", due_at=T0),
        ],
    )
    report = forget_user(engine, ALICE)
    assert report.scrubbed["campaigns"] == 1
    assert report.deleted["deliveries"] == 1
    with unit_of_work(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.created_by is None
        assert session.scalars(select(Delivery.user_id)).all() == [BOB]
