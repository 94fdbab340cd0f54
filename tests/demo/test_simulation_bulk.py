"""Bulk history straight into the store, shaped like the bot's own event rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from demo.simulation import GROUP_CHAT_ID, make_population, write_history
from demo.simulation.bulk import time_zone_of
from store import count_events, count_users, get_user, iter_events

START = datetime(2026, 9, 1, tzinfo=UTC)
OBSERVER_KINDS = {"message", "fallback", "command", "feedback", "join", "reaction", "poll_answer"}


def test_history_matches_the_report_and_the_observer_shapes(engine: Engine) -> None:
    population = make_population(60, days=20, seed=11)
    report = write_history(engine, population, start=START)
    assert count_events(engine) == report.events
    assert report.events >= sum(report.events_by_action.values())
    events = list(iter_events(engine))
    assert {e.kind for e in events} <= OBSERVER_KINDS
    truth = population.true_types()
    assert {e.user_id for e in events} <= set(truth)
    for event in events:
        assert START <= event.ts < START + timedelta(days=20)
        if event.kind in ("message", "fallback") and event.intent is not None:
            assert 0.5 < (event.confidence or 0) < 1.0
        if event.kind == "reaction":
            assert event.chat_id == GROUP_CHAT_ID
        if event.kind == "feedback":
            assert event.attributes is not None and 1 <= event.attributes["rating"] <= 5
    assert count_users(engine) == len({e.user_id for e in events})


def test_until_cuts_the_history_and_profiles_keep_first_seen(sqlite_engine: Engine) -> None:
    population = make_population(80, days=20, seed=12)
    until = START + timedelta(days=15)
    report = write_history(sqlite_engine, population, start=START, until=until)
    events = list(iter_events(sqlite_engine))
    assert len(events) == report.events
    assert max(e.ts for e in events) < until
    someone = events[0].user_id
    assert someone is not None
    state = get_user(sqlite_engine, someone)
    assert state is not None
    persona = next(p for p in population.personas() if p.id == someone)
    assert state.language == persona.language
    assert state.time_zone == time_zone_of(persona.utc_offset_h)
    assert state.first_seen == min(e.ts for e in events if e.user_id == someone)


def test_time_zone_names() -> None:
    assert time_zone_of(0) == "UTC"
    assert time_zone_of(8) == "Etc/GMT-8"
    assert time_zone_of(-5) == "Etc/GMT+5"
