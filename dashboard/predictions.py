"""A user's most likely next events from the active follow-up model, without TensorFlow on the request path.

The active model may be the LSTM, whose loading imports TensorFlow (seconds, and a lot of
memory): that happens once, in a background thread, the first time a user page asks. Until it
is ready (or if it cannot be loaded), the page is answered by the Markov baseline and says so:
the baseline retraining saved beside the model when there is one (read at once), else a Markov
chain fitted in the same background thread from the event log. Markov and popularity models load from JSON and
answer at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from analytics.errors import AnalyticsError
from analytics.sequence import MarkovModel, SequenceModel, event_token, load_model
from analytics.sequence.base import read_metadata
from store.db import read_snapshot
from store.events import iter_user_sequences
from store.model_runs import ModelRunInfo, active_model_run

logger = logging.getLogger(__name__)

MODEL_KIND = "followup"  # scheduler.reengagement.FOLLOWUP_MODEL_KIND
BASELINE_DIR = "baselines"  # <artefact>/baselines/markov, written by scheduler.retrain
TOP = 5
LSTM = "lstm"


@dataclass(frozen=True)
class NextEvent:
    """One predicted next event and its probability."""

    token: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    """What the page shows: which model answered, its top next events, and why not the active one."""

    model: str  # "lstm", "markov", "popularity"
    run_id: int
    events: tuple[NextEvent, ...]
    history_length: int
    fallback_reason: str | None = None  # set when the Markov baseline answers for the LSTM


@dataclass(frozen=True)
class PredictionStatus:
    """No prediction: no active model, or the models are still loading."""

    reason: str  # "no_model", "loading", "failed"
    detail: str | None = None


def _fit_markov(engine: Engine) -> MarkovModel:
    sequences = [[event_token(e.kind, e.intent) for e in events] for _, events in iter_user_sequences(engine)]
    sequences = [s for s in sequences if len(s) >= 2]
    if not sequences:
        raise AnalyticsError("no user has two events to learn transitions from")
    return MarkovModel().fit(sequences)


class _Slot:
    """The models of one model run: the active one and its Markov stand-in, filled in the background."""

    def __init__(self) -> None:
        self.model: SequenceModel | None = None
        self.fallback: SequenceModel | None = None
        self.error: str | None = None
        self.fallback_error: str | None = None
        self.done = threading.Event()


class NextEventPredictor:
    """Answers "what will this user do next" from the active follow-up model; one per app.

    Args:
        load: loads a model directory (`analytics.sequence.load_model`; injectable for tests).
        fit_fallback: fits the Markov stand-in from the event log when no baseline was saved.
    """

    def __init__(
        self,
        *,
        load: Callable[[str | Path], Any] = load_model,
        fit_fallback: Callable[[Engine], SequenceModel] = _fit_markov,
    ) -> None:
        self._load = load
        self._fit_fallback = fit_fallback
        self._slots: dict[int, _Slot] = {}
        self._lock = threading.Lock()

    def _slot(self, engine: Engine, run: ModelRunInfo) -> _Slot:
        with self._lock:
            slot = self._slots.get(run.id)
            if slot is not None:
                return slot
            slot = self._slots[run.id] = _Slot()
            for old in [key for key in self._slots if key != run.id]:
                del self._slots[old]  # a newer model was activated: drop the old one
        try:
            model_type = str(read_metadata(run.artefact_path)["model_type"])
        except (AnalyticsError, OSError, ValueError, KeyError) as exc:
            slot.error = f"{run.artefact_path}: {exc}"
            slot.done.set()
            return slot
        if model_type != LSTM:
            self._load_into(slot, run)  # JSON: fast enough for the request
            return slot
        baseline = Path(run.artefact_path) / BASELINE_DIR / "markov"
        if baseline.is_dir():  # saved by retraining: JSON, so the very first page has an answer
            try:
                slot.fallback = self._load(baseline)
            except (AnalyticsError, OSError, ValueError) as exc:
                logger.warning("the Markov baseline of follow-up model %d cannot be loaded: %s", run.id, exc)
        thread = threading.Thread(
            target=self._load_lstm, args=(slot, engine, run), name=f"rapport-model-{run.id}", daemon=True
        )
        thread.start()
        return slot

    def _load_into(self, slot: _Slot, run: ModelRunInfo) -> None:
        try:
            slot.model = self._load(run.artefact_path)
        except (AnalyticsError, OSError, ValueError, ImportError) as exc:
            logger.error("follow-up model %d at %s cannot be loaded: %s", run.id, run.artefact_path, exc)
            slot.error = str(exc)
        finally:
            slot.done.set()

    def _load_lstm(self, slot: _Slot, engine: Engine, run: ModelRunInfo) -> None:
        """Background: a Markov stand-in fitted from the event log if none was saved, then the LSTM."""
        if slot.fallback is None:
            try:
                slot.fallback = self._fit_fallback(engine)
            except (AnalyticsError, OSError, ValueError) as exc:
                logger.warning("no Markov stand-in for follow-up model %d: %s", run.id, exc)
                slot.fallback_error = str(exc)
        self._load_into(slot, run)

    def predict(
        self, engine: Engine, user_id: int, history: Sequence[str], *, top: int = TOP
    ) -> Prediction | PredictionStatus:
        """The top next events after `history` (the user's tokens, oldest first)."""
        del user_id  # the history is what the model reads; kept for the logs' sake by callers
        with read_snapshot(engine) as session:
            run = active_model_run(session, MODEL_KIND)
        if run is None:
            return PredictionStatus("no_model")
        slot = self._slot(engine, run)
        if slot.model is not None:
            return self._rank(slot.model, run, history, top, None)
        if slot.fallback is not None:
            reason = "failed" if slot.done.is_set() else "loading"
            return self._rank(slot.fallback, run, history, top, reason)
        if slot.done.is_set():
            return PredictionStatus("failed", slot.error or slot.fallback_error)
        return PredictionStatus("loading")

    @staticmethod
    def _rank(
        model: SequenceModel, run: ModelRunInfo, history: Sequence[str], top: int, reason: str | None
    ) -> Prediction:
        proba = model.predict_proba([list(history)])[0]
        order = proba.argsort()[::-1][:top]
        events = tuple(NextEvent(str(model.classes_[i]), float(proba[i])) for i in order)
        name = str(getattr(model, "model_type", type(model).__name__.lower()))
        return Prediction(
            model=name, run_id=run.id, events=events, history_length=len(history), fallback_reason=reason
        )
