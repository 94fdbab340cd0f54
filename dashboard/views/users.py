"""Users: look one up, see their timeline, segment history and pushes; forget them after a confirmation."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from analytics import user_segment
from analytics.sequence import event_token
from dashboard.auth import config_of, manager, manager_with_csrf
from dashboard.predictions import NextEventPredictor
from dashboard.sessions import Session
from dashboard.templating import render
from store import forget_user, get_user
from store.audit import AuditAction, record_action
from store.dashboard_queries import find_users, user_deliveries, user_segment_history, user_timeline

router = APIRouter()

TIMELINE = 100


@router.get("/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    q: str = "",
    forgotten: int | None = None,
    rows: int = Query(0, ge=0),
    session: Session = Depends(manager),
) -> Response:
    """Look a user up by id or username; one exact id match opens their page."""
    engine = config_of(request).engine
    found = find_users(engine, q) if q.strip() else []
    if len(found) == 1 and q.strip().lstrip("@") in (str(found[0].user_id), found[0].username):
        return RedirectResponse(f"/users/{found[0].user_id}", status_code=303)
    return render(request, "users.html", session=session, q=q, found=found, forgotten=forgotten, rows=rows)


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(request: Request, user_id: int, session: Session = Depends(manager)) -> Response:
    """One user: state, segment and its history, predicted next events, timeline, pushes and their reasons."""
    engine = config_of(request).engine
    user = get_user(engine, user_id)
    timeline = user_timeline(engine, user_id, limit=TIMELINE)
    if user is None and not timeline:
        raise HTTPException(404)
    history = [event_token(e.kind, e.intent) for e in reversed(timeline)]
    predictor: NextEventPredictor = request.app.state.predictor
    return render(
        request,
        "user.html",
        session=session,
        user_id=user_id,
        user=user,
        segment=user_segment(engine, user_id),
        history=user_segment_history(engine, user_id),
        timeline=timeline,
        deliveries=user_deliveries(engine, user_id),
        prediction=predictor.predict(engine, user_id, history),
        limit=TIMELINE,
    )


@router.get("/users/{user_id}/forget", response_class=HTMLResponse)
def forget_page(request: Request, user_id: int, session: Session = Depends(manager)) -> Response:
    """The confirmation step: the manager types the id to delete everything about the user."""
    return render(request, "forget.html", session=session, user_id=user_id, error=None)


@router.post("/users/{user_id}/forget")
def forget(
    request: Request, user_id: int, confirm: str = Form(""), session: Session = Depends(manager_with_csrf)
) -> Response:
    """Delete everything stored about the user, in one transaction, and log who did it."""
    config = config_of(request)
    if confirm.strip() != str(user_id):
        return render(request, "forget.html", session=session, user_id=user_id, error=True, status_code=400)
    report = forget_user(config.engine, user_id)
    record_action(
        config.engine,
        actor_id=session.user_id,
        action=AuditAction.USER_FORGOTTEN,
        target=f"user {user_id}",
        now=request.app.state.now(),
        details=dict(report.deleted),
    )
    request.app.state.cache.clear()
    request.app.state.run_cache.clear()
    return RedirectResponse(f"/users?forgotten={user_id}&rows={report.total}", status_code=303)
