"""Retraining the NLU from the Questions page: in a background thread, validated, activated if no worse.

One retraining at a time per dashboard process. It learns the pending examples (``nlu.additions``):
the model before and after them is trained and scored on the same held-out split
(``nlu.retraining.compare``); only when the new one is no worse is it trained on everything, saved
over the bot's model directory and its examples moved from pending to accepted. Every run, activated
or not, is stored in ``model_runs`` (kind ``nlu``) with both sets of figures and the decision.

The bot picks the new model up by itself: it watches the model directory (``bot.nlu_reload``).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from nlu import NLUError, TrainingConfig, default_data_paths, load_training_data, save_model
from nlu.additions import DeploymentData
from nlu.retraining import TrainFn, compare, default_train
from store.db import read_snapshot
from store.model_runs import ModelRunInfo, list_model_runs, record_model_run

logger = logging.getLogger(__name__)

NLU_MODEL_KIND = "nlu"
RUNS_FOLDER = "nlu-runs"


@dataclass(frozen=True)
class TrainingStatus:
    """What the background retraining is doing: ``idle``, ``running``, ``done`` or ``failed``."""

    state: str = "idle"
    requested_by: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str = ""
    run_id: int | None = None


def deployment_data(nlu_data: tuple[Path, ...], additions_dir: Path) -> DeploymentData:
    """The deployment's training data: ``nlu_data`` (else the bundled files) and the additions."""
    return DeploymentData(additions_dir, list(nlu_data) or default_data_paths())


def retrain_nlu(
    engine: Engine,
    data: DeploymentData,
    *,
    model_dir: Path,
    now: datetime,
    config: TrainingConfig | None = None,
    train_fn: TrainFn = default_train,
) -> tuple[int | None, str]:
    """Validate and maybe activate a model that learned the pending examples; (model run id, decision).

    Raises:
        NLUError: unreadable training data, or too little of it to validate.
        OSError: the model or the data could not be written.
    """
    config = config or TrainingConfig()
    pending = data.pending()
    if not pending:
        return None, "nothing to learn: no examples were added since the last activated retraining"
    run_dir = model_dir.parent / RUNS_FOLDER / f"{now:%Y%m%dT%H%M%S%f}"
    run_dir.mkdir(parents=True, exist_ok=True)
    old = data.active_data()
    candidate = data.candidate_accepted(pending, run_dir / "accepted.yml")
    new = load_training_data(data.training_paths(accepted=candidate))
    comparison = compare(old, new, config=config, train_fn=train_fn)
    metrics: dict[str, Any] = {**comparison.to_dict(), "n_pending": len(pending)}
    params = {"n_examples": len(new.examples), "intents": len(new.intents), "data_hash": new.fingerprint()}
    if comparison.no_worse:
        model = train_fn(new, config)
        save_model(model, run_dir / "model")
        shutil.copy2(candidate, run_dir / "accepted.learned.yml")  # promote() moves the candidate
        # Data first, then the model: a crash between leaves data the bot retrains on, never a model
        # whose data is gone.
        data.promote(candidate, pending)
        save_model(model, model_dir)
        decision = f"activated: {comparison.reason}; learned {len(pending)} examples"
    else:
        decision = f"kept the active model: {comparison.reason}; {len(pending)} examples stay pending"
    run_id = record_model_run(
        engine,
        kind=NLU_MODEL_KIND,
        artefact_path=str(run_dir),
        metrics=metrics,
        params=params,
        activate=comparison.no_worse,
        decision=decision,
        now=now,
    )
    logger.info("NLU model run %d: %s", run_id, decision)
    return run_id, decision


def latest_runs(engine: Engine, *, limit: int = 5) -> list[ModelRunInfo]:
    """The latest NLU retrainings, newest first."""
    with read_snapshot(engine) as db:
        return list_model_runs(db, NLU_MODEL_KIND, limit=limit)


class NLUTrainer:
    """Runs ``retrain_nlu`` in a background thread, one at a time, and reports its status.

    Args:
        engine: the dashboard's database.
        data: the deployment's training data and additions.
        model_dir: the bot's NLU model directory (the activated model is saved there).
        now: the dashboard's clock.
        config: training hyper-parameters (tests use a small, fast configuration).
        train_fn: trains one model (tests inject a worse one).
    """

    def __init__(
        self,
        engine: Engine,
        data: DeploymentData,
        *,
        model_dir: Path,
        now: Callable[[], datetime],
        config: TrainingConfig | None = None,
        train_fn: TrainFn = default_train,
    ) -> None:
        self.engine = engine
        self.data = data
        self.model_dir = model_dir
        self._now = now
        self._config = config
        self._train_fn = train_fn
        self._status = TrainingStatus()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def status(self) -> TrainingStatus:
        """The current or last retraining's status."""
        with self._lock:
            return self._status

    def start(self, actor_id: int) -> bool:
        """Start a retraining for ``actor_id``; False when one is already running."""
        with self._lock:
            if self._status.state == "running":
                return False
            self._status = TrainingStatus("running", actor_id, self._now())
            self._thread = threading.Thread(target=self._run, name="nlu-retraining", daemon=True)
            self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> TrainingStatus:
        """Wait for the running retraining to end (tests, and a clean shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def _run(self) -> None:
        try:
            run_id, decision = retrain_nlu(
                self.engine,
                self.data,
                model_dir=self.model_dir,
                now=self._now(),
                config=self._config,
                train_fn=self._train_fn,
            )
            state = "done"
        except (NLUError, OSError) as exc:
            logger.warning("NLU retraining failed: %s", exc)
            run_id, decision, state = None, f"failed: {exc}", "failed"
        except Exception as exc:  # a bug must not leave the status "running" for ever
            logger.exception("NLU retraining crashed")
            run_id, decision, state = None, f"failed: {type(exc).__name__}: {exc}", "failed"
        with self._lock:
            self._status = replace(
                self._status, state=state, finished_at=self._now(), message=decision, run_id=run_id
            )
