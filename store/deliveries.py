"""The send state machine of one delivery: claim, begin (fenced), record the outcome, recover.

A delivery moves pending → sending → sent | failed | blocked | skipped | ambiguous (the request
may have reached Telegram but its answer was lost: reported, never resent). Every transition is
its own small transaction, and `begin_send` re-checks everything that may have changed since
the row was planned (opt-out, block, a paused or cancelled campaign, the scheduler lease)
right before the message goes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, literal, select, update
from sqlalchemy.orm import aliased

from store.campaigns import AMBIGUOUS, BLOCKED, FAILED, PENDING, RUNNING, SENDING, SENT, SKIPPED
from store.db import unit_of_work
from store.experiments import VariantButton, parse_buttons
from store.models import Campaign, Delivery, Event, Experiment, ExperimentVariant, Lease, User
from store.vocabulary import CampaignKind, EventKind, ExperimentKind, SendVerdict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryTask:
    """A claimed delivery, with what the engine needs to send it and to check quiet hours."""

    id: int
    campaign_id: int
    campaign_kind: str
    user_id: int
    chat_id: int
    text: str
    followup_id: str | None
    attempts: int
    due_at: datetime
    time_zone: str | None
    experiment_id: int | None = None
    variant: str | None = None
    buttons: tuple[VariantButton, ...] = ()
    """The variant's buttons (an experiment's message arm); the engine puts them on the message."""
    campaign_attributes: dict[str, Any] = field(default_factory=dict)
    """The campaign's attributes: how its messages are formatted (parse mode, URL buttons)."""


@dataclass(frozen=True)
class AmbiguousDelivery:
    """A row found in `sending` after a crash: it may or may not have reached the user."""

    id: int
    campaign_id: int
    user_id: int
    claimed_by: str | None


def claim_batch(engine: Engine, *, owner: str, now: datetime, limit: int) -> list[DeliveryTask]:
    """Claim up to `limit` due, pending deliveries of running campaigns, oldest due first.

    Claiming only stamps `claimed_by`; the row stays `pending` until `begin_send`, so a crash
    after claiming loses nothing. PostgreSQL skips rows another transaction has locked.
    """
    with unit_of_work(engine) as session:
        query = (
            select(Delivery.id)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(Delivery.status == PENDING, Delivery.due_at <= now, Campaign.status == RUNNING)
            .order_by(Delivery.due_at, Delivery.id)
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(of=Delivery, skip_locked=True)
        ids = list(session.scalars(query))
        if not ids:
            return []
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(claimed_by=owner))
        # A follow-up message's experiment spans campaigns: found by its name, `followup:<message id>`.
        followup, followup_variant = aliased(Experiment), aliased(ExperimentVariant)
        rows = session.execute(
            select(
                Delivery,
                Campaign.kind,
                User.time_zone,
                func.coalesce(Experiment.id, followup.id),
                func.coalesce(ExperimentVariant.buttons, followup_variant.buttons),
                Campaign.attributes,
            )
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .outerjoin(User, User.id == Delivery.user_id)
            .outerjoin(Experiment, Experiment.campaign_id == Delivery.campaign_id)
            .outerjoin(
                ExperimentVariant,
                (ExperimentVariant.experiment_id == Experiment.id)
                & (ExperimentVariant.key == Delivery.variant),
            )
            .outerjoin(
                followup,
                Delivery.variant.is_not(None)
                & (followup.kind == ExperimentKind.FOLLOWUP)
                & (followup.campaign_id.is_(None))
                & (followup.name == literal("followup:") + Delivery.followup_id),
            )
            .outerjoin(
                followup_variant,
                (followup_variant.experiment_id == followup.id) & (followup_variant.key == Delivery.variant),
            )
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.due_at, Delivery.id)
        ).all()
        return [
            DeliveryTask(
                id=d.id,
                campaign_id=d.campaign_id,
                campaign_kind=kind,
                user_id=d.user_id,
                chat_id=d.chat_id,
                text=d.text,
                followup_id=d.followup_id,
                attempts=d.attempts,
                due_at=d.due_at,
                time_zone=tz,
                experiment_id=experiment_id,
                variant=d.variant,
                buttons=parse_buttons(buttons),
                campaign_attributes=dict(attributes or {}),
            )
            for d, kind, tz, experiment_id, buttons, attributes in rows
        ]


