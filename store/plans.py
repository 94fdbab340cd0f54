"""A planned campaign and its deliveries, stored inside the caller's unit of work.

`store.campaigns.create_campaign` opens its own transaction; a planner that also writes other
rows (the follow-up catalogue) in the same transaction uses `add_campaign` instead. The rows
are inserted by `store.campaigns`' own delivery insert, so both paths store the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.campaigns import NewDelivery, _insert_deliveries
from store.models import Campaign
from store.vocabulary import CampaignKind, CampaignStatus

__all__ = ["NewCampaign", "add_campaign"]


@dataclass(frozen=True)
class NewCampaign:
    """A campaign to store (status `scheduled`) with its deliveries."""

    kind: CampaignKind
    name: str
    segment: str
    text: str | None
    scheduled_at: datetime
    created_by: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def add_campaign(
    session: Session, campaign: NewCampaign, deliveries: Sequence[NewDelivery], *, now: datetime
) -> int:
    """Store `campaign` with its deliveries in the caller's transaction; its id.

    The caller's unit of work makes it atomic with whatever else it writes, so a delivery loop
    never sees the campaign without its deliveries.
    """
    row = Campaign(
        kind=campaign.kind,
        name=campaign.name,
        segment=campaign.segment,
        text=campaign.text,
        status=CampaignStatus.SCHEDULED,
        scheduled_at=campaign.scheduled_at,
        created_by=campaign.created_by,
        created_at=now,
        attributes=campaign.attributes,
    )
    session.add(row)
    session.flush()
    _insert_deliveries(session.connection(), row.id, deliveries, now=now)
    return row.id
