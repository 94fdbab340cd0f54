"""Message experiments as stored: the experiment, its variants, its rows' outcomes, the winner step.

The statistics live in `analytics.experiments` and the orchestration in `scheduler.experiments`;
this module only reads and writes. The winner step (`record_winner`) is one transaction guarded by
the experiment's status and the deliveries' unique (campaign, user) constraint, so running it
twice, or again after a crash, never plans a user a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from store.campaign_reports import first_returns
from store.campaigns import NewDelivery, _insert_deliveries
from store.db import unit_of_work
from store.models import Campaign, Delivery, Event, Experiment, ExperimentVariant
from store.vocabulary import (
    CampaignKind,
    CampaignStatus,
    DeliveryStatus,
    EventKind,
    ExperimentKind,
    ExperimentStatus,
)

__all__ = [
    "CONTROL",
    "HOLDOUT",
    "ArmCounts",
    "ExperimentInfo",
    "NewExperiment",
    "VariantButton",
    "VariantInfo",
    "add_experiment",
    "add_rows",
    "arm_counts",
    "due_experiments",
    "experiment_for_campaign",
    "followup_counts",
    "followup_experiment",
    "followup_experiment_name",
    "get_experiment",
    "list_experiments",
    "parse_buttons",
    "record_winner",
    "sync_followup_experiments",
]

CONTROL = "control"
"""The arm that gets nothing (its rows are `skipped` with reason `control`)."""
HOLDOUT = "holdout"
_CHUNK = 5000


@dataclass(frozen=True)
class VariantButton:
    """A button on a variant: a callback button (tracked as `push_click`) or a URL button (not tracked)."""

    text: str
    url: str | None = None

    @property
    def trackable(self) -> bool:
        """Whether a press can be seen: Telegram tells the bot about callback buttons only."""
        return self.url is None

    def as_json(self) -> dict[str, Any]:
        """The stored form (`experiment_variants.buttons` items)."""
        return {"text": self.text} if self.url is None else {"text": self.text, "url": self.url}


def parse_buttons(raw: Sequence[Any] | None) -> tuple[VariantButton, ...]:
    """The stored buttons JSON as dataclasses (None or empty: no buttons)."""
    return tuple(VariantButton(str(item["text"]), item.get("url")) for item in raw or ())


@dataclass(frozen=True)
class VariantInfo:
    """One message arm: its key ("A".."H"), text, buttons and whether the manager made it the default."""

    key: str
    text: str
    buttons: tuple[VariantButton, ...] = ()
    is_default: bool = False


@dataclass(frozen=True)
class NewExperiment:
    """An experiment to store beside its campaign."""

    kind: str
    name: str
    goal: str
    window_hours: float
    control_share: float
    status: str = ExperimentStatus.RUNNING
    test_share: float | None = None
    pick_winner_after_s: int | None = None
    decide_at: datetime | None = None


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment as stored, with its variants in key order."""

    id: int
    campaign_id: int | None
    kind: str
    name: str
    status: str
    goal: str
    window_hours: float
    control_share: float
    test_share: float | None
    pick_winner_after_s: int | None
    decide_at: datetime | None
    winner: str | None
    decision: str | None
    created_at: datetime
    decided_at: datetime | None
    variants: tuple[VariantInfo, ...]

    @property
    def default_variant(self) -> str:
        """The key of the variant marked default (the first when none is marked)."""
        return next((v.key for v in self.variants if v.is_default), self.variants[0].key)

    @property
    def window(self) -> timedelta:
        """How long after a send a conversion counts."""
        return timedelta(hours=self.window_hours)


@dataclass(frozen=True)
class ArmCounts:
    """One arm's rows: sends (sent, or control rows), and who returned, clicked and converted."""

    sends: int = 0
    returned: int = 0
    clicked: int = 0
    converted: int = 0


