"""Broadcasts with a conversion goal: stored with the campaign, reported with a Wilson interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from analytics.experiments import wilson_interval
from cli import app
from scheduler import BroadcastError, campaign_report, create_broadcast
from store import EventRecord, append_events, create_db_engine
from store.campaigns import get_campaign
from store.db import unit_of_work
from store.models import Delivery

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
runner = CliRunner()


def _users(engine: Engine, n: int) -> None:
    append_events(
        engine, [EventRecord(user_id=u, ts=NOW - timedelta(days=3), kind="join") for u in range(1, n + 1)]
    )


def test_a_goal_is_stored_and_conversions_are_reported(engine: Engine) -> None:
    _users(engine, 10)
    campaign_id = create_broadcast(engine, segment="all", text="Try pro", at=NOW, now=NOW, goal="upgrade")
    campaign = get_campaign(engine, campaign_id)
    assert campaign is not None and campaign.attributes == {
        "goal": "product:upgrade",
        "goal_window_hours": 48.0,
    }
    with unit_of_work(engine) as session:
        session.execute(
            update(Delivery).where(Delivery.campaign_id == campaign_id).values(status="sent", sent_at=NOW)
        )
    append_events(
        engine,
        [
            EventRecord(
                user_id=u, ts=NOW + timedelta(hours=2), kind="product", attributes={"event": "upgrade"}
            )
            for u in (1, 2, 3)
        ],
    )
    report = campaign_report(engine, campaign_id, now=NOW + timedelta(days=3), rate_per_s=30.0)
    assert report.goal is not None
    low, high = wilson_interval(3, 10)
    line = report.lines()[-1]
    assert (
        line
        == f"goal product:upgrade within 48 h: 3/10 sent converted (30.0%, 95% CI {low:.1%} to {high:.1%})"
    )
    figures = report.as_dict()["goal"]
    assert figures["converted"] == 3 and figures["interval"] == [low, high] and figures["holdout"] == 0


def test_a_campaign_without_goal_has_no_goal_line(engine: Engine) -> None:
    _users(engine, 2)
    campaign_id = create_broadcast(engine, segment="all", text="Hi", at=NOW, now=NOW)
    report = campaign_report(engine, campaign_id, now=NOW, rate_per_s=30.0)
    assert report.goal is None and report.as_dict()["goal"] is None


@pytest.mark.parametrize(("goal", "window"), [("click:buy", 48.0), ("product:", 48.0), ("upgrade", 0.0)])
def test_bad_goals_are_refused_before_anything_is_stored(engine: Engine, goal: str, window: float) -> None:
    _users(engine, 2)
    with pytest.raises(BroadcastError):
        create_broadcast(
            engine, segment="all", text="Hi", at=NOW, now=NOW, goal=goal, goal_window=timedelta(hours=window)
        )
    with unit_of_work(engine) as session:
        assert session.query(Delivery).count() == 0


def test_the_cli_takes_goal_and_warns_about_an_unseen_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"user_id": 1, "timestamp": "2026-01-01T00:00:00Z", "kind": "join"}\n'
        '{"user_id": 1, "timestamp": "2026-01-02T00:00:00Z", "kind": "product",'
        ' "attributes": {"event": "upgrade"}}\n'
    )
    assert runner.invoke(app, ["events", "import", str(events)]).exit_code == 0
    created = runner.invoke(app, ["broadcast", "-s", "all", "-t", "Hi", "--goal", "upgrade", "--no-send"])
    assert created.exit_code == 0, created.output
    assert "goal product:upgrade within 48 h: not measurable yet" in created.output
    assert "warning" not in created.output
    typo = runner.invoke(app, ["broadcast", "-s", "all", "-t", "Hi", "--goal", "upgarde", "--no-send"])
    assert typo.exit_code == 0 and "no product event 'upgarde' logged so far (logged: upgrade)" in typo.output
    bad = runner.invoke(app, ["broadcast", "-s", "all", "-t", "Hi", "--goal", "click:x", "--no-send"])
    assert bad.exit_code == 1 and "only `return`" in bad.output
    window = runner.invoke(
        app, ["broadcast", "-s", "all", "-t", "Hi", "--goal", "upgrade", "--goal-window-hours", "-1"]
    )
    assert window.exit_code == 1 and "--goal-window-hours" in window.output
    engine = create_db_engine(f"sqlite:///{tmp_path / 'var' / 'rapport.db'}")
    try:
        with unit_of_work(engine) as session:
            assert session.query(Delivery).count() == 2  # the two valid broadcasts only
    finally:
        engine.dispose()
