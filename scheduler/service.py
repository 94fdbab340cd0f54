"""The scheduler in the bot's event loop: the lease, APScheduler's wake-ups and the delivery loop.

Only the holder of the database lease `scheduler` runs jobs and sends; a second process on the
same database waits as a standby and takes over when the lease expires. Every send is fenced
by the lease (`begin_send` checks it in the same transaction), so a process that lost it stops
before sending anything more. On taking the lease, rows a crashed holder left `sending` are
marked ambiguous and reported, never resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from scheduler import control
from scheduler.clock import Clock, SystemClock
from scheduler.engine import DeliveryEngine, EngineConfig
from scheduler.errors import LeaseLostError
from scheduler.experiments import ExperimentDraft, create_experiment_broadcast
from scheduler.jobs import JOBS, MISFIRE_GRACE_S, JobContext, register_runner, run_job, scheduled_job
from scheduler.planning import ALL, create_broadcast
from scheduler.policy import parse_hhmm
from scheduler.reports import CampaignReport, campaign_report, recent_reports
from scheduler.sender import Sender
from store import Settings
from store.deliveries import AmbiguousDelivery, recover_sending
from store.leases import acquire_lease, release_lease

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
JOB_TABLE = "apscheduler_jobs"
STOP_GRACE_S = 10.0


def default_owner() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def job_trigger(schedule: str, settings: Settings) -> Any:
    """The APScheduler trigger for a job's schedule (`daily:<settings field>`, `hourly`, `minutely`)."""
    tz = ZoneInfo(settings.scheduler_timezone)
    if schedule == "hourly":
        return IntervalTrigger(hours=1, timezone=tz)
    if schedule == "minutely":
        return IntervalTrigger(minutes=1, timezone=tz)
    kind, _, field_name = schedule.partition(":")
    if kind != "daily" or not hasattr(settings, field_name):
        raise ValueError(f"unknown job schedule {schedule!r}")
    at = parse_hhmm(str(getattr(settings, field_name)))
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=tz)


def build_apscheduler(engine: Engine, settings: Settings) -> AsyncIOScheduler:
    """An AsyncIOScheduler whose job store is a table in our database."""
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_S},
        timezone=ZoneInfo(settings.scheduler_timezone),
    )


def install_jobs(scheduler: AsyncIOScheduler, settings: Settings) -> list[str]:
    """Add each job unless the store already has it with the same trigger; the ids (re)written.

    A stored job keeps its `next_run_time`, so a run missed while no process was up fires once
    when the scheduler resumes (coalesced, within the misfire grace time).
    """
    written = []
    for spec in JOBS.values():
        trigger = job_trigger(spec.schedule, settings)
        existing = scheduler.get_job(spec.name)
        if existing is not None and str(existing.trigger) == str(trigger):
            continue
        scheduler.add_job(
            scheduled_job,
            trigger=trigger,
            args=[spec.name],
            id=spec.name,
            name=spec.description,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
            max_instances=1,
        )
        written.append(spec.name)
    return written


