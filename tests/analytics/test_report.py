"""The offline report and the `rapport analytics` commands that run, list, pin and report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from analytics import AnalyticsConfig, run_analytics, write_report
from cli.analytics import app as analytics_app
from cli.common import get_settings
from demo.synthetic import DEFAULT_END, populate
from store import create_db_engine, upgrade


def _cli() -> typer.Typer:
    """`rapport analytics` under a root that builds settings as the real root does."""
    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = get_settings()

    root.add_typer(analytics_app, name="analytics")
    return root


def test_report_is_self_contained_html_json_and_csv(sqlite_engine: Engine, tmp_path: Path) -> None:
    populate(sqlite_engine, 150, events_per_user=10, seed=1)
    run_analytics(sqlite_engine, config=AnalyticsConfig(k_max=4, min_support=0.05), as_of=DEFAULT_END)
    out = write_report(sqlite_engine, tmp_path / "report")
    page = (out / "report.html").read_text(encoding="utf-8")
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == 6  # sizes, profiles, projection, active users, retention, activity
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in page and "https://" not in page
    summary = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert summary["run"]["status"] == "done" and summary["run"]["n_users"] == 150
    assert sum(row["size"] for row in summary["tables"]["segments"]) == 150
    segments = pd.read_csv(out / "segments.csv")
    assert segments["size"].sum() == 150
    assert len(pd.read_csv(out / "rules.csv")) == len(summary["tables"]["rules"]) > 0
    assert {"retention.csv", "activity.csv", "dau.csv", "unanswered.csv", "migration.csv"} <= {
        p.name for p in out.iterdir()
    }


def test_report_without_a_run_says_so(sqlite_engine: Engine, tmp_path: Path) -> None:
    out = write_report(sqlite_engine, tmp_path)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "No analytics run yet" in page
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["run"] is None


def test_cli_run_segments_pin_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    populate(engine, 80, events_per_user=8, seed=2)
    engine.dispose()
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    runner = CliRunner()
    cli = _cli()

    listed = runner.invoke(cli, ["analytics", "segments"])
    assert listed.exit_code == 1 and "no analytics run yet" in listed.output

    ran = runner.invoke(cli, ["analytics", "run", "--k-max", "3", "--min-support", "0.05"])
    assert ran.exit_code == 0, ran.output
    assert re.search(r"run \d+: done: 80 users in \d segment", ran.stdout)

    listed = runner.invoke(cli, ["analytics", "segments"])
    assert listed.exit_code == 0
    segment_id = re.search(r"│ (\d+) +│", listed.stdout)
    assert segment_id is not None
    pinned = runner.invoke(cli, ["analytics", "pin", segment_id.group(1), "Regulars"])
    assert pinned.exit_code == 0 and "pinned as 'Regulars'" in pinned.stdout
    missing = runner.invoke(cli, ["analytics", "pin", "999999", "X"])
    assert missing.exit_code == 1 and "no segment with id 999999" in missing.output

    bad = runner.invoke(cli, ["analytics", "run", "--algorithm", "spectral"])
    assert bad.exit_code == 1 and "'spectral' is not kmeans or dbscan" in bad.output
    bad = runner.invoke(cli, ["analytics", "run", "--as-of", "yesterday"])
    assert bad.exit_code == 1 and "'yesterday' is not an ISO date" in bad.output
    empty = runner.invoke(cli, ["analytics", "run", "--as-of", "2020-01-01"])
    assert empty.exit_code == 2 and ": empty: the event log has no user events" in empty.stdout

    reported = runner.invoke(cli, ["analytics", "report", "--out", str(tmp_path / "r")])
    assert reported.exit_code == 0, reported.output
    assert "Regulars" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_report_hides_membership_rules_marks_small_cohorts_and_explains_empty_sections(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    populate(sqlite_engine, 150, events_per_user=10, seed=1)
    run_analytics(sqlite_engine, config=AnalyticsConfig(k_max=4, min_support=0.05), as_of=DEFAULT_END)
    out = write_report(sqlite_engine, tmp_path / "report")
    page = (out / "report.html").read_text(encoding="utf-8")
    summary = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rules = pd.read_csv(out / "rules.csv")
    hidden = int(rules["restates_segment"].sum())
    assert summary["rules_hidden"] == hidden
    if hidden:
        assert f"{hidden} rule(s) that only restate segment membership" in page
    shown = page.split("<h2>Top rules</h2>", 1)[1].split("<h2>", 1)[0]
    assert "nan" not in shown.lower() and "also are in" not in shown
    # Empty sections say what they need; the counts of a table print as integers.
    assert "Segment movement appears after the second analytics run." in page
    segments = page.split("<h2>Segments</h2>", 1)[1].split("</table>", 1)[0]
    assert not re.search(r"<td>\d+\.0</td>", segments)
    sizes = pd.read_csv(out / "retention_sizes.csv")
    assert sizes["users"].sum() == 150
    small = int((sizes["users"] < 20).sum())
    if small:
        assert f"{small} cohort(s) with fewer than 20 users are hatched grey" in page
    assert "Colour scale" in page and "Only complete periods are drawn" in page
    for term in ("silhouette", "PCA", "lift", "confidence"):
        assert f"{term}: " in page
