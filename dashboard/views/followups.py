"""Follow-ups: the catalogue with each message's measured response, and the follow-up model's history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from store.dashboard_queries import followup_catalogue, followup_sends
from store.db import read_snapshot
from store.followups import response_stats
from store.model_runs import list_model_runs

router = APIRouter()

MODEL_KIND = "followup"  # scheduler.reengagement.FOLLOWUP_MODEL_KIND
MIN_SENDS = 20  # below this a response rate is shown greyed: one user moves it by 5 points
METRICS = ("hr@1", "hr@5", "hr@10", "ndcg@10", "mrr")


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
        request, "followups.html", session=session, rows=rows, runs=runs, metrics=METRICS, min_sends=MIN_SENDS
    )
