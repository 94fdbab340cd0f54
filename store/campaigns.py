"""Campaigns: creation with their deliveries (atomically), listing, status changes, what is due.

The send state machine of each delivery lives in `store.deliveries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, exists, func, select, union_all, update

from store.db import dialect_insert, unit_of_work
from store.models import Campaign, Delivery, Experiment
from store.vocabulary import CampaignKind, CampaignStatus, DeliveryStatus, ExperimentStatus

# Short names kept for the modules that import them; the values are the vocabulary's enums.
PENDING, SENDING, SENT = DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT
FAILED, BLOCKED, SKIPPED = DeliveryStatus.FAILED, DeliveryStatus.BLOCKED, DeliveryStatus.SKIPPED
AMBIGUOUS = DeliveryStatus.AMBIGUOUS
FINAL_STATUSES = (SENT, FAILED, BLOCKED, SKIPPED, AMBIGUOUS)
"""A delivery in one of these is done; `ambiguous` too (it is reported, never resent)."""
SCHEDULED, RUNNING, PAUSED = CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED
CANCELLED, DONE = CampaignStatus.CANCELLED, CampaignStatus.DONE
_INSERT_CHUNK = 1000


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as stored."""

    id: int
    kind: str
    name: str
    segment: str
    text: str | None
    status: str
    scheduled_at: datetime
    created_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to plan: pending (due at `due_at`) or already skipped with a reason."""

    user_id: int
    chat_id: int
    text: str
    due_at: datetime
    status: str = PENDING
    reason: str | None = None
    followup_id: str | None = None
    score: float | None = None
    choice_reason: str | None = None
    variant: str | None = None
    """The experiment arm of the row (a message variant "A".."H" or "control", or `best_time`/`fixed`
    for send times); None outside experiments."""
    phase: str | None = None
    """"test" or "winner" in a phased experiment; None otherwise."""


def _info(campaign: Campaign) -> CampaignInfo:
    return CampaignInfo(
        id=campaign.id,
        kind=campaign.kind,
        name=campaign.name,
        segment=campaign.segment,
        text=campaign.text,
        status=campaign.status,
        scheduled_at=campaign.scheduled_at,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        attributes=dict(campaign.attributes or {}),
    )


def create_campaign(
    engine: Engine,
    *,
    kind: str,
    name: str,
    segment: str,
    text: str | None,
    scheduled_at: datetime,
    now: datetime,
    created_by: int | None = None,
    attributes: dict[str, Any] | None = None,
    deliveries: Sequence[NewDelivery] = (),
) -> int:
    """Store a new campaign (status `scheduled`) with its deliveries, atomically; its id.

    One transaction: a delivery loop must never see the campaign without its deliveries, or
    it would find it due with nothing pending and close it.
    """
    with unit_of_work(engine) as session:
        campaign = Campaign(
            kind=kind,
            name=name,
            segment=segment,
            text=text,
            status=SCHEDULED,
            scheduled_at=scheduled_at,
            created_by=created_by,
            created_at=now,
            attributes=attributes or {},
        )
        session.add(campaign)
        session.flush()
        _insert_deliveries(session.connection(), campaign.id, deliveries, now=now)
        return campaign.id


def _insert_deliveries(
    connection: Connection, campaign_id: int, rows: Sequence[NewDelivery], *, now: datetime
) -> int:
    table: Any = Delivery.__table__
    inserted = 0
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = [
            {
                "campaign_id": campaign_id,
                "user_id": row.user_id,
                "chat_id": row.chat_id,
                "text": row.text,
                "due_at": row.due_at,
                "status": row.status,
                "reason": row.reason,
                "followup_id": row.followup_id,
                "score": row.score,
                "choice_reason": row.choice_reason,
                "variant": row.variant,
                "phase": row.phase,
                "attempts": 0,
                "created_at": now,
            }
            for row in rows[start : start + _INSERT_CHUNK]
        ]
        statement = dialect_insert(connection.dialect.name, table).on_conflict_do_nothing(
            index_elements=["campaign_id", "user_id"]
        )
        inserted += max(0, int(connection.execute(statement, chunk).rowcount))
    return inserted


def add_deliveries(engine: Engine, campaign_id: int, rows: Sequence[NewDelivery], *, now: datetime) -> int:
    """Add deliveries to an existing campaign; a user already in it is left alone (unique campaign+user).

    Returns:
        How many rows were inserted (as far as the driver reports it).
    """
    if not rows:
        return 0
    with engine.begin() as connection:
        return _insert_deliveries(connection, campaign_id, rows, now=now)


def get_campaign(engine: Engine, campaign_id: int) -> CampaignInfo | None:
    """The campaign with this id, or None."""
    with unit_of_work(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        return None if campaign is None else _info(campaign)


def list_campaigns(engine: Engine, *, limit: int = 20, kind: str | None = None) -> list[CampaignInfo]:
    """The latest campaigns, newest first; a manager's test sends only when `kind` asks for them."""
    with unit_of_work(engine) as session:
        query = select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(Campaign.kind == kind)
        else:
            query = query.where(Campaign.kind != CampaignKind.TEST)
        return [_info(c) for c in session.scalars(query)]


