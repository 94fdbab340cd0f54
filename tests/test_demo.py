"""`rapport demo` end to end on a tiny community: the summary agrees with the database."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from store import count_events, count_users, create_db_engine, load_settings
from store.models import AccountLink, Campaign, Delivery, Event, Segment, SegmentMembership, User


def test_demo_command_is_registered_with_its_options() -> None:
    from cli import app

    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--users", "--days", "--seed", "--out"):
        assert option in result.output


@pytest.mark.slow
def test_small_demo_runs_end_to_end_and_matches_the_database(tmp_path: Path) -> None:
    from demo.report import summary_lines, write_outputs
    from demo.run import DemoConfig, run_demo

    out = tmp_path / "demo"
    config = DemoConfig(
        users=40,
        days=14,
        seed=3,
        out=out,
        live_days=1.0,
        live_wall_s=4.0,
        lstm_epochs=1,
        holdout_days=3.0,
        horizon_days=2.0,
        experiment_users=300,
    )
    summary = run_demo(config, load_settings(data_dir=tmp_path / "var"))
    html_path, json_path = write_outputs(summary, out, analytics_report=summary.analytics_report)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert "<img" in html_path.read_text(encoding="utf-8")
    assert (out / "analytics" / "report.html").exists()
    assert summary_lines(summary)[-1].startswith("wall time")
    # The experiment's figures are in summary.json and the report, and its store holds its sends.
    experiment = data["experiment"]
    assert sum(a["sends"] for a in experiment["arms"]) == 300
    assert {a["variant"] for a in experiment["arms"]} == {"a", "b", "c"}
    assert experiment["truly_best"] == "c" and "decision" in experiment
    assert "Which message worked best?" in html_path.read_text(encoding="utf-8")
    assert any(line.startswith("experiment (300 simulated users") for line in summary_lines(summary))
    assert (out / "data" / "experiment.db").exists()

    engine = create_db_engine(f"sqlite:///{out / 'data' / 'rapport.db'}")
    try:
        assert data["events_total"] == count_events(engine) == sum(data["events_by_kind"].values())
        assert data["events_history"] + data["events_live"] == data["events_total"]
        # Every live action the driver delivered became at least one logged event.
        assert data["events_live"] >= sum(data["live"]["actions_sent"].values()) > 0
        assert sum(data["hidden_types"].values()) == 40
        segmented = sum(s["size"] for s in data["segments"])
        assert 0 < segmented <= count_users(engine)
        assert -1.0 <= data["adjusted_rand_index"] <= 1.0
        for values in data["models"].values():
            assert 0.0 <= values["hr@1"] <= values["hr@5"] <= values["hr@10"] <= 1.0
        assert set(data["models"]) == {"lstm", "markov", "popularity"}
        _check_deliveries(engine, data)
        _check_product(engine, data)
    finally:
        engine.dispose()


def _check_product(engine: Engine, data: dict[str, Any]) -> None:
    """Linked accounts and product events are in the store; the upgrade goal is the campaign's."""
    product = data["product"]
    with Session(engine) as session:
        assert product["linked"] == session.scalar(select(func.count()).select_from(AccountLink)) > 0
        assert sum(product["plans"].values()) == product["linked"]
        logged = session.scalar(select(func.count()).select_from(Event).where(Event.kind == "product"))
        assert logged is not None and logged >= sum(product["events"].values()) > 0
        goal = product["upgrade_goal"]
        job = session.get(Campaign, data["pushes"]["details"][1]["campaign_id"])
        assert job is not None and job.kind == "reengagement"
        assert job.attributes["goal"] == goal["goal"] == "product:upgrade"
        assert 0 <= goal["pushed_converted"] <= goal["pushed"]
        assert 0 <= goal["holdout_converted"] <= goal["holdout"]


