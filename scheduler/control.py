"""Managers' controls over a campaign: pause, resume, cancel (shared by the CLI and the bot)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine

from scheduler.errors import CampaignNotFoundError, CampaignStateError
from store.campaigns import (
    CANCELLED,
    PAUSED,
    RUNNING,
    SCHEDULED,
    get_campaign,
    set_campaign_status,
)

logger = logging.getLogger(__name__)


def _change(engine: Engine, campaign_id: int, status: str, allowed: tuple[str, ...], *, now: datetime) -> str:
    campaign = get_campaign(engine, campaign_id)
    if campaign is None:
        raise CampaignNotFoundError(f"no campaign #{campaign_id}")
    before = set_campaign_status(engine, campaign_id, status, allowed_from=allowed, now=now)
    if before is None:
        current = get_campaign(engine, campaign_id)
        shown = current.status if current else "deleted"
        raise CampaignStateError(
            f"campaign #{campaign_id} is {shown}; it can become {status} only from {', '.join(allowed)}"
        )
    logger.info("campaign %d: %s → %s", campaign_id, before, status)
    return before


def pause_campaign(engine: Engine, campaign_id: int, *, now: datetime) -> None:
    """Stop sending: pending rows wait (the one in flight, if any, completes)."""
    _change(engine, campaign_id, PAUSED, (SCHEDULED, RUNNING), now=now)


def resume_campaign(engine: Engine, campaign_id: int, *, now: datetime) -> None:
    """Continue a paused campaign where it stopped (or at its scheduled time, if it never started)."""
    campaign = get_campaign(engine, campaign_id)
    if campaign is None:
        raise CampaignNotFoundError(f"no campaign #{campaign_id}")
    target = RUNNING if campaign.started_at is not None else SCHEDULED
    _change(engine, campaign_id, target, (PAUSED,), now=now)


def cancel_campaign(engine: Engine, campaign_id: int, *, now: datetime) -> None:
    """Stop for good: every pending row is skipped with reason `cancelled`."""
    _change(engine, campaign_id, CANCELLED, (SCHEDULED, RUNNING, PAUSED), now=now)
