"""Overview: active users over time, new users, retention cohorts, activity by hour, reach."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from dashboard.auth import config_of, manager
from dashboard.sessions import Session
from dashboard.templating import render
from store.dashboard_queries import ReachCounts, reach_counts
from store.db import read_snapshot
from store.overview_queries import active_by, cohort_rows, hour_events, period_messages, rolling_active_users

router = APIRouter()

RANGES = (7, 30, 90)
MIN_COHORT = 20  # cohorts smaller than this are shown greyed: one user moves the rate by 5 points
MAX_COHORTS = 10
TOP_INTENTS = 8
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEKDAYS = tuple(f"weekday.{n}" for n in range(7))  # Monday first; words in dashboard.i18n


@dataclass(frozen=True)
class Overview:
    """Every figure of the overview page, computed together and cached."""

    computed_at: datetime
    since: datetime
    until: datetime
    dau: int
    wau: int
    mau: int
    new_users: int
    messages: int
    unanswered: int
    top_intents: list[tuple[str, int]]
    daily: list[tuple[str, int]]
    weekly: list[tuple[str, int]]
    cohorts: list[dict[str, Any]]
    cohort_weeks: int
    heatmap: list[list[int]]
    heat_max: int  # colour cap: cells above it get the darkest colour and an outline
    reach: ReachCounts


def _day_label(day_number: int) -> str:
    return (EPOCH + timedelta(days=day_number)).date().isoformat()


def _cohorts(rows: list[tuple[int, int, int]], *, last_week: int) -> tuple[list[dict[str, Any]], int]:
    sizes: dict[int, int] = {c: n for c, o, n in rows if o == 0}
    shown = sorted(sizes)[-MAX_COHORTS:]
    weeks = max((last_week - c for c in shown), default=0) + 1
    cohorts = []
    for cohort in shown:
        size = sizes[cohort]
        counts = {o: n for c, o, n in rows if c == cohort}
        cells: list[tuple[int, float] | None] = []
        for offset in range(weeks):
            if cohort + offset > last_week:
                cells.append(None)  # not observed yet: blank, not zero
            else:
                cells.append((counts.get(offset, 0), counts.get(offset, 0) / size))
        cohorts.append(
            {"week": _day_label(cohort * 7), "size": size, "cells": cells, "small": size < MIN_COHORT}
        )
    return cohorts, weeks


def _buckets(
    rows: list[tuple[int, int]], period_days: int, since: datetime, until: datetime
) -> list[tuple[str, int]]:
    """Labelled buckets; one the period cuts (the first and last, usually) is starred as partial."""
    labelled = []
    for start_day, n in rows:
        start = EPOCH + timedelta(days=start_day)
        partial = start < since or start + timedelta(days=period_days) > until
        labelled.append((_day_label(start_day) + (" *" if partial else ""), n))
    return labelled


def _colour_cap(grid: list[list[int]]) -> int:
    """The heatmap's colour cap: the 95th percentile cell, so one outlier cannot wash out the rest."""
    cells = sorted(n for row in grid for n in row if n)
    if not cells:
        return 0
    return cells[min(len(cells) - 1, int(0.95 * len(cells)))]


def _heatmap(hours: list[tuple[datetime, int]], zone: ZoneInfo) -> list[list[int]]:
    """Events per local (weekday Mon..Sun, hour): each UTC hour placed by the zone's offset on that day."""
    grid = [[0] * 24 for _ in range(7)]
    for start, n in hours:
        local = start.astimezone(zone)
        grid[local.weekday()][local.hour] += n
    return grid


def compute_overview(request: Request, days: int) -> Overview:
    """The overview figures for the last `days` days, from the rollups (`store.overview_queries`)."""
    config = config_of(request)
    engine = config.engine
    until = request.app.state.now()
    since = until - timedelta(days=days)
    last_week = int((until - EPOCH).days // 7)
    # No catch-up here: a GET never writes; the scheduler's `rollups` job folds the log in.
    with read_snapshot(engine) as db:  # one snapshot: DAU <= WAU <= MAU even under writes
        counts = period_messages(db, since=since, until=until, top=TOP_INTENTS)
        hours = hour_events(db, since=since, until=until)
        dau, wau, mau = rolling_active_users(db, until=until, days=(1, 7, 30))
        daily = active_by(db, period_days=1, since=since, until=until)
        weekly = active_by(db, period_days=7, since=since, until=until)
        triangle = cohort_rows(db)
    cohorts, weeks = _cohorts(triangle, last_week=last_week)
    grid = _heatmap(hours, config.zone)
    return Overview(
        computed_at=until,
        since=since,
        until=until,
        dau=dau,
        wau=wau,
        mau=mau,
        new_users=counts.new_users,
        messages=counts.messages,
        unanswered=counts.unanswered,
        top_intents=list(counts.top_intents),
        daily=_buckets(daily, 1, since, until),
        weekly=_buckets(weekly, 7, since, until),
        cohorts=cohorts,
        cohort_weeks=weeks,
        heatmap=grid,
        heat_max=_colour_cap(grid),
        reach=reach_counts(engine),
    )


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request, days: int = Query(30, ge=1, le=366), session: Session = Depends(manager)
) -> Response:
    """The overview for a period (cached for a few minutes: these figures scan the event log)."""
    config = config_of(request)
    data: Overview = request.app.state.cache.get(("overview", days), lambda: compute_overview(request, days))
    return render(
        request,
        "overview.html",
        session=session,
        data=data,
        days=days,
        ranges=RANGES,
        weekdays=WEEKDAYS,
        min_cohort=MIN_COHORT,
        cache_minutes=int(config.cache_ttl_s // 60),
    )
