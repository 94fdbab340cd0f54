"""The audit log page: every manager action, who and when, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from store.audit import count_actions, list_actions

router = APIRouter()

PAGE = 100


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, page: int = Query(0, ge=0), session: Session = Depends(manager)) -> Response:
    """One page of the audit log."""
    engine = config_of(request).engine
    entries = list_actions(engine, limit=PAGE, offset=page * PAGE)
    total = count_actions(engine)
    return render(
        request,
        "audit.html",
        session=session,
        entries=entries,
        page=page,
        has_next=(page + 1) * PAGE < total,
        total=total,
    )