def begin_send(
    engine: Engine, delivery_id: int, *, owner: str, now: datetime, lease: tuple[str, str] | None = None
) -> SendVerdict:
    """Mark a claimed row `sending` just before the call, after re-checking it may go out.

    Args:
        lease: `(name, holder)` of the scheduler lease; when given, the row only moves if that
            lease is still held (a fencing check, so a process that lost its lease cannot send).

    Returns:
        `SendVerdict.SEND` when the caller must send now; otherwise why not (see `SendVerdict`):
        OPTED_OUT and BLOCKED finalise the row, NOT_RUNNING leaves it pending (campaign paused
        or cancelled), GONE (no longer pending) or LEASE_LOST.
    """
    with unit_of_work(engine) as session:
        if lease is not None:
            held = session.scalar(
                select(Lease.name).where(
                    Lease.name == lease[0], Lease.owner == lease[1], Lease.expires_at > now
                )
            )
            if held is None:
                return SendVerdict.LEASE_LOST
        row = session.execute(
            select(Delivery, Campaign.status, User.opted_out, User.blocked)
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .outerjoin(User, User.id == Delivery.user_id)
            .where(Delivery.id == delivery_id)
        ).first()
        if row is None or row[0].status != PENDING:
            return SendVerdict.GONE
        delivery, campaign_status, opted_out, blocked = row
        if campaign_status != RUNNING:
            delivery.claimed_by = None
            return SendVerdict.NOT_RUNNING
        if opted_out:
            delivery.status, delivery.reason, delivery.claimed_by = SKIPPED, "opted_out", None
            return SendVerdict.OPTED_OUT
        if blocked:
            delivery.status, delivery.reason, delivery.claimed_by = BLOCKED, "blocked", None
            return SendVerdict.BLOCKED
        moved = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == PENDING)
            .values(status=SENDING, attempts=Delivery.attempts + 1, claimed_by=owner)
        )
        return SendVerdict.SEND if moved.rowcount else SendVerdict.GONE  # type: ignore[attr-defined]


def mark_sent(engine: Engine, delivery_id: int, *, telegram_message_id: int | None, now: datetime) -> None:
    """The send succeeded: store Telegram's message id and log a `push_received` event.

    The event is inserted directly (not through the user upsert), so a push does not count as
    the user's own activity.
    """
    with unit_of_work(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            return
        delivery.status, delivery.reason, delivery.error = SENT, None, None
        delivery.sent_at, delivery.telegram_message_id = now, telegram_message_id
        kind = session.scalar(select(Campaign.kind).where(Campaign.id == delivery.campaign_id))
        if kind == CampaignKind.TEST:
            return  # a manager's test message is not a push the user received
        session.execute(
            insert(Event).values(
                user_id=delivery.user_id,
                chat_id=delivery.chat_id,
                ts=now,
                kind=EventKind.PUSH_RECEIVED,
                attributes={
                    "campaign_id": delivery.campaign_id,
                    "followup_id": delivery.followup_id,
                    "delivery_id": delivery.id,
                },
            )
        )


def mark_final(
    engine: Engine, delivery_id: int, *, status: str, reason: str | None, error: str | None = None
) -> None:
    """End a row as failed, blocked or skipped; a block also marks the user blocked."""
    if status not in (FAILED, BLOCKED, SKIPPED):
        raise ValueError(f"final status must be failed, blocked or skipped, got {status!r}")
    with unit_of_work(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            return
        delivery.status, delivery.reason, delivery.error, delivery.claimed_by = status, reason, error, None
        if status == BLOCKED:
            session.execute(update(User).where(User.id == delivery.user_id).values(blocked=True))


def mark_ambiguous(engine: Engine, delivery_id: int, *, error: str | None) -> None:
    """The request may have reached Telegram but its answer was lost: end the row `ambiguous`.

    Only a row still `sending` moves (a row whose outcome was recorded meanwhile keeps it).
    """
    with unit_of_work(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == SENDING)
            .values(status=AMBIGUOUS, reason=AMBIGUOUS, error=error, claimed_by=None)
        )


def requeue(
    engine: Engine, delivery_id: int, *, due_at: datetime, error: str | None, count_attempt: bool = True
) -> None:
    """Put a row back to pending for a later try (5xx, timeout, 429, quiet hours).

    Args:
        count_attempt: False for a 429 or a quiet-hours deferral, which are not the message's
            fault and must not use up its retries.
    """
    with unit_of_work(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            return
        if delivery.status == SENDING and not count_attempt:
            delivery.attempts = max(0, delivery.attempts - 1)
        delivery.status, delivery.due_at, delivery.error, delivery.claimed_by = PENDING, due_at, error, None


def recover_sending(engine: Engine) -> list[AmbiguousDelivery]:
    """After a crash: rows left in `sending` become `ambiguous` (never resent blindly).

    Telegram offers no way to ask whether a message arrived, so a row whose outcome was never
    recorded is reported rather than resent. Claims on pending rows are simply dropped: those
    rows were never attempted and go out normally.
    """
    with unit_of_work(engine) as session:
        rows = list(session.scalars(select(Delivery).where(Delivery.status == SENDING).with_for_update()))
        found = [AmbiguousDelivery(d.id, d.campaign_id, d.user_id, d.claimed_by) for d in rows]
        for delivery in rows:
            delivery.status, delivery.reason = AMBIGUOUS, AMBIGUOUS
            delivery.error = f"outcome unknown: {delivery.claimed_by or 'a sender'} stopped while sending"
        session.execute(
            update(Delivery)
            .where(and_(Delivery.status == PENDING, Delivery.claimed_by.is_not(None)))
            .values(claimed_by=None)
        )
    for item in found:
        logger.warning(
            "delivery %d (campaign %d, user %d) was in flight when %s stopped: marked ambiguous",
            item.id,
            item.campaign_id,
            item.user_id,
            item.claimed_by,
        )
    return found
