"""The re-engagement job's planning: who is due a push, which message, and when it may go out.

Eligible: inactive for their segment's threshold, not opted out or blocked (the store query),
not in the holdout, not capped. Holdout and capped users get a `skipped` row with the reason,
so reports count them (the holdout is the control group of the uplift). Everyone else gets the
follow-up model's choice, with its score and reason, due at the user's best hour within the
next 24 hours (`scheduler.best_time`; with `best_time` off: at once or at the end of their
quiet hours). Holdout rows get the same time, since it is when their return is measured from.
A chosen message with variants sends the user's variant, by a stable hash of (message, user), or,
for its control share, nothing (a `skipped`/`control` row); the message's `followup` experiment
is stored with the catalogue.

A run has three steps: `read_planning_snapshot` reads everything in one consistent snapshot
with a fixed number of set-based queries, `plan_deliveries` plans as a pure function of that
snapshot, and `write_plan` stores the catalogue and the campaign with its deliveries in one
transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from analytics.catalogue import CONTROL, Catalogue, FollowupMessage, load_catalogue
from analytics.errors import AnalyticsError
from analytics.followup import FollowupChoice, ResponseStats, UnknownTargetLog, UserContext, choose_followups
from analytics.send_time import HourProfile
from analytics.sequence import SequenceModel, TokenVocabulary, event_token, load_model
from scheduler.best_time import SEND_AT_BEST, SendTimeConfig, best_due_at, read_send_profiles
from scheduler.policy import InactivityRule, QuietHours, in_holdout
from store import Settings
from store.analytics_results import current_segment_names
from store.audience import (
    capped_users,
    inactive_recipients,
    inactive_users,
    uncapped,
)
from store.campaigns import NewDelivery
from store.db import read_snapshot, unit_of_work
from store.experiments import VariantButton as StoredButton
from store.experiments import VariantInfo, sync_followup_experiments
from store.followups import FollowupRow, last_sends, recent_events, response_stats, sync_followups
from store.model_runs import ModelRunInfo, active_model_run
from store.plans import NewCampaign, add_campaign
from store.vocabulary import CampaignKind, DeliveryStatus

logger = logging.getLogger(__name__)

REENGAGEMENT = CampaignKind.REENGAGEMENT
FOLLOWUP_MODEL_KIND = "followup"
HISTORY_DAYS = 180
HISTORY_EVENTS = 50
HOLDOUT, CAPPED, NO_MESSAGE = "holdout", "capped", "no_message"


@dataclass(frozen=True)
class ReengagementConfig:
    """Knobs of the re-engagement job (see the settings of the same names).

    `intents` are the labels the active NLU model can give (its intents and its fallback); with
    them, the catalogue's targets are checked before anything is planned. The composition root,
    which loads the NLU, passes them; None skips that check (logged).
    """

    inactivity: InactivityRule = field(default_factory=InactivityRule)
    cap_days: int = 7
    holdout_share: float = 0.1
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    exploration: float = 0.1
    catalogue: Path | None = None
    seed: int | None = None
    intents: frozenset[str] | None = None
    best_time: bool = True
    """Each push at the user's best hour within 24 h (`RAPPORT_BEST_TIME_SENDS`); off: as soon as allowed."""

    def __post_init__(self) -> None:
        if self.cap_days < 0 or not 0.0 <= self.holdout_share <= 1.0:
            raise ValueError(f"need cap_days >= 0 and holdout_share in [0, 1], got {self}")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, intents: frozenset[str] | None = None
    ) -> ReengagementConfig:
        """The configuration the settings describe, with the NLU model's labels if known."""
        return cls(
            inactivity=InactivityRule(settings.reengage_inactive_days, dict(settings.reengage_segment_days)),
            cap_days=settings.push_cap_days,
            holdout_share=settings.holdout_share,
            quiet_hours=QuietHours(
                settings.quiet_hours_start, settings.quiet_hours_end, settings.default_timezone
            ),
            exploration=settings.followup_exploration,
            catalogue=settings.followup_catalogue,
            intents=intents,
            best_time=settings.best_time_sends,
        )

    @property
    def send_time(self) -> SendTimeConfig:
        """How best times are chosen: within 24 h, outside this job's quiet hours."""
        return SendTimeConfig(quiet_hours=self.quiet_hours)

    def due_at(self, profile: HourProfile | None, now: datetime, time_zone: str | None) -> datetime:
        """When a user's row is due: their best time when that is on, else the first allowed moment."""
        if not self.best_time:
            return self.quiet_hours.next_allowed(now, time_zone)
        return best_due_at(profile, now, time_zone, self.send_time)

    def rng(self, now: datetime) -> np.random.Generator:
        """The run's random generator: the configured seed, else one per calendar day."""
        return np.random.default_rng(self.seed if self.seed is not None else int(f"{now:%Y%m%d}"))


