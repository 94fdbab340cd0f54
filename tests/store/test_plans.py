"""A planned campaign is stored in the caller's transaction: with the rest of it, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from store.campaigns import NewDelivery, get_campaign
from store.db import unit_of_work
from store.followups import FollowupRow, active_followup_ids, sync_followups
from store.models import Campaign, Delivery
from store.plans import NewCampaign, add_campaign
from store.vocabulary import CampaignKind, CampaignStatus

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
CAMPAIGN = NewCampaign(
    kind=CampaignKind.REENGAGEMENT,
    name="r",
    segment="inactive:7",
    text=None,
    scheduled_at=NOW,
    attributes={"a": 1},
)
ROWS = [
    NewDelivery(1, 1, "hi", NOW, followup_id="welcome", score=0.5, choice_reason="why"),
    NewDelivery(2, 2, "", NOW, status="skipped", reason="holdout"),
]


def test_add_campaign_stores_the_campaign_and_its_deliveries(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        campaign_id = add_campaign(session, CAMPAIGN, ROWS, now=NOW)
    stored = get_campaign(engine, campaign_id)
    assert stored is not None
    assert (stored.kind, stored.status, stored.attributes, stored.created_at) == (
        "reengagement",
        CampaignStatus.SCHEDULED,
        {"a": 1},
        NOW,
    )
    with unit_of_work(engine) as session:
        rows = {
            d.user_id: d for d in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
        }
    assert (rows[1].status, rows[1].followup_id, rows[1].score, rows[1].choice_reason) == (
        "pending",
        "welcome",
        0.5,
        "why",
    )
    assert (rows[2].status, rows[2].reason) == ("skipped", "holdout")


def test_a_failing_unit_of_work_stores_neither_catalogue_nor_campaign(engine: Engine) -> None:
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        sync_followups(session, [FollowupRow("welcome", "en", "zh", ("greet",), (), 14, True)], now=NOW)
        add_campaign(session, CAMPAIGN, ROWS, now=NOW)
        raise RuntimeError("planning failed after the writes")
    with unit_of_work(engine) as session:
        assert active_followup_ids(session) == []
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