def add_experiment(
    session: Session,
    campaign_id: int | None,
    experiment: NewExperiment,
    variants: Sequence[VariantInfo],
    *,
    now: datetime,
) -> int:
    """Store an experiment and its variants in the caller's transaction; its id."""
    row = Experiment(
        campaign_id=campaign_id,
        kind=experiment.kind,
        name=experiment.name,
        status=experiment.status,
        goal=experiment.goal,
        window_hours=experiment.window_hours,
        control_share=experiment.control_share,
        test_share=experiment.test_share,
        pick_winner_after_s=experiment.pick_winner_after_s,
        decide_at=experiment.decide_at,
        created_at=now,
    )
    session.add(row)
    session.flush()
    for variant in variants:
        session.add(
            ExperimentVariant(
                experiment_id=row.id,
                key=variant.key,
                text=variant.text,
                buttons=[b.as_json() for b in variant.buttons] or None,
                is_default=variant.is_default,
            )
        )
    session.flush()
    return row.id


def add_rows(session: Session, campaign_id: int, rows: Sequence[NewDelivery], *, now: datetime) -> int:
    """Insert an experiment's planned rows in the caller's transaction (a user already there is kept)."""
    return _insert_deliveries(session.connection(), campaign_id, rows, now=now)


def followup_experiment_name(message_id: str) -> str:
    """The name of a follow-up message's experiment, which is also its assignment salt."""
    return f"followup:{message_id}"


def sync_followup_experiments(
    session: Session, messages: Mapping[str, tuple[float, Sequence[VariantInfo]]], *, now: datetime
) -> dict[str, int]:
    """Keep one `followup` experiment per catalogue message with variants; their ids by message id.

    `messages` maps a message id to its control share and variants. An experiment outlives its
    campaigns (`campaign_id` NULL): it spans every re-engagement run that chose the message. Its
    variants are rewritten to the catalogue's on each run; experiments of messages that lost their
    variants are kept, with their figures, but no longer updated. Runs in the caller's transaction.
    """
    ids: dict[str, int] = {}
    for message_id, (control_share, variants) in messages.items():
        name = followup_experiment_name(message_id)
        row = session.scalar(
            select(Experiment)
            .where(Experiment.kind == ExperimentKind.FOLLOWUP, Experiment.name == name)
            .order_by(Experiment.id)
            .limit(1)
        )
        if row is None:
            ids[message_id] = add_experiment(
                session,
                None,
                NewExperiment(ExperimentKind.FOLLOWUP, name, "return", 48.0, control_share),
                variants,
                now=now,
            )
            continue
        row.control_share, row.status = control_share, ExperimentStatus.RUNNING
        session.execute(delete(ExperimentVariant).where(ExperimentVariant.experiment_id == row.id))
        session.add_all(
            ExperimentVariant(
                experiment_id=row.id,
                key=v.key,
                text=v.text,
                buttons=[b.as_json() for b in v.buttons] or None,
                is_default=v.is_default,
            )
            for v in variants
        )
        session.flush()
        ids[message_id] = row.id
    return ids


def followup_experiment(engine: Engine, message_id: str) -> ExperimentInfo | None:
    """The experiment of a follow-up message with variants, or None."""
    with unit_of_work(engine) as session:
        row = session.scalar(
            select(Experiment)
            .where(
                Experiment.kind == ExperimentKind.FOLLOWUP,
                Experiment.name == followup_experiment_name(message_id),
            )
            .order_by(Experiment.id)
            .limit(1)
        )
        return None if row is None else _info(session, row)


def _info(session: Session, row: Experiment) -> ExperimentInfo:
    variants = session.scalars(
        select(ExperimentVariant)
        .where(ExperimentVariant.experiment_id == row.id)
        .order_by(ExperimentVariant.key)
    )
    return ExperimentInfo(
        id=row.id,
        campaign_id=row.campaign_id,
        kind=row.kind,
        name=row.name,
        status=row.status,
        goal=row.goal,
        window_hours=row.window_hours,
        control_share=row.control_share,
        test_share=row.test_share,
        pick_winner_after_s=row.pick_winner_after_s,
        decide_at=row.decide_at,
        winner=row.winner,
        decision=row.decision,
        created_at=row.created_at,
        decided_at=row.decided_at,
        variants=tuple(VariantInfo(v.key, v.text, parse_buttons(v.buttons), v.is_default) for v in variants),
    )


def get_experiment(engine: Engine, experiment_id: int) -> ExperimentInfo | None:
    """The experiment with this id, or None."""
    with unit_of_work(engine) as session:
        row = session.get(Experiment, experiment_id)
        return None if row is None else _info(session, row)