@dataclass(frozen=True)
class ReengagementPlan:
    """What one run planned."""

    campaign_id: int
    candidates: int
    pending: int
    deferred: int
    skipped: dict[str, int]
    methods: dict[str, int]

    def summary(self) -> str:
        """One line for logs and the CLI."""
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        return (
            f"campaign {self.campaign_id}: {self.candidates} inactive users, {self.pending} to push "
            f"({self.deferred} due later: quiet hours or best time), skipped: {skipped}"
        )


@dataclass(frozen=True)
class Candidate:
    """A reachable user inactive for at least the shortest threshold, as the snapshot saw them."""

    user_id: int
    last_seen: datetime
    language: str | None = None
    time_zone: str | None = None
    segment: str | None = None
    history: tuple[str, ...] = ()
    """The latest event tokens, oldest first (read only for users outside the cap)."""
    last_sent: Mapping[str, datetime] = field(default_factory=dict)
    """When each follow-up message was last sent to the user (for cooldowns)."""


@dataclass(frozen=True)
class PlanningSnapshot:
    """Everything planning reads from the store, as of one consistent snapshot."""

    candidates: tuple[Candidate, ...]
    capped: frozenset[int] = frozenset()
    """Candidates inside the frequency cap (pushed recently, or a push still pending)."""
    stats: Mapping[str, ResponseStats] = field(default_factory=dict)
    model_run: ModelRunInfo | None = None
    profiles: Mapping[int, HourProfile] = field(default_factory=dict)
    """Hour-of-week profiles of the candidates outside the cap (empty when best time is off)."""


@dataclass(frozen=True)
class PlannedDeliveries:
    """The output of planning: the delivery rows, and counts for the run's summary."""

    deliveries: tuple[NewDelivery, ...]
    candidates: int
    deferred: int
    skipped: dict[str, int]
    methods: dict[str, int]

    @property
    def pending(self) -> int:
        """Rows that will be sent."""
        return sum(self.methods.values())


def read_planning_snapshot(engine: Engine, config: ReengagementConfig, *, now: datetime) -> PlanningSnapshot:
    """Read the candidates and all planning needs about them in one snapshot, one query per kind of fact.

    Candidates are reachable users inactive for the shortest threshold (the planner applies each
    segment's own). Histories and cooldowns are read only for candidates outside the cap; the
    candidate set is a subquery, so no statement carries a list of ids.
    """
    inactive_since = now - timedelta(days=config.inactivity.shortest)
    cap_since = now - timedelta(days=config.cap_days)
    users = inactive_users(inactive_since=inactive_since)
    choosable = uncapped(users, since=cap_since, kinds=(REENGAGEMENT,))
    with read_snapshot(engine) as session:
        recipients = inactive_recipients(session, inactive_since=inactive_since)
        segments = current_segment_names(session)
        capped = capped_users(session, users, since=cap_since, kinds=(REENGAGEMENT,))
        histories = recent_events(
            session, choosable, since=now - timedelta(days=HISTORY_DAYS), limit=HISTORY_EVENTS
        )
        sends = last_sends(session, choosable)
        stats = {key: ResponseStats(c.sent, c.responded) for key, c in response_stats(session).items()}
        model_run = active_model_run(session, FOLLOWUP_MODEL_KIND)
        profiles: dict[int, HourProfile] = {}
        if config.best_time:
            zones = {r.user_id: r.time_zone for r in recipients if r.user_id not in capped}
            profiles = read_send_profiles(
                session, choosable, zones, now=now, config=config.send_time, segments=segments
            )
    candidates = tuple(
        Candidate(
            user_id=r.user_id,
            last_seen=r.last_seen,
            language=r.language,
            time_zone=r.time_zone,
            segment=segments.get(r.user_id),
            history=tuple(
                event_token(kind, intent, product) for kind, intent, product in histories.get(r.user_id, [])
            ),
            last_sent=sends.get(r.user_id, {}),
        )
        for r in recipients
    )
    return PlanningSnapshot(
        candidates=candidates, capped=capped, stats=stats, model_run=model_run, profiles=profiles
    )