def set_campaign_status(
    engine: Engine, campaign_id: int, status: str, *, allowed_from: Sequence[str], now: datetime
) -> str | None:
    """Move a campaign to `status` if it is in one of `allowed_from`; its status before, or None.

    Cancelling also skips the deliveries still pending (reason `cancelled`), so nothing more goes out.
    """
    with unit_of_work(engine) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or campaign.status not in allowed_from:
            return None
        before = campaign.status
        campaign.status = status
        if status == CANCELLED:
            campaign.finished_at = now
            session.execute(
                update(Delivery)
                .where(Delivery.campaign_id == campaign_id, Delivery.status == PENDING)
                .values(status=SKIPPED, reason="cancelled", claimed_by=None)
            )
        return before


def start_due_campaigns(engine: Engine, *, now: datetime) -> list[int]:
    """Scheduled campaigns whose time has come become `running`; their ids."""
    with unit_of_work(engine) as session:
        ids = list(
            session.scalars(
                select(Campaign.id).where(Campaign.status == SCHEDULED, Campaign.scheduled_at <= now)
            )
        )
        if ids:
            session.execute(
                update(Campaign).where(Campaign.id.in_(ids)).values(status=RUNNING, started_at=now)
            )
        return ids


def finish_campaigns(engine: Engine, *, now: datetime) -> list[int]:
    """Running campaigns with nothing pending or sending become `done`; their ids.

    A phased experiment's campaign whose winner is still to be picked is not done: its winner
    rows are yet to come.
    """
    open_rows = exists().where(Delivery.campaign_id == Campaign.id, Delivery.status.in_([PENDING, SENDING]))
    testing = exists().where(
        Experiment.campaign_id == Campaign.id, Experiment.status == ExperimentStatus.TESTING
    )
    with unit_of_work(engine) as session:
        ids = list(
            session.scalars(select(Campaign.id).where(Campaign.status == RUNNING, ~open_rows, ~testing))
        )
        if ids:
            session.execute(update(Campaign).where(Campaign.id.in_(ids)).values(status=DONE, finished_at=now))
        return ids


def next_due_at(engine: Engine) -> datetime | None:
    """When the next send may be due: the earliest pending row of a running campaign or the
    start of a scheduled one (None: nothing to send)."""
    due = (
        select(Delivery.due_at.label("at"))
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.status == PENDING, Campaign.status == RUNNING)
    )
    start = select(Campaign.scheduled_at.label("at")).where(Campaign.status == SCHEDULED)
    both = union_all(due, start).subquery()
    # One statement, so one snapshot: two separate reads could miss a campaign that starts
    # between them (pysqlite runs plain SELECTs outside a transaction).
    with unit_of_work(engine) as session:
        earliest: datetime | None = session.scalar(select(func.min(both.c.at)))
        return earliest
