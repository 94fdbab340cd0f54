"""Nightly retraining with an LSTM stopped by its time budget: recorded, and still compared."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from analytics.sequence import MarkovModel, NextEventModel
from cli import app
from cli.followup import _training_progress
from demo.synthetic import populate
from scheduler.retrain import retrain_followup_model
from store.model_runs import list_model_runs
from tests.scheduler.conftest import START


def test_a_budget_stopped_candidate_is_recorded_and_compared_with_the_active_model(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    populate(sqlite_engine, 120, events_per_user=15, end=START, seed=3)
    first = retrain_followup_model(
        sqlite_engine, model_dir=tmp_path, now=START, model_factory=MarkovModel, refresh_analytics=False
    )
    assert first.activated and first.training["n_transitions"] > 0
    result = retrain_followup_model(
        sqlite_engine,
        model_dir=tmp_path,
        now=START,
        model_factory=lambda: NextEventModel(
            epochs=20, units=8, embedding_dim=4, max_train_seconds=0.01, random_state=0
        ),
        refresh_analytics=False,
    )
    assert result.run_id is not None and result.active is not None
    assert result.training["stopped_by_budget"] is True and result.training["epochs_run"] == 1
    # The activation rule is unchanged: the held-out NDCG@10 against the active model's.
    assert result.activated == (result.candidate["ndcg@10"] >= result.active["ndcg@10"])
    with Session(sqlite_engine) as session:
        runs = {run.id: run for run in list_model_runs(session, "followup")}
    recorded = runs[result.run_id].metrics
    assert recorded["training"]["stopped_by_budget"] is True
    assert recorded["candidate"] == pytest.approx(result.candidate)


def test_cli_train_checks_its_budget_and_shows_training_progress(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    bad = CliRunner().invoke(app, ["followup", "train", "--max-train-seconds", "0"])
    assert bad.exit_code == 1 and "--max-train-seconds must be positive" in bad.output
    training_logger = logging.getLogger("analytics.sequence.lstm")
    training_logger.setLevel(logging.WARNING)
    with _training_progress():
        training_logger.info("lstm epoch %d/%d: loss %.4f", 2, 30, 1.5)
    training_logger.info("after training: not shown")
    shown = capsys.readouterr().out
    assert "lstm epoch 2/30: loss 1.5000" in shown and "not shown" not in shown
    assert training_logger.level == logging.WARNING and training_logger.propagate
