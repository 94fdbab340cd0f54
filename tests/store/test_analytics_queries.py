"""The intents the store interprets are intents of the bundled NLU data; period counts are a dataclass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from nlu import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, default_data_paths, load_training_data
from store.analytics_queries import (
    FALLBACK_INTENTS,
    NON_QUESTION_INTENTS,
    SMALL_TALK_INTENTS,
    PeriodCounts,
    period_counts,
)
from store.db import read_snapshot, unit_of_work
from store.models import Event, User
from store.vocabulary import EventKind

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def test_interpreted_intents_are_labels_the_nlu_can_give() -> None:
    labels = {*load_training_data(default_data_paths()).intents, FALLBACK_INTENT}
    assert set(NON_QUESTION_INTENTS) - labels == set()
    assert set(SMALL_TALK_INTENTS) <= set(NON_QUESTION_INTENTS)
    assert set(FALLBACK_INTENTS) == {FALLBACK_INTENT, OUT_OF_SCOPE_INTENT}


def test_period_counts(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        session.add(User(id=1, first_seen=NOW - timedelta(hours=1), last_seen=NOW))
        session.add(User(id=2, first_seen=NOW - timedelta(days=9), last_seen=NOW))
        for kind, intent in (
            (EventKind.MESSAGE, "pricing"),
            (EventKind.MESSAGE, "pricing"),
            (EventKind.MESSAGE, "billing"),
            (EventKind.FALLBACK, "nlu_fallback"),
            (EventKind.REACTION, None),
        ):
            session.add(Event(user_id=1, ts=NOW - timedelta(minutes=5), kind=kind, intent=intent))
    with read_snapshot(engine) as session:
        counts = period_counts(session, since=NOW - timedelta(days=1), until=NOW)
    assert counts == PeriodCounts(
        messages=4, unanswered=1, new_users=1, top_intents=(("pricing", 2), ("billing", 1))
    )
