"""Nightly retraining: a new model becomes active only if its held-out metrics are no worse."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from analytics.sequence import MarkovModel, PopularityModel, load_model
from cli import app
from demo.synthetic import populate
from scheduler.reengagement import ReengagementConfig, plan_reengagement
from scheduler.retrain import retrain_followup_model
from store.db import unit_of_work
from store.model_runs import active_model_run, list_model_runs
from tests.scheduler.conftest import START


def test_retrain_activates_only_a_model_that_is_no_worse(sqlite_engine: Engine, tmp_path: Path) -> None:
    populate(sqlite_engine, 120, events_per_user=15, end=START, seed=3)
    first = retrain_followup_model(
        sqlite_engine, model_dir=tmp_path, now=START, model_factory=MarkovModel, refresh_analytics=True
    )
    assert first.activated and first.decision.startswith("activated: no active model")
    worse = retrain_followup_model(
        sqlite_engine, model_dir=tmp_path, now=START, model_factory=PopularityModel, refresh_analytics=False
    )
    assert not worse.activated and worse.decision.startswith("kept the active model")
    assert worse.active is not None and worse.candidate["ndcg@10"] < worse.active["ndcg@10"]
    same = retrain_followup_model(
        sqlite_engine, model_dir=tmp_path, now=START, model_factory=MarkovModel, refresh_analytics=False
    )
    assert same.activated  # equal held-out metrics are "at least" the active model's
    with unit_of_work(sqlite_engine) as session:
        active = active_model_run(session, "followup")
        runs = list_model_runs(session, "followup")
    assert active is not None and active.id == same.run_id
    assert [r.active for r in runs] == [True, False, False]
    # Each run ranks the same held-out events with the baselines too, and keeps them beside the model.
    popularity_run = next(r for r in runs if r.id == worse.run_id)
    assert popularity_run.metrics["baselines"]["popularity"] == worse.candidate  # same model, same events
    assert popularity_run.metrics["baselines"]["markov"] == first.candidate
    assert popularity_run.metrics["baselines"]["markov"]["n"] > 0
    saved = load_model(Path(popularity_run.artefact_path) / "baselines" / "markov")
    assert isinstance(saved, MarkovModel)
    # The re-engagement job now chooses with the active model.
    plan = plan_reengagement(sqlite_engine, ReengagementConfig(seed=0), now=START + timedelta(days=10))
    assert plan.pending > 0
    assert set(plan.methods) <= {"model", "exploration", "default", "response_rate"}
    assert plan.methods.get("model", 0) + plan.methods.get("exploration", 0) > 0


def test_retrain_with_too_little_data_records_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    result = retrain_followup_model(sqlite_engine, model_dir=tmp_path, now=START, refresh_analytics=False)
    assert result.run_id is None and "not trained" in result.decision
    with unit_of_work(sqlite_engine) as session:
        assert list_model_runs(session, "followup") == []


def test_followup_cli_evaluate_and_train(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    empty = runner.invoke(app, ["followup", "evaluate"])
    assert empty.exit_code == 1 and "too little data" in empty.output
    bad = runner.invoke(app, ["followup", "train", "--model", "gru"])
    assert bad.exit_code == 1 and "--model must be one of" in bad.output