def plan_deliveries(
    snapshot: PlanningSnapshot,
    messages: Sequence[FollowupMessage],
    config: ReengagementConfig,
    *,
    now: datetime,
    model: SequenceModel | None,
    rng: np.random.Generator,
    unknown_targets: UnknownTargetLog | None = None,
) -> PlannedDeliveries:
    """Plan one run's deliveries from a snapshot: no database, no clock, randomness only from `rng`.

    Rows come in a fixed order: holdout skips, capped skips, then one row per remaining due user
    (a push, or a `no_message` skip), each group by user id.
    """
    due = [
        c
        for c in snapshot.candidates
        if c.last_seen < now - timedelta(days=config.inactivity.days_for(c.segment))
    ]
    holdout = [c for c in due if in_holdout(c.user_id, config.holdout_share)]
    treated = [c for c in due if not in_holdout(c.user_id, config.holdout_share)]
    capped = [c for c in treated if c.user_id in snapshot.capped]
    targets = [c for c in treated if c.user_id not in snapshot.capped]
    profiles = snapshot.profiles
    rows = [_skip(c, HOLDOUT, config, now, profiles.get(c.user_id)) for c in holdout]
    rows += [_skip(c, CAPPED, config, now) for c in capped]
    skipped: Counter[str] = Counter({HOLDOUT: len(holdout), CAPPED: len(capped)})
    methods: Counter[str] = Counter()
    deferred = 0
    choices = choose_followups(
        (UserContext(c.user_id, c.history, c.segment, c.last_sent) for c in targets),
        messages,
        stats=snapshot.stats,
        model=model,
        now=now,
        rng=rng,
        exploration=config.exploration,
        unknown_targets=unknown_targets,
    )
    by_id = {message.id: message for message in messages}
    by_user = {c.user_id: c for c in targets}
    for user_id, choice in choices:
        candidate = by_user[user_id]
        if choice is None:
            rows.append(_skip(candidate, NO_MESSAGE, config, now))
            skipped[NO_MESSAGE] += 1
            continue
        row = _push(candidate, by_id[choice.message_id], choice, config, now, profiles.get(user_id))
        rows.append(row)
        if row.status == DeliveryStatus.SKIPPED:  # the control arm of the message's variants
            skipped[CONTROL] += 1
            continue
        deferred += row.due_at > now
        methods[choice.method] += 1
    return PlannedDeliveries(
        deliveries=tuple(rows),
        candidates=len(due),
        deferred=deferred,
        skipped={reason: n for reason, n in skipped.items() if n},
        methods=dict(methods),
    )


def _skip(
    candidate: Candidate,
    reason: str,
    config: ReengagementConfig,
    now: datetime,
    profile: HourProfile | None = None,
) -> NewDelivery:
    if profile is not None:
        due_at = config.due_at(profile, now, candidate.time_zone)
    else:
        due_at = config.quiet_hours.next_allowed(now, candidate.time_zone)
    return NewDelivery(
        candidate.user_id, candidate.user_id, "", due_at, status=DeliveryStatus.SKIPPED, reason=reason
    )


def _push(
    candidate: Candidate,
    message: FollowupMessage,
    choice: FollowupChoice,
    config: ReengagementConfig,
    now: datetime,
    profile: HourProfile | None = None,
) -> NewDelivery:
    """The row of a chosen message: its text, or with variants the user's variant (or a control skip).

    The variant is `FollowupMessage.arm_for(user)`, a stable hash of (message, user): a re-run or
    another day's run puts the user in the same arm. Control rows keep the message id, so the
    message's experiment counts them, and are due when the push would have been.
    """
    due_at = config.due_at(profile, now, candidate.time_zone)
    text, variant = message.text(candidate.language), None
    status, reason = DeliveryStatus.PENDING, None
    if message.variants:
        arm = message.arm_for(candidate.user_id)
        if arm is None:
            variant, status, reason = CONTROL, DeliveryStatus.SKIPPED, CONTROL
        else:
            text, variant = arm.text(candidate.language), arm.key
    return NewDelivery(
        candidate.user_id,
        candidate.user_id,
        text,
        due_at,
        status=status,
        reason=reason,
        followup_id=message.id,
        score=choice.score,
        choice_reason=choice.reason,
        variant=variant,
    )


