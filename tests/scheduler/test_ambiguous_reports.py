"""Ambiguous deliveries are their own status in the CLI, `/campaigns`, the report and JSON (issue 14, 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from bot.admin.formatting import format_campaigns
from cli import app
from scheduler.planning import create_broadcast
from scheduler.reports import campaign_report
from store import create_db_engine
from store.campaigns import start_due_campaigns
from store.db import unit_of_work
from store.deliveries import begin_send, claim_batch, mark_ambiguous, mark_sent, recover_sending
from store.models import Delivery
from tests.scheduler.conftest import START

runner = CliRunner()
USERS = (7201, 7202, 7203, 7204)


@pytest.fixture
def campaign(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """A broadcast to four users: one sent, one cut off by a read error, one lost in a crash, one pending."""
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(f'{{"user_id": {u}, "timestamp": "2026-01-01T00:00:00Z", "kind": "join"}}\n' for u in USERS)
    )
    assert runner.invoke(app, ["events", "import", str(events)]).exit_code == 0
    engine = create_db_engine(f"sqlite:///{tmp_path / 'var' / 'rapport.db'}")
    try:
        campaign_id = create_broadcast(engine, segment="all", text="Hi", at=START, now=START)
        start_due_campaigns(engine, now=START)
        first, second, third, _ = claim_batch(engine, owner="p", now=START, limit=10)
        for task in (first, second, third):
            begin_send(engine, task.id, owner="p", now=START)
        mark_sent(engine, first.id, telegram_message_id=1, now=START)
        mark_ambiguous(engine, second.id, error="httpx.ReadError")
        assert [a.id for a in recover_sending(engine)] == [third.id]  # the crash
    finally:
        engine.dispose()
    return campaign_id


def test_the_report_counts_ambiguous_apart_from_failed(campaign: int, tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'var' / 'rapport.db'}")
    try:
        report = campaign_report(engine, campaign, now=START, rate_per_s=30)
    finally:
        engine.dispose()
    assert report.counts.by_status == {"sent": 1, "ambiguous": 2, "pending": 1}
    assert report.counts.failed_by_reason == {}
    lines = report.lines()
    assert "failed 0" in lines[1]
    assert "ambiguous 2: may have reached the user" in "\n".join(lines)
    data = report.as_dict()
    assert data["ambiguous"] == 2
    assert data["by_status"]["failed"] == 0 and data["by_status"]["ambiguous"] == 2
    assert "ambiguous 2" in format_campaigns([report])  # what /campaigns shows


def test_rows_written_ambiguous_as_failed_before_count_as_ambiguous(campaign: int, tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'var' / 'rapport.db'}")
    try:
        with unit_of_work(engine) as session:  # how recovery used to store them
            session.execute(update(Delivery).where(Delivery.status == "ambiguous").values(status="failed"))
        report = campaign_report(engine, campaign, now=START, rate_per_s=30)
    finally:
        engine.dispose()
    assert report.counts.ambiguous == 2
    assert report.counts.by_status.get("failed", 0) == 0


def test_the_cli_shows_ambiguous_deliveries_in_text_and_json(campaign: int) -> None:
    listed = runner.invoke(app, ["campaigns"])
    assert listed.exit_code == 0, listed.output
    assert "failed 0" in listed.output and "ambiguous 2" in listed.output
    shown = runner.invoke(app, ["broadcast", "report", str(campaign), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["by_status"]["ambiguous"] == 2 and data["by_status"]["sent"] == 1
    every = json.loads(runner.invoke(app, ["campaigns", "--json"]).output)
    assert [item["ambiguous"] for item in every] == [2]
    assert json.loads(runner.invoke(app, ["broadcast", "list", "--json"]).output)[0]["id"] == campaign
