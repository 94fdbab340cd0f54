"""Staff accounts (RAPPORT_ADMIN_IDS) stay out of segments, rules, counts and the report."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from analytics import AnalyticsConfig, activity_stats, run_analytics, write_report
from analytics.features import compute_features
from analytics.insights import active_users_series, retention_sizes, unanswered_questions
from demo.synthetic import DEFAULT_END, populate
from store import EventRecord, append_events
from store.analytics_results import get_run, run_memberships, run_rules

MANAGER = 9_000_001
USERS = 60


def _manager_events(engine: Engine) -> None:
    """A busy manager: many messages with an intent nobody else uses, reactions, a fallback."""
    records = [
        EventRecord(
            user_id=MANAGER,
            chat_id=MANAGER,
            ts=DEFAULT_END - timedelta(hours=1 + 3 * i),
            kind="message",
            intent="staff_broadcast_check",
            text="checking the broadcast",
        )
        for i in range(40)
    ]
    records.append(
        EventRecord(
            user_id=MANAGER,
            chat_id=MANAGER,
            ts=DEFAULT_END - timedelta(hours=2),
            kind="fallback",
            intent="nlu_fallback",
            text="manager only gibberish",
        )
    )
    append_events(engine, records)


def test_a_manager_with_events_is_in_no_segment_rule_or_count(sqlite_engine: Engine, tmp_path: Path) -> None:
    populate(sqlite_engine, USERS, events_per_user=10, seed=4)
    _manager_events(sqlite_engine)
    config = AnalyticsConfig(k_max=4, min_support=0.05, exclude_users=(MANAGER,))
    summary = run_analytics(sqlite_engine, config=config, as_of=DEFAULT_END)

    assert summary.status == "done" and summary.n_users == USERS
    assert "1 staff account(s) left out" in summary.message
    users, _segments = run_memberships(sqlite_engine, summary.run_id)
    assert MANAGER not in users and len(users) == USERS
    run = get_run(sqlite_engine)
    assert run is not None and run.metrics["staff_excluded"] == 1
    assert run.metrics["rules"]["n_baskets"] == USERS  # supports are shares of community users
    for rule in run_rules(sqlite_engine, summary.run_id, limit=None):
        assert "intent:staff_broadcast_check" not in (*rule.antecedents, *rule.consequents)
    features = compute_features(sqlite_engine, as_of=DEFAULT_END, exclude_users=(MANAGER,))
    assert MANAGER not in features.frame.index
    assert "staff_broadcast_check" not in features.intent_counts.columns

    since = DEFAULT_END - timedelta(days=90)
    with_staff = activity_stats(sqlite_engine, since, DEFAULT_END)
    without = activity_stats(sqlite_engine, since, DEFAULT_END, exclude_users=[MANAGER])
    assert with_staff.active_users == without.active_users + 1
    assert with_staff.new_users == without.new_users + 1
    assert with_staff.dau == without.dau + 1  # the manager was active on the last day
    assert with_staff.messages == without.messages + 41
    assert "staff_broadcast_check" not in dict(without.top_intents)
    dau = active_users_series(sqlite_engine, since, DEFAULT_END, exclude_users=[MANAGER])["dau"]
    assert dau["users"].max() <= USERS
    assert retention_sizes(sqlite_engine, DEFAULT_END, exclude_users=[MANAGER]).sum() == USERS
    texts = unanswered_questions(sqlite_engine, since, DEFAULT_END, exclude_users=[MANAGER])
    assert "manager only gibberish" not in set(texts["text"])

    # The report leaves out whom the run left out, and says how many.
    out = write_report(sqlite_engine, tmp_path / "report")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["staff_excluded"] == 1
    assert report["activity"]["active_users"] == without.active_users
    assert "1 staff account(s) (RAPPORT_ADMIN_IDS) are left out" in (out / "report.html").read_text(
        encoding="utf-8"
    )


def test_without_exclusion_the_manager_is_segmented(sqlite_engine: Engine) -> None:
    """The contrast that makes the test above mean something: by itself the manager is a user."""
    populate(sqlite_engine, USERS, events_per_user=10, seed=4)
    _manager_events(sqlite_engine)
    summary = run_analytics(sqlite_engine, config=AnalyticsConfig(k_max=4), as_of=DEFAULT_END)
    users, _segments = run_memberships(sqlite_engine, summary.run_id)
    assert MANAGER in users and summary.n_users == USERS + 1
    assert "staff" not in summary.message


def test_every_count_leaves_staff_out_on_both_backends(engine: Engine) -> None:
    staff, member = 77, 78
    records = [
        EventRecord(
            user_id=user,
            chat_id=user,
            ts=DEFAULT_END - timedelta(hours=hours),
            kind="message",
            intent="pricing",
        )
        for user, hours in ((staff, 1), (staff, 30), (member, 2), (member, 50))
    ]
    append_events(engine, records)
    since = DEFAULT_END - timedelta(days=7)
    stats = activity_stats(engine, since, DEFAULT_END, exclude_users=[staff])
    assert (stats.dau, stats.wau, stats.active_users, stats.new_users, stats.messages) == (1, 1, 1, 1, 2)
    everyone = activity_stats(engine, since, DEFAULT_END)
    assert (everyone.dau, everyone.active_users, everyone.messages) == (2, 2, 4)
    assert list(compute_features(engine, as_of=DEFAULT_END, exclude_users=(staff,)).frame.index) == [member]
    assert retention_sizes(engine, DEFAULT_END, exclude_users=[staff]).sum() == 1