class SchedulerService:
    """Runs the jobs and the delivery engine while this process holds the scheduler lease.

    `rapport run` creates one with the bot's `TelegramSender`, awaits `start()` in post_init
    and `stop()` in post_stop, i.e. before the bot's HTTP client closes, so the sends in
    flight finish and are recorded before anything shuts down; `/broadcast` calls
    `schedule(...)`.

    Args:
        engine: The database.
        settings: Rates, quiet hours, schedules.
        sender: Sends one message (`bot.delivery.TelegramSender`).
        clock: Time source.
        owner: This process's name in the lease and in `claimed_by`.
        lease_ttl_s: How long the lease lasts without renewal (renewed every third of it).
        poll_s: Longest sleep of the delivery loop when nothing is due.
        use_apscheduler: Wake the jobs on their schedules (off: deliveries only).
        config: Engine configuration (default: from the settings).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sender: Sender,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        lease_ttl_s: float = 30.0,
        poll_s: float = 1.0,
        use_apscheduler: bool = True,
        config: EngineConfig | None = None,
        intents: frozenset[str] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock or SystemClock()
        self.owner = owner or default_owner()
        self.lease_ttl = timedelta(seconds=lease_ttl_s)
        self.poll_s = poll_s
        self.use_apscheduler = use_apscheduler
        self.intents = intents  # the active NLU model's labels: jobs check the catalogue against them
        self.delivery = DeliveryEngine(
            engine,
            sender,
            owner=self.owner,
            clock=self.clock,
            config=config or EngineConfig.from_settings(settings),
            lease=(LEASE_NAME, self.owner),
        )
        self.ambiguous: list[AmbiguousDelivery] = []
        self.on_ambiguous: Callable[[list[AmbiguousDelivery]], None] | None = None
        self._apscheduler: AsyncIOScheduler | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._activated = asyncio.Event()
        self._active = False
        self._stopping = False

    @property
    def active(self) -> bool:
        """Whether this process holds the lease and sends."""
        return self._active

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start supervising the lease in the running loop; returns at once."""
        self._stopping = False
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name="scheduler-supervisor")

    async def stop(self) -> None:
        """Stop sending and scheduling, and give the lease up for a standby process.

        Order matters for a clean hand-over: first the delivery loop stops and the sends in
        flight finish and are recorded (or, past `STOP_GRACE_S`, are marked ambiguous) while
        the supervisor still renews the lease; only then does the lease go, so a standby that
        takes over never sees a row this process may still be sending.
        """
        self._stopping = True
        await self._deactivate("stopping")
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._deactivate("stopping")  # in case the supervisor raced us to activate
        await asyncio.to_thread(release_lease, self.engine, LEASE_NAME, self.owner)

    async def wait_active(self, timeout_s: float) -> bool:
        """Wait (real time) until this process holds the lease; whether it does."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._activated.wait()
        return self._active

    async def _supervise(self) -> None:
        while True:
            try:
                held = await asyncio.to_thread(
                    acquire_lease,
                    self.engine,
                    LEASE_NAME,
                    self.owner,
                    ttl=self.lease_ttl,
                    now=self.clock.now(),
                )
            except Exception:  # the database is down: keep what we have until the lease runs out
                logger.exception("cannot renew the scheduler lease")
                held = self._active
            if held and not self._active and not self._stopping:
                await self._activate()
            elif not held and self._active:
                await self._deactivate("another process holds the lease")
            if self._sender_task is not None and self._sender_task.done():
                await self._deactivate("the delivery loop stopped")
            await asyncio.sleep(self.lease_ttl.total_seconds() / 3)

    async def _activate(self) -> None:
        found = await asyncio.to_thread(recover_sending, self.engine)
        if found:
            self.ambiguous.extend(found)
            if self.on_ambiguous is not None:
                self.on_ambiguous(found)
        if self.use_apscheduler:
            scheduler = build_apscheduler(self.engine, self.settings)
            scheduler.start(paused=True)
            written = install_jobs(scheduler, self.settings)
            scheduler.resume()
            self._apscheduler = scheduler
            logger.info("scheduler jobs: %s (written: %s)", ", ".join(JOBS), ", ".join(written) or "none")
        register_runner(self)
        self._active = True
        self._activated.set()
        self._sender_task = asyncio.create_task(self._deliver_loop(), name="scheduler-delivery")
        logger.info("scheduler active as %s", self.owner)

    async def _deactivate(self, why: str) -> None:
        if not self._active:
            return
        self._active = False
        self._activated.clear()
        register_runner(None)
        if self._sender_task is not None:
            # Let the message in flight finish and be recorded, so a clean stop leaves nothing
            # ambiguous; cancel only if that takes unreasonably long.
            self.delivery.stop_requested = True
            self.wake()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, LeaseLostError):
                async with asyncio.timeout(STOP_GRACE_S):
                    await asyncio.shield(self._sender_task)
            self._sender_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLostError):
                await self._sender_task
            self._sender_task = None
            self.delivery.stop_requested = False
        if self._apscheduler is not None:
            self._apscheduler.shutdown(wait=False)
            self._apscheduler = None
        logger.info("scheduler inactive: %s", why)

    async def _deliver_loop(self) -> None:
        while not self.delivery.stop_requested:
            try:
                if await self.delivery.run_once():
                    continue
                wait = await self.delivery.seconds_until_due()
            except LeaseLostError:
                logger.warning("lost the scheduler lease: stopping deliveries")
                return
            except Exception:  # a database hiccup: log it and try again shortly
                logger.exception("delivery loop error")
                wait = self.poll_s
            timeout = self.poll_s if wait is None else min(max(wait, 0.01), self.poll_s)
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives as the event is set, which would leave stop() waiting forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def wake(self) -> None:
        """New work: let the delivery loop look now rather than at its next poll."""
        self._wake.set()

    # ---- jobs and campaigns ----------------------------------------------------------
    async def run_job(self, name: str) -> str:
        """Run a job now (APScheduler and admin commands call this) and wake the sender."""
        result = await run_job(name, JobContext(self.engine, self.settings, self.clock, self.intents))
        self.wake()
        return result

    async def schedule(self, *, segment: str | None, text: str, at: datetime, created_by: int) -> int:
        """Create a broadcast to `segment` (None: every reachable user) at `at`; its campaign id."""
        campaign_id = await asyncio.to_thread(
            create_broadcast,
            self.engine,
            segment=segment or ALL,
            text=text,
            at=at,
            now=self.clock.now(),
            created_by=created_by,
        )
        self.wake()
        return campaign_id

    async def schedule_experiment(
        self, *, segment: str | None, draft: ExperimentDraft, at: datetime, created_by: int
    ) -> tuple[int, int]:
        """Create a broadcast with variants (see `scheduler.experiments`); (campaign id, experiment id)."""
        ids = await asyncio.to_thread(
            create_experiment_broadcast,
            self.engine,
            segment=segment or ALL,
            draft=draft,
            at=at,
            now=self.clock.now(),
            holdout_share=self.settings.holdout_share,
            created_by=created_by,
        )
        self.wake()
        return ids

    async def pause(self, campaign_id: int) -> None:
        """Pause a campaign (see `scheduler.control`)."""
        await asyncio.to_thread(control.pause_campaign, self.engine, campaign_id, now=self.clock.now())

    async def resume(self, campaign_id: int) -> None:
        """Resume a paused campaign."""
        await asyncio.to_thread(control.resume_campaign, self.engine, campaign_id, now=self.clock.now())
        self.wake()

    async def cancel(self, campaign_id: int) -> None:
        """Cancel a campaign; its pending deliveries are skipped."""
        await asyncio.to_thread(control.cancel_campaign, self.engine, campaign_id, now=self.clock.now())

    async def report(self, campaign_id: int) -> CampaignReport:
        """Progress and outcomes of one campaign."""
        return await asyncio.to_thread(
            campaign_report,
            self.engine,
            campaign_id,
            now=self.clock.now(),
            rate_per_s=self.delivery.config.effective_rate_per_s,
        )

    async def reports(self, limit: int = 5) -> list[CampaignReport]:
        """Reports of the latest campaigns."""
        return await asyncio.to_thread(
            recent_reports,
            self.engine,
            now=self.clock.now(),
            rate_per_s=self.delivery.config.effective_rate_per_s,
            limit=limit,
        )
