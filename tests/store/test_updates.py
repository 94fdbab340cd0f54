"""Claimed webhook updates (`store.updates`) and the (ts, update_id, id) order of the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from store import EventRecord, append_events, iter_user_sequences, user_events
from store.db import unit_of_work
from store.models import ProcessedUpdate
from store.updates import Claim, claim_update, finish_update, logged_events, prune_claims, stored_reply

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=30)


def _claim(engine: Engine, update_id: int, replica: str, at: datetime) -> Claim:
    return claim_update(engine, update_id, replica, now=at, stale_after=STALE)


def test_one_claim_per_update_and_a_done_update_is_never_handled_again(engine: Engine) -> None:
    assert _claim(engine, 7, "a", T0) is Claim.NEW
    assert _claim(engine, 7, "b", T0 + timedelta(seconds=1)) is Claim.BUSY  # a is on it
    assert _claim(engine, 7, "a", T0 + timedelta(seconds=1)) is Claim.BUSY  # a retry to a itself
    assert finish_update(engine, 7, "a", now=T0 + timedelta(seconds=2))
    assert _claim(engine, 7, "b", T0 + timedelta(hours=2)) is Claim.DONE  # even long after
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 1


def test_the_webhook_reply_is_stored_when_the_claim_is_done_and_only_by_its_claimer(engine: Engine) -> None:
    reply = '{"method": "sendMessage", "chat_id": 5, "text": "Hällo"}'
    assert _claim(engine, 9, "a", T0) is Claim.NEW
    assert stored_reply(engine, 9) is None  # not done: nothing to give a retry
    assert _claim(engine, 9, "b", T0 + STALE * 2) is Claim.TAKEN_OVER
    assert not finish_update(engine, 9, "a", now=T0 + STALE * 2, reply='{"method": "stale"}')
    assert stored_reply(engine, 9) is None  # the fenced claimer stored nothing
    assert finish_update(engine, 9, "b", now=T0 + STALE * 2, reply=reply)
    assert stored_reply(engine, 9) == reply
    assert _claim(engine, 10, "a", T0) is Claim.NEW
    assert finish_update(engine, 10, "a", now=T0)  # answered without a reply body
    assert stored_reply(engine, 10) is None
    assert stored_reply(engine, 11) is None  # never claimed (or pruned)


def test_a_stale_claim_is_taken_over_once_and_fences_its_first_claimer(engine: Engine) -> None:
    assert _claim(engine, 8, "dead", T0) is Claim.NEW
    later = T0 + STALE + timedelta(seconds=1)
    assert _claim(engine, 8, "b", later) is Claim.TAKEN_OVER
    assert _claim(engine, 8, "c", later) is Claim.BUSY  # b's claim is fresh now
    assert not finish_update(engine, 8, "dead", now=later)  # the first claimer lost it
    assert finish_update(engine, 8, "b", now=later)
    assert _claim(engine, 8, "c", later + STALE * 2) is Claim.DONE


def test_prune_drops_only_claims_older_than_the_bound(engine: Engine) -> None:
    for update_id, age_h in ((1, 30), (2, 25), (3, 1)):
        _claim(engine, update_id, "a", T0 - timedelta(hours=age_h))
    assert prune_claims(engine, before=T0 - timedelta(days=1)) == 2
    assert _claim(engine, 3, "b", T0) is Claim.TAKEN_OVER  # kept (an hour old, never finished)
    assert _claim(engine, 1, "b", T0) is Claim.NEW  # pruned: Telegram stopped retrying long before


def test_logged_events_finds_an_update_of_the_user(engine: Engine) -> None:
    append_events(engine, [EventRecord(user_id=5, ts=T0, kind="message", update_id=41)])
    assert logged_events(engine, 41, user_id=5)
    assert not logged_events(engine, 42, user_id=5)
    assert not logged_events(engine, 41, user_id=6)
    assert logged_events(engine, 41, user_id=None)


def test_events_of_one_second_read_back_in_update_order_whatever_the_insert_order(engine: Engine) -> None:
    # Two replicas wrote update 11 before update 10 (same Telegram second); a push without an
    # update in that second comes first, a later second after them all.
    append_events(
        engine,
        [
            EventRecord(user_id=5, ts=T0, kind="command", update_id=11),
            EventRecord(user_id=5, ts=T0 + timedelta(seconds=1), kind="feedback", update_id=9),
        ],
    )
    append_events(engine, [EventRecord(user_id=5, ts=T0, kind="message", update_id=10)])
    append_events(engine, [EventRecord(user_id=5, ts=T0, kind="push_received")])
    expected = ["push_received", "message", "command", "feedback"]
    assert [e.kind for e in user_events(engine, 5)] == expected
    assert [e.update_id for e in user_events(engine, 5)] == [None, 10, 11, 9]
    assert [e.kind for e in user_events(engine, 5, limit=3)] == expected[1:]
    assert [[e.kind for e in events] for _, events in iter_user_sequences(engine)] == [expected]