def experiment_for_campaign(engine: Engine, campaign_id: int) -> ExperimentInfo | None:
    """The experiment a campaign carries, or None."""
    with unit_of_work(engine) as session:
        row = session.scalar(select(Experiment).where(Experiment.campaign_id == campaign_id))
        return None if row is None else _info(session, row)


def list_experiments(engine: Engine, *, limit: int = 20) -> list[ExperimentInfo]:
    """The latest experiments, newest first."""
    with unit_of_work(engine) as session:
        rows = session.scalars(select(Experiment).order_by(Experiment.id.desc()).limit(limit))
        return [_info(session, row) for row in rows]


def due_experiments(engine: Engine, *, now: datetime) -> list[int]:
    """Phased experiments whose winner is due to be picked (status `testing`, `decide_at` passed)."""
    with unit_of_work(engine) as session:
        return list(
            session.scalars(
                select(Experiment.id)
                .where(Experiment.status == ExperimentStatus.TESTING, Experiment.decide_at <= now)
                .order_by(Experiment.decide_at, Experiment.id)
            )
        )


def record_winner(
    engine: Engine,
    experiment_id: int,
    *,
    winner: str,
    decision: str,
    rows: Sequence[NewDelivery],
    now: datetime,
) -> bool:
    """Store the winner and plan its rows, atomically and at most once; whether this call did it.

    The experiment row is locked and must still be `testing`; a second call (another process, or a
    re-run after a crash) finds it `decided` and does nothing. Rows of users already in the campaign
    are dropped by the unique (campaign, user) constraint, so nobody is planned twice either way.
    A campaign cancelled during the test phase gets no winner rows: the experiment is `cancelled`.
    """
    with unit_of_work(engine) as session:
        experiment = session.get(Experiment, experiment_id, with_for_update=True)
        if experiment is None or experiment.status != ExperimentStatus.TESTING:
            return False
        campaign = session.get(Campaign, experiment.campaign_id) if experiment.campaign_id else None
        experiment.decided_at = now
        if campaign is None or campaign.status == CampaignStatus.CANCELLED:
            experiment.status = ExperimentStatus.CANCELLED
            experiment.decision = "the campaign was cancelled during the test phase: no winner was sent"
            return False
        _insert_deliveries(session.connection(), campaign.id, rows, now=now)
        experiment.status, experiment.winner, experiment.decision = ExperimentStatus.DECIDED, winner, decision
        if campaign.status == CampaignStatus.DONE:  # closed by an older process: reopen for the winner
            campaign.status, campaign.finished_at = CampaignStatus.RUNNING, None
        return True


def _matching_events(
    session: Session,
    rows: Sequence[tuple[int, int, datetime]],
    window: timedelta,
    kind: str,
    match: Callable[[int, dict[str, Any]], bool],
) -> set[int]:
    """Keys of the rows whose user has an event of `kind` in (reference, reference + window] that `match`es.

    Attributes are filtered in Python: JSON operators differ between SQLite and PostgreSQL.
    """
    found: set[int] = set()
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        earliest = min(ref for _, _, ref in chunk)
        latest = max(ref for _, _, ref in chunk) + window
        by_user: dict[int, list[tuple[datetime, dict[str, Any]]]] = {}
        for user_id, ts, attributes in session.execute(
            select(Event.user_id, Event.ts, Event.attributes).where(
                Event.user_id.in_(sorted({user for _, user, _ in chunk})),
                Event.kind == kind,
                Event.ts > earliest,
                Event.ts <= latest,
            )
        ):
            by_user.setdefault(int(user_id or 0), []).append((ts, dict(attributes or {})))
        for key, user_id, ref in chunk:
            if any(ref < ts <= ref + window and match(key, attrs) for ts, attrs in by_user.get(user_id, [])):
                found.add(key)
    return found


def _clicked_delivery(key: int, attributes: dict[str, Any]) -> bool:
    return attributes.get("delivery_id") == key


