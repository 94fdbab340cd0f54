"""The scheduler's jobs: module-level functions that take ids, so APScheduler can persist them.

APScheduler pickles a job as a textual reference (`scheduler.jobs:scheduled_job`) plus its
arguments, so the stored job is just a name; the running `SchedulerService` registers itself
here and does the work. `rapport jobs run NAME` calls `run_job` directly, without APScheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from scheduler.clock import Clock
from scheduler.errors import UnknownJobError
from scheduler.experiments import decide_due_experiments
from scheduler.reengagement import REENGAGEMENT, ReengagementConfig, plan_reengagement
from scheduler.retrain import retrain_followup_model
from store import Settings
from store.campaign_reports import measure_responses
from store.rollups import refresh_rollups

logger = logging.getLogger(__name__)

# Missed runs within this many seconds still run (once, thanks to coalescing) after downtime.
MISFIRE_GRACE_S = 20 * 3600


@dataclass(frozen=True)
class JobContext:
    """What a job needs: the database, the settings and the clock.

    `intents` are the labels the active NLU model can give; the composition root (which may load
    the NLU, unlike the scheduler) passes them so the re-engagement job checks its catalogue.
    """

    engine: Engine
    settings: Settings
    clock: Clock
    intents: frozenset[str] | None = None


@dataclass(frozen=True)
class JobSpec:
    """A job: its name (also its APScheduler id), what it does, and when it runs."""

    name: str
    description: str
    schedule: str  # "daily:<settings field>", "hourly" or "minutely"
    run: Callable[[JobContext], Awaitable[str]]


async def reengagement_job(ctx: JobContext) -> str:
    """Plan today's re-engagement pushes (the delivery engine sends them)."""
    config = ReengagementConfig.from_settings(ctx.settings, intents=ctx.intents)
    plan = await asyncio.to_thread(plan_reengagement, ctx.engine, config, now=ctx.clock.now())
    return plan.summary()


async def responses_job(ctx: JobContext) -> str:
    """Measure who returned within 48 h of a push (and in the holdout); log `push_response`."""
    measured = await asyncio.to_thread(measure_responses, ctx.engine, now=ctx.clock.now())
    return f"{measured} deliveries measured"


async def experiments_job(ctx: JobContext) -> str:
    """Pick the winner of each phased experiment whose test phase is over and plan it for the rest."""
    decided = await asyncio.to_thread(
        decide_due_experiments, ctx.engine, now=ctx.clock.now(), holdout_share=ctx.settings.holdout_share
    )
    return "; ".join(decided) if decided else "no experiment was due"


async def retraining_job(ctx: JobContext) -> str:
    """Analytics run, then a new follow-up model, activated only if no worse than the active one."""
    result = await asyncio.to_thread(
        retrain_followup_model,
        ctx.engine,
        model_dir=ctx.settings.resolved_followup_model_dir,
        now=ctx.clock.now(),
        exclude_users=tuple(ctx.settings.admin_ids),
    )
    return result.decision


async def rollups_job(ctx: JobContext) -> str:
    """Fold the events written since the last run into the dashboard's rollups."""
    report = await asyncio.to_thread(refresh_rollups, ctx.engine, now=ctx.clock.now())
    return report.summary()


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            REENGAGEMENT,
            "Push inactive users the follow-up the model picks (holdout, cap, quiet hours apply).",
            "daily:reengage_time",
            reengagement_job,
        ),
        JobSpec(
            "responses",
            "Record which pushed and holdout users returned within 48 h.",
            "hourly",
            responses_job,
        ),
        JobSpec(
            "experiments",
            "Pick the winning variant of phased broadcast experiments that are due; send it to the rest.",
            "minutely",
            experiments_job,
        ),
        JobSpec(
            "retrain",
            "Run analytics, retrain the follow-up model, activate it if no worse.",
            "daily:retrain_time",
            retraining_job,
        ),
        JobSpec(
            "rollups",
            "Fold new events into the dashboard's rollups (activity per user and day, per hour).",
            "minutely",
            rollups_job,
        ),
    )
}


def get_job(name: str) -> JobSpec:
    """The job called `name`.

    Raises:
        UnknownJobError: naming the job and listing the known ones.
    """
    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJobError(f"unknown job {name!r}; known jobs: {', '.join(sorted(JOBS))}") from None


async def run_job(name: str, ctx: JobContext) -> str:
    """Run one job now; its one-line result."""
    spec = get_job(name)
    logger.info("job %s started", name)
    result = await spec.run(ctx)
    logger.info("job %s finished: %s", name, result)
    return result


class JobRunner(Protocol):
    """What the scheduled entry point needs of the running service."""

    async def run_job(self, name: str) -> str:
        """Run the job called `name` and wake the delivery engine."""
        ...


_runner: JobRunner | None = None


def register_runner(runner: JobRunner | None) -> None:
    """Make `runner` the target of scheduled jobs in this process (None: unregister)."""
    global _runner
    _runner = runner


async def scheduled_job(name: str) -> None:
    """APScheduler's entry point: run job `name` on this process's active service."""
    runner = _runner
    if runner is None:
        logger.warning("job %s fired but no scheduler service is active in this process", name)
        return
    try:
        await runner.run_job(name)
    except Exception:  # one failing run must not stop the schedule; the next run tries again
        logger.exception("job %s failed", name)