def _campaign(config: ReengagementConfig, now: datetime) -> NewCampaign:
    rule = config.inactivity
    return NewCampaign(
        kind=REENGAGEMENT,
        name=f"re-engagement {now:%Y-%m-%d %H:%M}",
        segment=f"inactive:{rule.default_days}",
        text=None,
        scheduled_at=now,
        attributes={
            "inactive_days": rule.default_days,
            "segment_days": dict(rule.by_segment),
            "cap_days": config.cap_days,
            "holdout_share": config.holdout_share,
            **({"send_at": SEND_AT_BEST} if config.best_time else {}),
        },
    )


def write_plan(
    engine: Engine,
    catalogue: Catalogue,
    planned: PlannedDeliveries,
    config: ReengagementConfig,
    *,
    now: datetime,
) -> int:
    """Store the catalogue's messages (and the experiments of those with variants) and the campaign
    with its deliveries in one transaction; its id."""
    followups = [
        FollowupRow(m.id, m.text_en, m.text_zh, m.targets, m.segments, m.cooldown_days, m.default)
        for m in catalogue.messages
    ]
    experiments = {
        m.id: (
            m.control_share,
            [
                VariantInfo(v.key, v.text_en, tuple(StoredButton(b.text, b.url) for b in v.buttons))
                for v in m.variants
            ],
        )
        for m in catalogue.messages
        if m.variants
    }
    with unit_of_work(engine) as session:
        sync_followups(session, followups, now=now)
        sync_followup_experiments(session, experiments, now=now)
        return add_campaign(session, _campaign(config, now), planned.deliveries, now=now)


def load_run_model(run: ModelRunInfo | None) -> SequenceModel | None:
    """The model of a model run, or None (the chooser then sends each segment's default).

    A model that cannot be loaded is logged and not used: a push with a default message beats
    no push, and retraining records a fresh model the next night.
    """
    if run is None:
        return None
    try:
        return load_model(run.artefact_path)
    except (AnalyticsError, OSError, ValueError) as exc:
        logger.error("active follow-up model %d at %s cannot be loaded: %s", run.id, run.artefact_path, exc)
        return None


def load_active_model(engine: Engine) -> SequenceModel | None:
    """The active follow-up model, or None (see `load_run_model`)."""
    with unit_of_work(engine) as session:
        run = active_model_run(session, FOLLOWUP_MODEL_KIND)
    return load_run_model(run)


def load_checked_catalogue(config: ReengagementConfig) -> Catalogue:
    """The configured catalogue, its targets checked against the NLU model's labels when known.

    Raises:
        CatalogueError: the file is missing or invalid.
        UnknownTargetError: a target is neither an event kind nor one of `config.intents`.
    """
    if config.intents is None:
        logger.info("follow-up targets not checked against the NLU model: no intent labels were given")
        return load_catalogue(config.catalogue)
    return load_catalogue(config.catalogue, vocabulary=TokenVocabulary.of(config.intents))


def plan_reengagement(
    engine: Engine,
    config: ReengagementConfig,
    *,
    now: datetime,
    model: SequenceModel | None = None,
    use_active_model: bool = True,
) -> ReengagementPlan:
    """Create today's re-engagement campaign and its deliveries: read, plan, write.

    Args:
        model: the next-event model to use; by default the active one from `model_runs`.
        use_active_model: False with `model=None` means: choose without a model (defaults).
    """
    catalogue = load_checked_catalogue(config)
    snapshot = read_planning_snapshot(engine, config, now=now)
    if model is None and use_active_model:
        model = load_run_model(snapshot.model_run)
    planned = plan_deliveries(snapshot, catalogue.messages, config, now=now, model=model, rng=config.rng(now))
    campaign_id = write_plan(engine, catalogue, planned, config, now=now)
    plan = ReengagementPlan(
        campaign_id=campaign_id,
        candidates=planned.candidates,
        pending=planned.pending,
        deferred=planned.deferred,
        skipped=planned.skipped,
        methods=planned.methods,
    )
    logger.info("re-engagement planned: %s", plan.summary())
    return plan
