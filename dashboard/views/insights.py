"""Insights: the association rules explorer over the current analytics run."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from dashboard.views.rules import SORTS, RuleFilter, filter_rules
from store.analytics_results import get_run, run_rules, run_segments

router = APIRouter()

PAGE = 50


def _query(wanted: RuleFilter) -> str:
    """The filter as a query string, for the paging and "show hidden" links."""
    values = {
        "min_support": wanted.min_support,
        "min_confidence": wanted.min_confidence,
        "min_lift": wanted.min_lift,
        "item": wanted.item,
        "segment": wanted.segment,
        "sort": wanted.sort,
    }
    if wanted.show_restating:
        values["show_restating"] = "true"
    if wanted.show_redundant:
        values["show_redundant"] = "true"
    return urlencode(values)


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
    show_redundant: bool = False,
    page: int = Query(0, ge=0),
    session: Session = Depends(manager),
) -> Response:
    """Rules filtered by support, confidence, lift, item or segment, sorted, each in plain words."""
    engine = config_of(request).engine
    run = get_run(engine)
    rules = [] if run is None else run_rules(engine, run.id)
    wanted = RuleFilter(
        min_support, min_confidence, min_lift, item, segment, sort, show_restating, show_redundant
    )
    kept, hidden, hidden_redundant = filter_rules(rules, wanted)
    return render(
        request,
        "insights.html",
        session=session,
        run=run,
        total=len(rules),
        rules=kept[page * PAGE : (page + 1) * PAGE],
        matched=len(kept),
        hidden=hidden,
        hidden_redundant=hidden_redundant,
        page=page,
        page_size=PAGE,
        has_next=(page + 1) * PAGE < len(kept),
        query=_query(wanted),
        f=wanted,
        sorts=SORTS,
        segments=[] if run is None else run_segments(engine, run.id),
    )
