"""Live pushes in the demo: a manager's broadcast, the re-engagement job, and who comes back.

The bot's own `/broadcast` dialogue and the scheduler service (its job and delivery loop)
do the work; this module only plays the manager and the users, and reads the outcome back
from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from analytics.catalogue import load_catalogue
from demo.simulation.driver import CommunityDriver, ReturnReport
from scheduler import SchedulerService
from scheduler.jobs import JobContext, run_job
from scheduler.reengagement import FOLLOWUP_MODEL_KIND, REENGAGEMENT, ReengagementConfig
from store import get_user
from store.campaign_reports import CampaignCounts, campaign_counts
from store.campaigns import list_campaigns
from store.model_runs import record_model_run

__all__ = ["CampaignOutcome", "PushRound", "run_pushes"]

logger = logging.getLogger(__name__)

BROADCAST_TARGETS = ("community_events",)


@dataclass(frozen=True)
class CampaignOutcome:
    """One campaign's deliveries by status and reason, and measured returns."""

    campaign_id: int
    kind: str
    segment: str
    counts: CampaignCounts

    def as_json(self) -> dict[str, Any]:
        """The figures summary.json keeps."""
        return {
            "campaign_id": self.campaign_id,
            "kind": self.kind,
            "segment": self.segment,
            "targeted": self.counts.targeted,
            "by_status": self.counts.by_status,
            "skipped_by_reason": self.counts.skipped_by_reason,
            "failed_by_reason": self.counts.failed_by_reason,
            "sent_then_returned": self.counts.returned,
        }


@dataclass(frozen=True)
class PushRound:
    """Everything the demo's push step did."""

    broadcast: CampaignOutcome
    reengagement: CampaignOutcome
    plan_summary: str
    broadcast_answers: int
    returns: ReturnReport
    pushed: int
    pushed_returned: int
    holdout: int
    holdout_returned: int
    horizon_days: float


def _targets_by_text() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for message in load_catalogue().messages:
        found[message.text_en] = message.targets
        found[message.text_zh] = message.targets
    return found


async def _until_sent(engine: Engine, campaign_id: int, *, timeout_s: float = 120.0) -> None:
    """Wait while the scheduler's delivery loop works through a campaign."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        counts = await asyncio.to_thread(campaign_counts, engine, campaign_id, now=datetime.now(UTC))
        if counts.remaining == 0:
            return
        await asyncio.sleep(0.3)
    logger.warning("campaign %d still has deliveries pending after %.0f s", campaign_id, timeout_s)


def _inactive(engine: Engine, user_ids: Collection[int], *, before: datetime) -> list[int]:
    found = []
    for user_id in user_ids:
        state = get_user(engine, user_id)
        if state is not None and state.last_seen < before:
            found.append(user_id)
    return found


async def run_pushes(
    driver: CommunityDriver,
    engine: Engine,
    scheduler: SchedulerService,
    *,
    segment: str,
    text: str,
    model_dir: Path,
    model_metrics: dict[str, float],
    horizon_days: float,
    settle: Callable[[], Awaitable[None]],
) -> PushRound:
    """Broadcast to `segment` via the manager's dialogue, run re-engagement, let users react.

    The model in `model_dir` becomes the active follow-up model, as the nightly retraining
    would make it; the scheduler's own delivery loop sends everything. Returns are counted
    from the event log over `horizon_days` after each push (the store's campaign report),
    so a push only "works" if a simulated user really wrote to the bot. `settle` waits until
    the bot has answered and logged everything sent so far.
    """
    by_text = _targets_by_text()

    def targets_of(message: str) -> tuple[str, ...]:
        return by_text.get(message, BROADCAST_TARGETS if message == text else ())

    await asyncio.to_thread(
        record_model_run,
        engine,
        kind=FOLLOWUP_MODEL_KIND,
        artefact_path=str(model_dir),
        metrics=model_metrics,
        params={"model": "NextEventModel"},
        activate=True,
        decision="activated by the demo: trained on the simulated history",
        now=datetime.now(UTC),
    )
    # The broadcast first: whoever it brings back is active again, so the re-engagement job
    # that follows compares pushed and holdout users the broadcast left equally untouched.
    mark = len(driver.api.sent)
    # The scheduler keeps running: a campaign is stored with its deliveries in one transaction.
    broadcast_id = await asyncio.to_thread(driver.manager_broadcast, segment, text)
    await _until_sent(engine, broadcast_id)
    pushes = [r for r in driver.sent_to_users(since=mark) if r.method == "sendMessage"]
    answered = await asyncio.to_thread(
        driver.come_back, pushes, targets_of=targets_of, candidates=(), horizon_days=horizon_days
    )
    await settle()
    now = datetime.now(UTC)
    config = ReengagementConfig.from_settings(scheduler.settings)
    since = now - timedelta(days=config.inactivity.default_days)
    eligible = await asyncio.to_thread(_inactive, engine, driver.personas, before=since)
    mark = len(driver.api.sent)
    plan = await run_job(REENGAGEMENT, JobContext(engine, scheduler.settings, scheduler.clock))
    latest = await asyncio.to_thread(list_campaigns, engine, limit=1, kind=REENGAGEMENT)
    if not latest:
        raise RuntimeError(f"the re-engagement job created no campaign: {plan}")
    job_id = latest[0].id
    await _until_sent(engine, job_id)
    pushes = [r for r in driver.sent_to_users(since=mark) if r.method == "sendMessage"]
    returns = await asyncio.to_thread(
        driver.come_back, pushes, targets_of=targets_of, candidates=eligible, horizon_days=horizon_days
    )
    await settle()
    window = timedelta(days=horizon_days)
    later = datetime.now(UTC) + window + timedelta(minutes=5)
    broadcast = await asyncio.to_thread(campaign_counts, engine, broadcast_id, now=later, window=window)
    reengagement = await asyncio.to_thread(campaign_counts, engine, job_id, now=later, window=window)
    return PushRound(
        broadcast=CampaignOutcome(broadcast_id, "broadcast", segment, broadcast),
        reengagement=CampaignOutcome(job_id, "reengagement", "inactive", reengagement),
        plan_summary=plan,
        broadcast_answers=len(answered.responded),
        returns=returns,
        pushed=reengagement.by_status.get("sent", 0),
        pushed_returned=reengagement.returned,
        holdout=reengagement.holdout,
        holdout_returned=reengagement.holdout_returned,
        horizon_days=horizon_days,
    )
