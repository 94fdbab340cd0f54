"""The scheduler service: lease, APScheduler wiring (missed runs once), broadcasts and campaign controls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from scheduler.clock import ManualClock
from scheduler.errors import CampaignStateError, UnknownJobError
from scheduler.jobs import JOBS, register_runner
from scheduler.reports import campaign_report
from scheduler.sender import OutgoingMessage, SendResult, SendStatus
from scheduler.service import SchedulerService, build_apscheduler, install_jobs
from store import Settings, load_settings
from store.campaigns import get_campaign
from store.leases import acquire_lease
from tests.scheduler.conftest import FakeSender, add_users


def _settings() -> Settings:
    return load_settings(send_rate_per_s=1000.0, reengage_time="10:00", retrain_time="03:00")


class CountingRunner:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.done = asyncio.Event()

    async def run_job(self, name: str) -> str:
        self.calls.append(name)
        self.done.set()
        return "ok"


async def test_missed_runs_after_downtime_run_once(sqlite_engine: Engine) -> None:
    settings = _settings()
    scheduler = build_apscheduler(sqlite_engine, settings)
    scheduler.start(paused=True)
    assert sorted(install_jobs(scheduler, settings)) == sorted(JOBS)
    # Pretend the process was down for three hours: three hourly runs were missed.
    scheduler.modify_job("responses", next_run_time=datetime.now(UTC) - timedelta(hours=3))
    scheduler.shutdown(wait=False)

    restarted = build_apscheduler(sqlite_engine, settings)
    restarted.start(paused=True)
    assert install_jobs(restarted, settings) == []  # same triggers: the stored jobs are kept
    runner = CountingRunner()
    register_runner(runner)
    try:
        restarted.resume()
        await asyncio.wait_for(runner.done.wait(), 10)
        await asyncio.sleep(0.3)
    finally:
        restarted.shutdown(wait=False)
        register_runner(None)
    assert runner.calls == ["responses"]  # coalesced: once, not three times
    job_ids = sorted(job.id for job in restarted.get_jobs())
    assert job_ids == sorted(JOBS)


async def test_service_sends_broadcasts_and_controls_campaigns(sqlite_engine: Engine) -> None:
    add_users(sqlite_engine, range(1, 11))
    sender = FakeSender(ManualClock(datetime.now(UTC)))
    service = SchedulerService(sqlite_engine, _settings(), sender, owner="svc", lease_ttl_s=3, poll_s=0.05)
    await service.start()
    try:
        assert await service.wait_active(10)
        later = await service.schedule(segment=None, text="Later", at=datetime.now(UTC) + timedelta(hours=1),
                                       created_by=42)  # fmt: skip
        now = await service.schedule(segment="all", text="Now", at=datetime.now(UTC), created_by=42)
        for _ in range(200):
            info = get_campaign(sqlite_engine, now)
            if info is not None and info.status == "done":
                break
            await asyncio.sleep(0.02)
        assert sum(sender.delivered.values()) == 10
        report = await service.report(later)
        assert report.counts.remaining == 10 and report.expected_end is not None
        assert report.expected_end >= datetime.now(UTC) + timedelta(minutes=59)
        await service.pause(later)
        with pytest.raises(CampaignStateError, match="paused"):
            await service.pause(later)
        await service.resume(later)
        await service.cancel(later)
        report = await service.report(later)
        assert report.counts.skipped_by_reason == {"cancelled": 10}
        assert "responses" in JOBS
        assert await service.run_job("responses") == "0 deliveries measured"
        with pytest.raises(UnknownJobError, match="nope"):
            await service.run_job("nope")
    finally:
        await service.stop()
    assert not service.active


async def test_a_standby_service_waits_while_another_holds_the_lease(sqlite_engine: Engine) -> None:
    assert acquire_lease(
        sqlite_engine, "scheduler", "elsewhere", ttl=timedelta(seconds=60), now=datetime.now(UTC)
    )
    sender = FakeSender(ManualClock(datetime.now(UTC)))
    service = SchedulerService(
        sqlite_engine, _settings(), sender, owner="standby", lease_ttl_s=0.3, poll_s=0.05
    )
    await service.start()
    try:
        assert not await service.wait_active(0.5)
    finally:
        await service.stop()


class GatedSender:
    """Holds every send until released, to stop the service with a message in flight."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator[None]:
        yield

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.started.set()
        await self.release.wait()
        return SendResult(SendStatus.SENT, telegram_message_id=1)


async def test_stopping_with_a_message_in_flight_records_it_instead_of_leaving_it_ambiguous(
    sqlite_engine: Engine,
) -> None:
    add_users(sqlite_engine, [1, 2, 3])
    sender = GatedSender()
    settings = load_settings(send_rate_per_s=1000.0, send_lanes=1)  # one message in flight
    service = SchedulerService(sqlite_engine, settings, sender, owner="svc", lease_ttl_s=3, poll_s=0.05,
                               use_apscheduler=False)  # fmt: skip
    await service.start()
    assert await service.wait_active(10)
    campaign_id = await service.schedule(segment="all", text="Hi", at=datetime.now(UTC), created_by=1)
    await asyncio.wait_for(sender.started.wait(), 10)
    stopping = asyncio.create_task(service.stop())
    await asyncio.sleep(0.05)
    sender.release.set()
    await stopping
    report = campaign_report(sqlite_engine, campaign_id, now=datetime.now(UTC), rate_per_s=30)
    assert report.counts.by_status == {"sent": 1, "pending": 2}  # nothing left `sending`
