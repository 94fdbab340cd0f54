"""A segment's top intents come from the analytics run's stored results, not from events per request."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete

from store import EventRecord, append_events
from store.analytics_queries import intents_by_segment
from store.analytics_results import (
    TOP_INTENTS,
    NewSegment,
    complete_run,
    get_run,
    get_segment,
    run_segments,
    segment_top_intents,
    start_run,
)
from store.db import read_snapshot, unit_of_work
from store.models import Event
from tests.dashboard.conftest import NOW, Dash, seed_runs, seed_users


def _intent_rows(html: str) -> list[tuple[str, int]]:
    return [
        (name, int(n.replace(",", "")))
        for name, n in re.findall(r"<tr><td>([a-z_]+)</td><td class=\"barcell\">.*?<b>([\d,]+)</b>", html)
    ]


def _run(dash: Dash) -> int:
    seed_users(dash.engine, now=NOW)  # 3 `pricing` messages each
    extra = [
        EventRecord(user_id=u, chat_id=u, ts=NOW - timedelta(hours=k + 1), kind="message", intent=intent)
        for u, intent, times in ((1, "docs", 5), (2, "docs", 1), (7, "thanks", 2), (8, "greet", 4))
        for k in range(times)
    ]
    extra.append(
        EventRecord(user_id=1, chat_id=1, ts=NOW + timedelta(hours=1), kind="message", intent="late")
    )
    append_events(dash.engine, extra)
    run_id = start_run(dash.engine, algorithm="kmeans", params={"as_of": NOW.isoformat()})
    users = list(range(1, 13))
    labels = [0] * 6 + [1] * 6
    complete_run(
        dash.engine,
        run_id,
        message="ok",
        metrics={"segmentation": {}},
        n_events=0,
        segments=[NewSegment(0, "Askers", "", 6, {}), NewSegment(1, "Quiet", "", 6, {})],
        user_ids=users,
        labels=labels,
        rules=[],
    )
    return run_id


def test_the_run_stores_the_same_top_intents_the_query_counts(dash: Dash) -> None:
    run_id = _run(dash)
    run = get_run(dash.engine, run_id)
    assert run is not None and run.metrics["segmentation"] == {}  # the run's own metrics are kept
    stored = segment_top_intents(run)
    with read_snapshot(dash.engine) as session:
        table = intents_by_segment(session, run_id=run_id, as_of=NOW, limit=TOP_INTENTS)
    expected: dict[int, list[tuple[str, int]]] = {}
    for segment_id, intent, n in table.rows:
        expected.setdefault(segment_id, []).append((intent, n))
    assert stored == expected
    askers, quiet = sorted(run_segments(dash.engine, run_id), key=lambda s: s.label)
    assert stored[askers.id] == [("pricing", 18), ("docs", 6)]  # `late` is after the run's as_of
    assert stored[quiet.id] == [("pricing", 18), ("greet", 4), ("thanks", 2)]


def test_the_segment_page_reads_the_stored_intents_without_the_events(dash: Dash) -> None:
    run_id = _run(dash)
    askers = min(run_segments(dash.engine, run_id), key=lambda s: s.label)
    with unit_of_work(dash.engine) as session:
        session.execute(delete(Event))  # a page that counted events now would show none
    page = dash.logged_in().get(f"/segments/{askers.id}")
    assert page.status_code == 200
    assert _intent_rows(page.text) == [("pricing", 18), ("docs", 6)]


def test_a_run_stored_before_runs_kept_intents_is_counted_from_the_events(dash: Dash) -> None:
    seed_users(dash.engine, now=NOW)
    _, quiet_id = seed_runs(dash.engine)  # rows written directly: no stored intents
    quiet = get_segment(dash.engine, quiet_id)
    assert quiet is not None
    run = get_run(dash.engine, quiet.run_id)
    assert run is not None and segment_top_intents(run) is None
    page = dash.logged_in().get(f"/segments/{quiet.id}")
    assert _intent_rows(page.text) == [("pricing", 3 * quiet.size)]