def _count(
    session: Session,
    rows: Sequence[tuple[str, int, int, datetime]],
    window: timedelta,
    goal: str,
) -> dict[str, ArmCounts]:
    """Per arm: rows, returns, clicks and conversions by `goal` of (arm, row id, user, reference) rows."""
    keyed = [(key, user, ref) for _, key, user, ref in rows]
    returned = {key for key, hit in first_returns(session, keyed, window).items() if hit is not None}
    clicked = _matching_events(session, keyed, window, EventKind.PUSH_CLICK, _clicked_delivery)
    if goal == "return":
        converted = returned
    elif goal == "click":
        converted = clicked
    elif goal.startswith("product:"):
        name = goal.removeprefix("product:")
        converted = _matching_events(
            session, keyed, window, EventKind.PRODUCT, lambda _key, attrs: attrs.get("event") == name
        )
    else:
        raise ValueError(f"unknown experiment goal {goal!r}: expected return, click or product:<event>")
    tallies: dict[str, list[int]] = {}
    for arm, key, _, _ in rows:
        tally = tallies.setdefault(arm, [0, 0, 0, 0])
        tally[0] += 1
        tally[1] += key in returned
        tally[2] += key in clicked
        tally[3] += key in converted
    return {arm: ArmCounts(*tally) for arm, tally in tallies.items()}


def arm_counts(
    engine: Engine, experiment: ExperimentInfo, *, phase: str | None = None
) -> dict[str, ArmCounts]:
    """Each arm's sends and conversions (by the experiment's goal, within its window); optionally one phase.

    A message arm's sends are its `sent` rows, measured from `sent_at`; the control arm's are its
    `skipped`/`control` rows, measured from `due_at`, when they would have been sent. Rows that
    failed, were blocked, are ambiguous or still pending are not sends.
    """
    sent = (Delivery.status == DeliveryStatus.SENT) & Delivery.variant.is_not(None)
    control = (Delivery.status == DeliveryStatus.SKIPPED) & (Delivery.reason == CONTROL)
    query = select(
        Delivery.variant, Delivery.id, Delivery.user_id, Delivery.status, Delivery.sent_at, Delivery.due_at
    ).where(sent | control)
    if experiment.campaign_id is not None:
        query = query.where(Delivery.campaign_id == experiment.campaign_id)
    elif experiment.kind == ExperimentKind.FOLLOWUP:  # every re-engagement run that chose the message
        message_id = experiment.name.removeprefix(followup_experiment_name(""))
        query = query.join(Campaign, Campaign.id == Delivery.campaign_id).where(
            Campaign.kind == CampaignKind.REENGAGEMENT, Delivery.followup_id == message_id
        )
    else:
        return {}
    if phase is not None:
        query = query.where(Delivery.phase == phase)
    with unit_of_work(engine) as session:
        rows = [
            (str(arm), key, user, reference)
            for arm, key, user, status, sent_at, due in session.execute(query)
            if (reference := sent_at if status == DeliveryStatus.SENT else due) is not None
        ]
        return _count(session, rows, experiment.window, experiment.goal)


def followup_counts(
    engine: Engine, *, since: datetime | None = None, window: timedelta = timedelta(hours=48)
) -> dict[str, ArmCounts]:
    """Re-engagement pushes per follow-up message, and the holdout (`"holdout"`), with returns in `window`.

    The re-engagement job's chooser is a bandit (the model's pick plus Thompson exploration); this
    reads its deliveries as one experiment whose arms are the follow-up messages.
    """
    query = (
        select(
            Delivery.followup_id,
            Delivery.id,
            Delivery.user_id,
            Delivery.status,
            Delivery.sent_at,
            Delivery.due_at,
        )
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Campaign.kind == CampaignKind.REENGAGEMENT,
            ((Delivery.status == DeliveryStatus.SENT) & Delivery.followup_id.is_not(None))
            | ((Delivery.status == DeliveryStatus.SKIPPED) & (Delivery.reason == HOLDOUT)),
        )
    )
    if since is not None:
        query = query.where(Campaign.created_at >= since)
    with unit_of_work(engine) as session:
        rows = [
            (str(followup) if status == DeliveryStatus.SENT else HOLDOUT, key, user, reference)
            for followup, key, user, status, sent_at, due in session.execute(query)
            if (reference := sent_at if status == DeliveryStatus.SENT else due) is not None
        ]
        return _count(session, rows, window, "return")
