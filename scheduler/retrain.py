"""Nightly retraining: refresh analytics, train a follow-up model, activate it only if it is no worse.

The candidate and the active model are scored on the same time-based held-out split (the last
`holdout_days` of events, each with its full prefix), so the comparison is fair, and the
decision with both sets of metrics is stored in `model_runs` and logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from analytics import AnalyticsConfig, run_analytics
from analytics.metrics import RankingReport, TimeSplit, evaluate_next_event, time_split
from analytics.sequence import MarkovModel, NextEventModel, PopularityModel, SequenceModel, stored_token
from scheduler.reengagement import FOLLOWUP_MODEL_KIND, load_active_model
from store.events import iter_user_sequences
from store.model_runs import record_model_run

logger = logging.getLogger(__name__)

PRIMARY_METRIC = "ndcg@10"
MIN_TEST_PAIRS = 20
BASELINES_DIR = "baselines"  # <artefact>/baselines/<name>: the dashboard's stand-in for the LSTM


class TrainableModel(SequenceModel, Protocol):
    """A next-event model that can be fitted and saved (NextEventModel, MarkovModel, ...)."""

    def fit(self, sequences: Any, validation_sequences: Any = None) -> Any:
        """Train on token sequences."""
        ...

    def save(self, directory: str | Path) -> None:
        """Write the model and its metadata to `directory`."""
        ...


@dataclass(frozen=True)
class RetrainResult:
    """What one retraining did and why."""

    run_id: int | None
    activated: bool
    decision: str
    candidate: dict[str, float]
    active: dict[str, float] | None
    training: dict[str, Any] = field(default_factory=dict)


def _metrics(report: RankingReport) -> dict[str, float]:
    values = {f"hr@{k}": v for k, v in report.hit_rate.items()}
    values.update({f"ndcg@{k}": v for k, v in report.ndcg.items()})
    values["mrr"] = report.mrr
    values["n"] = float(report.n)
    return values


def _sequences(engine: Engine) -> tuple[list[list[str]], list[list[datetime]]]:
    tokens: list[list[str]] = []
    times: list[list[datetime]] = []
    for _user, events in iter_user_sequences(engine):
        tokens.append([stored_token(e.kind, e.intent, e.attributes) for e in events])
        times.append([e.ts for e in events])
    return tokens, times


def held_out_split(engine: Engine, *, now: datetime, holdout_days: int = 7) -> TimeSplit:
    """The event log as token sequences, split in time: the last `holdout_days` are held out."""
    if holdout_days < 1:
        raise ValueError(f"holdout_days must be >= 1, got {holdout_days}")
    tokens, times = _sequences(engine)
    return time_split(tokens, times, cutoff=now - timedelta(days=holdout_days))


def evaluate_model(model: SequenceModel, split: TimeSplit) -> dict[str, float]:
    """HR@1/5/10, NDCG@1/5/10 and MRR of `model` on the held-out events of `split`."""
    return _metrics(evaluate_next_event(model, split.test_prefixes, split.test_targets))


def retrain_followup_model(
    engine: Engine,
    *,
    model_dir: Path,
    now: datetime,
    holdout_days: int = 7,
    model_factory: Callable[[], TrainableModel] | None = None,
    refresh_analytics: bool = True,
    exclude_users: tuple[int, ...] = (),
) -> RetrainResult:
    """Run analytics, then train and evaluate a follow-up model; activate it if it is no worse.

    Args:
        model_dir: where model artefacts are saved (one sub-directory per run).
        holdout_days: the most recent days of events held out for evaluation.
        model_factory: builds the untrained candidate (default: the LSTM `NextEventModel`).
        refresh_analytics: run the analytics pipeline first, so segments are current.
        exclude_users: staff accounts (the admin ids) the analytics run leaves out.
    """
    if refresh_analytics:
        summary = run_analytics(engine, config=AnalyticsConfig(exclude_users=exclude_users), as_of=now)
        logger.info("analytics run %d: %s", summary.run_id, summary.message or summary.status)
    split = held_out_split(engine, now=now, holdout_days=holdout_days)
    if len(split.test_prefixes) < MIN_TEST_PAIRS or not split.train:
        decision = (
            f"not trained: {len(split.test_prefixes)} held-out events in the last {holdout_days} days "
            f"(need {MIN_TEST_PAIRS}) and {len(split.train)} training sequences"
        )
        logger.warning("follow-up retraining: %s", decision)
        return RetrainResult(None, False, decision, {}, None)
    candidate = (model_factory or (lambda: NextEventModel(random_state=0)))()
    candidate.fit(split.train)
    # The candidate's own training figures (epochs, seconds, stopped_by_budget for the LSTM).
    training = {
        key: None if isinstance(value, float) and not math.isfinite(value) else value  # JSON-safe
        for key, value in getattr(candidate, "metrics_", {}).items()
    }
    if training.get("stopped_by_budget"):
        logger.warning("follow-up candidate stopped by its training time budget; best weights kept")
    scores = evaluate_model(candidate, split)
    baselines = {
        name: model.fit(split.train)
        for name, model in (("markov", MarkovModel()), ("popularity", PopularityModel()))
    }
    baseline_scores = {name: evaluate_model(model, split) for name, model in baselines.items()}
    active_model = load_active_model(engine)
    active = None if active_model is None else evaluate_model(active_model, split)
    if active is None:
        activate, decision = (
            True,
            f"activated: no active model; {PRIMARY_METRIC} {scores[PRIMARY_METRIC]:.4f}",
        )
    elif scores[PRIMARY_METRIC] >= active[PRIMARY_METRIC]:
        activate = True
        decision = (
            f"activated: held-out {PRIMARY_METRIC} {scores[PRIMARY_METRIC]:.4f} >= "
            f"active {active[PRIMARY_METRIC]:.4f}"
        )
    else:
        activate = False
        decision = (
            f"kept the active model: held-out {PRIMARY_METRIC} {scores[PRIMARY_METRIC]:.4f} < "
            f"active {active[PRIMARY_METRIC]:.4f}"
        )
    directory = model_dir / f"{now:%Y%m%dT%H%M%S}"
    candidate.save(directory)
    for name, model in baselines.items():
        # Cheap to keep, and they load without TensorFlow: what the dashboard shows while an LSTM loads.
        model.save(directory / BASELINES_DIR / name)
    run_id = record_model_run(
        engine,
        kind=FOLLOWUP_MODEL_KIND,
        artefact_path=str(directory),
        metrics={
            "candidate": scores,
            "active": active,
            # The same held-out events, ranked by the baselines the LSTM has to beat.
            "baselines": baseline_scores,
            "holdout_days": holdout_days,
            "training": training,
        },
        params={"model": type(candidate).__name__},
        activate=activate,
        decision=decision,
        now=now,
    )
    logger.info("follow-up model run %d: %s", run_id, decision)
    return RetrainResult(run_id, activate, decision, scores, active, training)
