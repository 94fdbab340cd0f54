"""Best-time against fixed-time sends: per-arm rates with Wilson intervals and the Newcombe difference."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from analytics.experiments import newcombe_interval, wilson_interval
from cli import app
from scheduler.best_time import BEST_TIME, FIXED
from scheduler.planning import create_broadcast
from scheduler.reports import campaign_report
from scheduler.send_time_report import SendTimeArm, SendTimeComparison
from store.db import unit_of_work
from store.models import Delivery, Event
from tests.scheduler.conftest import add_users

NOW = datetime(2026, 10, 21, 0, 0, tzinfo=UTC)


def _sent_split(engine: Engine) -> tuple[int, dict[int, str]]:
    """A comparison broadcast to 200 users, all sent four days ago; its id and each user's arm."""
    add_users(engine, range(1, 201), seen_at=NOW - timedelta(days=10), time_zone="UTC")
    past = NOW - timedelta(days=4)
    campaign_id = create_broadcast(
        engine, segment="all", text="hello", at=past, now=past, send_at="best_time_vs_fixed"
    )
    with unit_of_work(engine) as session:
        session.execute(
            update(Delivery).where(Delivery.campaign_id == campaign_id).values(status="sent", sent_at=past)
        )
        arms = {
            int(u): str(v)
            for u, v in session.execute(
                select(Delivery.user_id, Delivery.variant).where(Delivery.campaign_id == campaign_id)
            )
        }
    return campaign_id, arms


def _convert(engine: Engine, users: list[int], at: datetime) -> None:
    with unit_of_work(engine) as session:
        for user_id in users:
            session.add(Event(user_id=user_id, chat_id=user_id, ts=at, kind="message"))


def test_the_campaign_report_compares_both_arms(engine: Engine) -> None:
    campaign_id, arms = _sent_split(engine)
    best = sorted(u for u, a in arms.items() if a == BEST_TIME)
    fixed = sorted(u for u, a in arms.items() if a == FIXED)
    sent_at = NOW - timedelta(days=4)
    _convert(engine, best[: len(best) // 2], sent_at + timedelta(hours=3))  # half of best-time converts
    _convert(engine, fixed[:5], sent_at + timedelta(hours=3))
    _convert(engine, fixed[5:10], sent_at + timedelta(hours=60))  # outside the 48 h window
    report = campaign_report(engine, campaign_id, now=NOW, rate_per_s=30.0)
    comparison = report.send_time
    assert comparison is not None
    assert (comparison.best.sends, comparison.best.conversions) == (len(best), len(best) // 2)
    assert (comparison.fixed.sends, comparison.fixed.conversions) == (len(fixed), 5)
    assert comparison.best.interval == wilson_interval(len(best) // 2, len(best))
    assert comparison.interval == newcombe_interval(len(best) // 2, len(best), 5, len(fixed))
    assert comparison.verdict == "best time converts better"
    text = "\n".join(report.lines())
    assert f"best time {len(best) // 2}/{len(best)}" in text and f"fixed 5/{len(fixed)}" in text
    assert "best − fixed" in text
    figures = report.as_dict()["send_time"]
    assert figures[BEST_TIME]["sends"] == len(best) and figures[FIXED]["conversions"] == 5


def test_open_windows_are_not_measured_yet(engine: Engine) -> None:
    campaign_id, _arms = _sent_split(engine)
    report = campaign_report(engine, campaign_id, now=NOW - timedelta(days=3), rate_per_s=30.0)
    assert report.send_time is not None
    assert report.send_time.best.sends == 0 and report.send_time.best.open > 0
    assert report.send_time.difference is None and report.send_time.verdict == "not measurable yet"
    assert "nothing measured yet" in "\n".join(report.lines())


def test_a_plain_broadcast_has_no_send_time_section(engine: Engine) -> None:
    add_users(engine, [1, 2])
    campaign_id = create_broadcast(engine, segment="all", text="hi", at=NOW, now=NOW)
    report = campaign_report(engine, campaign_id, now=NOW, rate_per_s=30.0)
    assert report.send_time is None and report.as_dict()["send_time"] is None


@pytest.mark.parametrize(
    ("best", "fixed", "verdict"),
    [
        ((30, 100), (10, 100), "best time converts better"),
        ((10, 100), (30, 100), "fixed time converts better"),
        ((11, 100), (10, 100), "no significant difference"),
    ],
)
def test_the_verdict_follows_the_interval(
    best: tuple[int, int], fixed: tuple[int, int], verdict: str
) -> None:
    comparison = SendTimeComparison(
        SendTimeArm(BEST_TIME, best[1], best[0]), SendTimeArm(FIXED, fixed[1], fixed[0])
    )
    assert comparison.verdict == verdict


def test_the_cli_creates_a_comparison_and_reports_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(
            f'{{"user_id": {u}, "timestamp": "2026-01-01T19:00:00Z", "kind": "join"}}\n' for u in range(1, 41)
        )
    )
    assert runner.invoke(app, ["events", "import", str(events)]).exit_code == 0
    both = runner.invoke(
        app,
        ["broadcast", "--segment", "all", "--text", "hi", "--best-time", "--best-time-vs-fixed", "--no-send"],
    )
    assert both.exit_code == 1 and "not both" in both.output
    created = runner.invoke(
        app, ["broadcast", "--segment", "all", "--text", "hi", "--best-time-vs-fixed", "--no-send"]
    )
    assert created.exit_code == 0, created.output
    assert "targeted 40" in created.output and "send time" in created.output
    report = runner.invoke(app, ["broadcast", "report", "1", "--json"])
    figures = json.loads(report.output)["send_time"]
    assert figures[BEST_TIME]["open"] == 0 and figures["verdict"] == "not measurable yet"
    best = runner.invoke(app, ["broadcast", "--segment", "all", "--text", "hi", "--best-time", "--no-send"])
    assert best.exit_code == 0 and "targeted 40" in best.output
