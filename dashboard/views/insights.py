"""Insights: the association rules explorer over the current analytics run."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from dashboard.views.rules import SORTS, RuleFilter, filter_rules
from store.analytics_results import get_run, run_rules, run_segments

router = APIRouter()

SHOWN = 100


@router.get("/insights", response_class=HTMLResponse)
def insights_page(
    request: Request,
    min_support: float = Query(0.0, ge=0, le=1),
    min_confidence: float = Query(0.0, ge=0, le=1),
    min_lift: float = Query(0.0, ge=0),
    item: str = "",
    segment: str = "",
    sort: str = "lift",
    show_restating: bool = False,
    session: Session = Depends(manager),
) -> Response:
    """Rules filtered by support, confidence, lift, item or segment, sorted, each in plain words."""
    engine = config_of(request).engine
    run = get_run(engine)
    rules = [] if run is None else run_rules(engine, run.id)
    wanted = RuleFilter(min_support, min_confidence, min_lift, item, segment, sort, show_restating)
    kept, hidden = filter_rules(rules, wanted)
    return render(
        request,
        "insights.html",
        session=session,
        run=run,
        total=len(rules),
        rules=kept[:SHOWN],
        matched=len(kept),
        hidden=hidden,
        shown=SHOWN,
        f=wanted,
        sorts=SORTS,
        segments=[] if run is None else run_segments(engine, run.id),
    )