def _check_deliveries(engine: Engine, data: dict[str, Any]) -> None:
    """Counts match the database and every delivery went to someone who was eligible for it."""
    details = {d["kind"]: d for d in data["pushes"]["details"]}
    assert set(details) == {"broadcast", "reengagement"}
    with Session(engine) as session:
        for detail in details.values():
            rows = session.scalars(
                select(Delivery).where(Delivery.campaign_id == detail["campaign_id"])
            ).all()
            assert len(rows) == detail["targeted"] == sum(detail["by_status"].values())
            for delivery in rows:
                user = session.get(User, delivery.user_id)
                assert user is not None and not user.opted_out
                if delivery.status == "sent":
                    assert not user.blocked and delivery.sent_at is not None
        broadcast = session.get(Campaign, details["broadcast"]["campaign_id"])
        assert broadcast is not None
        members = set(
            session.scalars(
                select(SegmentMembership.user_id)
                .join(Segment, Segment.id == SegmentMembership.segment_id)
                .where(Segment.name == details["broadcast"]["segment"])
            )
        )
        recipients = session.scalars(select(Delivery.user_id).where(Delivery.campaign_id == broadcast.id))
        assert set(recipients) <= members
        job = session.get(Campaign, details["reengagement"]["campaign_id"])
        assert job is not None
        for user_id in session.scalars(select(Delivery.user_id).where(Delivery.campaign_id == job.id)):
            last_before = session.scalar(
                select(func.max(Event.ts)).where(
                    Event.user_id == user_id,
                    Event.ts < job.created_at,
                    Event.kind.not_in(("push_received", "push_response")),  # not the user's doing
                )
            )
            assert last_before is not None
            assert last_before.replace(tzinfo=UTC) < job.created_at.replace(tzinfo=UTC) - timedelta(days=7)
    returns = data["pushes"]["returns"]
    assert returns["pushed"] == details["reengagement"]["by_status"].get("sent", 0)
    assert 0 <= returns["pushed_returned"] <= returns["pushed"]
    assert 0 <= returns["holdout_returned"] <= returns["holdout"]
    assert returns["holdout"] == details["reengagement"]["skipped_by_reason"].get("holdout", 0)


def test_report_writes_with_nothing_measured(tmp_path: Path) -> None:
    from demo.report import summary_lines, write_outputs
    from demo.run import DemoSummary

    returns = {"horizon_days": 3.0, "pushed": 0, "pushed_returned": 0, "pushed_rate": None}
    returns |= {"holdout": 0, "holdout_returned": 0, "holdout_rate": None}
    summary = DemoSummary(
        users=5,
        days=7,
        seed=1,
        events_total=0,
        events_history=0,
        events_live=0,
        events_by_kind={},
        live={},
        hidden_types={"power_user": 5},
        segments=[],
        adjusted_rand_index=0.0,
        rules=[],
        models={},
        pushes={"campaigns": {}, "returns": returns},
        timings_s={"history": 0.1},
        skipped_steps=["broadcast: no segment"],
    )
    html_path, json_path = write_outputs(summary, tmp_path)
    lines = summary_lines(summary)
    assert "pushed n/a (0/0) vs holdout n/a (0/0)" in " ".join(lines)
    assert "skipped: broadcast: no segment" in lines
    assert json.loads(json_path.read_text(encoding="utf-8"))["pushes"]["returns"]["pushed_rate"] is None
    assert "Rapport demo" in html_path.read_text(encoding="utf-8")


def test_campaign_counts_read_as_statuses_with_skip_reasons() -> None:
    from demo.report import _describe_counts

    counts = {"skipped:holdout": 24, "blocked": 5, "skipped": 30, "sent": 65, "skipped:capped": 6}
    assert _describe_counts(counts) == "sent 65, blocked 5, skipped 30 (capped 6, holdout 24)"
    assert _describe_counts({"sent": 101}) == "sent 101"
    assert _describe_counts({}) == ""


def test_demo_report_gives_rates_sizes_interval_and_says_not_significant(tmp_path: Path) -> None:
    from demo.report import summary_lines, write_outputs
    from demo.run import DemoSummary

    returns = {"horizon_days": 3.0, "pushed": 21, "pushed_returned": 4, "pushed_rate": 0.1905}
    returns |= {"holdout": 7, "holdout_returned": 0, "holdout_rate": 0.0}
    summary = DemoSummary(
        users=150,
        days=30,
        seed=0,
        events_total=10,
        events_history=10,
        events_live=0,
        events_by_kind={"message": 10},
        live={},
        hidden_types={"casual_asker": 150},
        segments=[
            {
                "name": "A",
                "size": 150,
                "hidden_types": {"casual_asker": 150},
                "dominant_type": "x",
                "purity": 1.0,
            }
        ],
        adjusted_rand_index=1.0,
        rules=[],
        models={"markov": {"hr@1": 0.2, "hr@5": 0.6, "hr@10": 0.9, "mrr": 0.4, "n": 1432.0}},
        pushes={"campaigns": {}, "returns": returns},
        timings_s={"history": 3.0},
    )
    html_path, _json_path = write_outputs(summary, tmp_path)
    page = html_path.read_text(encoding="utf-8")
    assert "pushed 19% (4 of 21) vs holdout 0% (0 of 7)" in page
    assert "95% interval −" in page and "Not significant" in page
    assert "<td>1432</td>" in page and "1432.0" not in page and "<td>100%</td>" in page
    for term in ("HR@10", "MRR", "ARI"):
        assert f"{term}: " in page
    assert any("Not significant" in line for line in summary_lines(summary))
