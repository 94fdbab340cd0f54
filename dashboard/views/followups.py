"""Follow-ups: the catalogue with each message's measured response, and the follow-up model's history.

The model is shown beside its Markov and popularity baselines, ranked on the same held-out events
(stored with each retraining's run): each hit rate with its 95% Wilson interval and the number
of held-out events, so a lead that is within noise reads as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from analytics.experiments import wilson_interval
from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from store.dashboard_queries import followup_catalogue, followup_sends
from store.db import read_snapshot
from store.followups import response_stats
from store.model_runs import ModelRunInfo, list_model_runs

router = APIRouter()

MODEL_KIND = "followup"  # scheduler.reengagement.FOLLOWUP_MODEL_KIND
MIN_SENDS = 20  # below this a response rate is shown greyed: one user moves it by 5 points
METRICS = ("hr@1", "hr@5", "hr@10", "ndcg@10", "mrr")
HIT_KS = (1, 5, 10)
BASELINES = ("markov", "popularity")
MODEL_NAMES = {"NextEventModel": "lstm", "MarkovModel": "markov", "PopularityModel": "popularity"}


@dataclass(frozen=True)
class Hit:
    """A hit rate over `n` held-out events, with its 95% interval."""

    rate: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class ModelScores:
    """One model's held-out figures, as the comparison table shows them."""

    name: str  # "lstm", "markov", "popularity"
    n: int
    hits: dict[int, Hit]
    ndcg: float | None
    mrr: float | None


def _scores(name: str, metrics: dict[str, Any]) -> ModelScores | None:
    """The figures of one model; None without a sample size (no interval can be drawn)."""
    n = int(metrics.get("n") or 0)
    if n <= 0:
        return None
    hits = {}
    for k in HIT_KS:
        value = metrics.get(f"hr@{k}")
        if value is not None:
            low, high = wilson_interval(round(float(value) * n), n)
            hits[k] = Hit(float(value), low, high, n)
    ndcg, mrr = metrics.get("ndcg@10"), metrics.get("mrr")
    return ModelScores(
        name, n, hits, None if ndcg is None else float(ndcg), None if mrr is None else float(mrr)
    )


def comparison(runs: list[ModelRunInfo]) -> tuple[ModelRunInfo, list[ModelScores]] | None:
    """The newest run with stored baselines, preferring the active one: the model beside them."""
    ordered = sorted(runs, key=lambda r: (not r.active, -r.id))
    for run in ordered:
        baselines = run.metrics.get("baselines")
        if not isinstance(baselines, dict):
            continue
        model = _scores(
            MODEL_NAMES.get(str(run.params.get("model")), "lstm"),
            held_out(run.metrics) | {"n": _n(run.metrics)},
        )
        rows = [model] + [_scores(b, baselines[b]) for b in BASELINES if isinstance(baselines.get(b), dict)]
        found = [row for row in rows if row is not None]
        if len(found) > 1:
            return run, found
    return None


def _n(metrics: dict[str, Any]) -> float:
    scores = metrics.get("candidate", metrics)
    return float(scores.get("n") or 0) if isinstance(scores, dict) else 0.0


def held_out(metrics: dict[str, Any]) -> dict[str, float]:
    """The candidate's held-out scores, whether stored flat (demo) or under `candidate` (retraining)."""
    scores = metrics.get("candidate", metrics)
    return {k: float(scores[k]) for k in METRICS if isinstance(scores, dict) and k in scores}


@router.get("/followups", response_class=HTMLResponse)
def followups_page(request: Request, session: Session = Depends(manager)) -> Response:
    """Each catalogue message's sends and response rate; the model runs and their activation decisions."""
    engine = config_of(request).engine
    with read_snapshot(engine) as db:
        stats = response_stats(db)
        model_runs = list_model_runs(db, MODEL_KIND, limit=20)
    sent = followup_sends(engine)
    rows = []
    for message in followup_catalogue(engine):
        counts = stats.get(message.id)
        sends, responded = (counts.sent, counts.responded) if counts is not None else (0, 0)
        rows.append(
            {
                "m": message,
                "sent": sent.get(message.id, 0),
                "sends": sends,
                "responded": responded,
                "small": sends < MIN_SENDS,
            }
        )
    runs = [
        {
            "run": run,
            "scores": held_out(run.metrics),
            "active_scores": held_out(run.metrics.get("active") or {}),
        }
        for run in model_runs
    ]
    return render(
        request,
        "followups.html",
        session=session,
        rows=rows,
        runs=runs,
        metrics=METRICS,
        min_sends=MIN_SENDS,
        compared=comparison(model_runs),
        hit_ks=HIT_KS,
    )
