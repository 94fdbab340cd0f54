"""Campaigns: every broadcast and re-engagement run with live progress; pause, resume, cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from dashboard.auth import config_of, manager, manager_with_csrf
from dashboard.sessions import Session
from dashboard.templating import render
from scheduler import (
    CampaignNotFoundError,
    CampaignReport,
    SchedulerError,
    campaign_report,
    cancel_campaign,
    pause_campaign,
    resume_campaign,
)
from scheduler.experiment_reports import campaign_experiment
from store.audit import AuditAction, record_action
from store.campaigns import list_campaigns
from store.dashboard_queries import delivery_status_counts, last_goal_reference

router = APIRouter()

LIST_LIMIT = 100
Control = Callable[..., None]
ACTIONS: dict[str, tuple[Control, AuditAction]] = {
    "pause": (pause_campaign, AuditAction.CAMPAIGN_PAUSED),
    "resume": (resume_campaign, AuditAction.CAMPAIGN_RESUMED),
    "cancel": (cancel_campaign, AuditAction.CAMPAIGN_CANCELLED),
}
FINAL = ("sent", "failed", "blocked", "skipped", "ambiguous")


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, session: Session = Depends(manager)) -> Response:
    """The latest campaigns, newest first, each with its counts by status."""
    engine = config_of(request).engine
    found = list_campaigns(engine, limit=LIST_LIMIT)
    counts = delivery_status_counts(engine, [c.id for c in found])
    rows = []
    for campaign in found:
        by_status = counts.get(campaign.id, {})
        targeted = sum(by_status.values())
        done = sum(by_status.get(s, 0) for s in FINAL)
        rows.append({"c": campaign, "by": by_status, "targeted": targeted, "done": done})
    return render(request, "campaigns.html", session=session, rows=rows, limit=LIST_LIMIT)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: int, session: Session = Depends(manager)) -> Response:
    """One campaign: progress, expected end, reasons, uplift against the holdout, controls."""
    config = config_of(request)
    try:
        report = campaign_report(
            config.engine, campaign_id, now=request.app.state.now(), rate_per_s=config.send_rate_per_s
        )
    except CampaignNotFoundError as exc:
        raise HTTPException(404) from exc
    refused = request.query_params.get("refused")
    return render(
        request,
        "campaign.html",
        session=session,
        report=report,
        goal_closes=goal_window_closes(config.engine, report, now=request.app.state.now()),
        experiment=campaign_experiment(config.engine, campaign_id),
        refused=refused if refused in ACTIONS else None,
    )


def goal_window_closes(engine: Engine, report: CampaignReport, *, now: datetime) -> datetime | None:
    """When the goal's figures are final (the last send's window end); None once that has passed.

    Until then a user sent late has had less time to convert than the window promises, so the
    page says when the figures will be in instead of showing rates that can still only rise.
    Rows still to send go out at their due time at the earliest (now, if that has passed).
    """
    if report.goal is None:
        return None
    latest = last_goal_reference(engine, report.campaign.id)
    if latest is None:
        return None
    if report.counts.remaining:
        latest = max(latest, now)
    closes = latest + report.goal.counts.window
    return closes if closes > now else None


def _control(engine: Engine, action: str, campaign_id: int, *, now: datetime) -> str | None:
    control, _ = ACTIONS[action]
    try:
        control(engine, campaign_id, now=now)
    except CampaignNotFoundError as exc:
        raise HTTPException(404) from exc
    except SchedulerError as exc:
        return str(exc)
    return None


@router.post("/campaigns/{campaign_id}/{action}")
def control_campaign(
    request: Request, campaign_id: int, action: str, session: Session = Depends(manager_with_csrf)
) -> Response:
    """Pause, resume or cancel; the scheduler sees the new status at its next step."""
    if action not in ACTIONS:
        raise HTTPException(404)
    config = config_of(request)
    now = request.app.state.now()
    error = _control(config.engine, action, campaign_id, now=now)
    if error is not None:
        # The page states the refusal itself: no free text travels in the URL.
        return RedirectResponse(f"/campaigns/{campaign_id}?refused={action}", status_code=303)
    record_action(
        config.engine,
        actor_id=session.user_id,
        action=ACTIONS[action][1],
        target=f"campaign #{campaign_id}",
        now=now,
    )
    request.app.state.cache.clear()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
