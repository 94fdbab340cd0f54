"""`rapport analytics run --engine spark` stores a run the rest of Rapport reads like a local one.

No module session here: each command opens and stops its own, as it does for a user.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from demo.synthetic import DEFAULT_END, populate
from store import create_db_engine, upgrade
from store.analytics_results import get_run, run_rules, run_segments

pytest.importorskip("pyspark", reason="the Spark engine is an optional extra: pip install 'rapport[spark]'")

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def populated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    url = f"sqlite:///{tmp_path / 'rapport.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_SPARK_CONF", "spark.sql.shuffle.partitions=2,spark.default.parallelism=2")
    engine = create_db_engine(url)
    upgrade(engine)
    populate(engine, 120, events_per_user=15, days=40)
    engine.dispose()
    return url


def test_spark_run_from_a_parquet_export_is_stored_as_the_current_run(populated: str, tmp_path: Path) -> None:
    export = tmp_path / "events.parquet"
    result = runner.invoke(app, ["events", "export", "--format", "parquet", "--out", str(export)])
    assert result.exit_code == 0, result.output
    assert any(p.name.startswith("day=") for p in export.iterdir())
    as_of = DEFAULT_END.isoformat()
    args = ["analytics", "run", "--engine", "spark", "--events-parquet", str(export), "--k-max", "4"]
    result = runner.invoke(app, [*args, "--as-of", as_of, "--min-support", "0.05", "--min-lift", "1.0"])
    assert result.exit_code == 0, result.output
    engine = create_db_engine(populated)
    run = get_run(engine)
    assert run is not None and run.status == "done"
    assert run.params["engine"] == "spark" and run.metrics["engine"] == "spark"
    segments = run_segments(engine, run.id)
    assert 2 <= len(segments) <= 4
    assert sum(s.size for s in segments) == 120
    assert len({s.name for s in segments}) == len(segments)
    assert run_rules(engine, run.id), "support 0.05 finds rules on 120 users"
    engine.dispose()
    again = runner.invoke(app, ["events", "export", "--format", "parquet", "--out", str(export)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_dbscan_on_spark_and_an_unknown_engine_are_refused(populated: str) -> None:
    result = runner.invoke(app, ["analytics", "run", "--engine", "spark", "--algorithm", "dbscan"])
    assert result.exit_code == 1 and "kmeans only" in result.output
    result = runner.invoke(app, ["analytics", "run", "--engine", "dask"])
    assert result.exit_code == 1 and "not local or spark" in result.output
    assert runner.invoke(app, ["events", "export", "--format", "parquet"]).exit_code == 1


def test_rules_command_prints_the_same_json_on_both_engines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARK_LOCAL_IP", os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"))
    baskets = tmp_path / "baskets.csv"
    baskets.write_text("a,b\na,b,c\na,c\nb,c\na,b\nc\n" * 10)
    options = ["--baskets", str(baskets), "--min-support", "0.1", "--min-confidence", "0.3", "--json"]
    local = runner.invoke(app, ["analytics", "rules", *options])
    spark = runner.invoke(app, ["analytics", "rules", *options, "--engine", "spark"])
    assert local.exit_code == 0 and spark.exit_code == 0, spark.output
    local_rules = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in json.loads(local.stdout)}
    spark_rules = {(tuple(r["antecedents"]), tuple(r["consequents"])): r for r in json.loads(spark.stdout)}
    assert local_rules and set(spark_rules) == set(local_rules)
    for key, rule in local_rules.items():
        for measure in ("support", "confidence", "lift"):
            assert spark_rules[key][measure] == pytest.approx(rule[measure], abs=1e-9)
