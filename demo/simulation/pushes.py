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

__all__ = [
    "BroadcastStep",
    "CampaignOutcome",
    "PushRound",
    "ReengagementStep",
    "activate_model",
    "broadcast",
    "push_round",
    "push_targets",
    "reengage",
]

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


@dataclass(frozen=True)
class BroadcastStep:
    """The manager's broadcast: its campaign and how many users answered it."""

    campaign_id: int
    segment: str
    answered: int


@dataclass(frozen=True)
class ReengagementStep:
    """The re-engagement job's campaign, its plan and who came back."""

    campaign_id: int
    plan_summary: str
    returns: ReturnReport


def push_targets(broadcast_text: str) -> Callable[[str], tuple[str, ...]]:
    """What a pushed message is about: the catalogue's targets, or the broadcast's topic."""
    by_text = _targets_by_text()

    def targets_of(message: str) -> tuple[str, ...]:
        return by_text.get(message, BROADCAST_TARGETS if message == broadcast_text else ())

    return targets_of


async def activate_model(engine: Engine, model_dir: Path, model_metrics: dict[str, Any]) -> None:
    """Make the model in `model_dir` the active follow-up model, as nightly retraining would.

    `model_metrics` are its held-out figures, with its baselines' under `baselines`.
    """
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


async def broadcast(
    driver: CommunityDriver,
    engine: Engine,
    *,
    segment: str,
    text: str,
    targets_of: Callable[[str], Collection[str]],
    horizon_days: float,
    settle: Callable[[], Awaitable[None]],
) -> BroadcastStep:
    """The manager broadcasts `text` to `segment` through the bot's dialogue; users answer.

    Run it before re-engagement: whoever it brings back is active again, so the job that
    follows compares pushed and holdout users the broadcast left equally untouched. The
    scheduler keeps running: a campaign is stored with its deliveries in one transaction.
    """
    mark = len(driver.api.sent)
    campaign_id = await asyncio.to_thread(driver.manager_broadcast, segment, text)
    await _until_sent(engine, campaign_id)
    pushes = [r for r in driver.sent_to_users(since=mark) if r.method == "sendMessage"]
    answered = await asyncio.to_thread(
        driver.come_back, pushes, targets_of=targets_of, candidates=(), horizon_days=horizon_days
    )
    await settle()
    return BroadcastStep(campaign_id=campaign_id, segment=segment, answered=len(answered.responded))


async def reengage(
    driver: CommunityDriver,
    engine: Engine,
    scheduler: SchedulerService,
    *,
    targets_of: Callable[[str], Collection[str]],
    horizon_days: float,
    settle: Callable[[], Awaitable[None]],
) -> ReengagementStep:
    """Run the re-engagement job now; pushed users answer, silent ones may return unprompted.

    Raises:
        RuntimeError: if the job created no campaign.
    """
    now = datetime.now(UTC)
    config = ReengagementConfig.from_settings(scheduler.settings)
    since = now - timedelta(days=config.inactivity.default_days)
    eligible = await asyncio.to_thread(_inactive, engine, driver.personas, before=since)
    mark = len(driver.api.sent)
    plan = await run_job(REENGAGEMENT, JobContext(engine, scheduler.settings, scheduler.clock))
    latest = await asyncio.to_thread(list_campaigns, engine, limit=1, kind=REENGAGEMENT)
    if not latest:
        raise RuntimeError(f"the re-engagement job created no campaign: {plan}")
    campaign_id = latest[0].id
    await _until_sent(engine, campaign_id)
    pushes = [r for r in driver.sent_to_users(since=mark) if r.method == "sendMessage"]
    returns = await asyncio.to_thread(
        driver.come_back, pushes, targets_of=targets_of, candidates=eligible, horizon_days=horizon_days
    )
    await settle()
    return ReengagementStep(campaign_id=campaign_id, plan_summary=plan, returns=returns)


async def push_round(
    engine: Engine, sent: BroadcastStep, job: ReengagementStep, *, horizon_days: float
) -> PushRound:
    """Both campaigns' outcomes, with returns counted from the event log over `horizon_days`.

    A push only "works" if a simulated user really wrote to the bot after it (the store's
    campaign report decides, as it does for real campaigns).
    """
    window = timedelta(days=horizon_days)
    later = datetime.now(UTC) + window + timedelta(minutes=5)
    broadcast_counts = await asyncio.to_thread(
        campaign_counts, engine, sent.campaign_id, now=later, window=window
    )
    reengagement = await asyncio.to_thread(campaign_counts, engine, job.campaign_id, now=later, window=window)
    return PushRound(
        broadcast=CampaignOutcome(sent.campaign_id, "broadcast", sent.segment, broadcast_counts),
        reengagement=CampaignOutcome(job.campaign_id, "reengagement", "inactive", reengagement),
        plan_summary=job.plan_summary,
        broadcast_answers=sent.answered,
        returns=job.returns,
        pushed=reengagement.by_status.get("sent", 0),
        pushed_returned=reengagement.returned,
        holdout=reengagement.holdout,
        holdout_returned=reengagement.holdout_returned,
        horizon_days=horizon_days,
    )
