"""The re-engagement job's planning: who is due a push, which message, and when it may go out.

Eligible: inactive for their segment's threshold, not opted out or blocked (the store query),
not in the holdout, not capped. Holdout and capped users get a `skipped` row with the reason,
so reports count them (the holdout is the control group of the uplift). Everyone else gets the
follow-up model's choice, with its score and reason, due at once or at the end of their
quiet hours.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from analytics import current_segments, segment_members
from analytics.catalogue import Catalogue, load_catalogue
from analytics.errors import AnalyticsError
from analytics.followup import ResponseStats, UserContext, choose_followups
from analytics.sequence import SequenceModel, event_token, load_model
from scheduler.policy import InactivityRule, QuietHours, in_holdout
from store import Settings
from store.campaign_reports import reachable_recipients, recently_pushed
from store.campaigns import SKIPPED, NewDelivery, create_campaign
from store.followups import FollowupRow, last_sends, recent_events, response_stats, sync_followups
from store.model_runs import active_model_run

logger = logging.getLogger(__name__)

REENGAGEMENT = "reengagement"
FOLLOWUP_MODEL_KIND = "followup"
HISTORY_DAYS = 180
HISTORY_EVENTS = 50


@dataclass(frozen=True)
class ReengagementConfig:
    """Knobs of the re-engagement job (see the settings of the same names)."""

    inactivity: InactivityRule = field(default_factory=InactivityRule)
    cap_days: int = 7
    holdout_share: float = 0.1
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    exploration: float = 0.1
    catalogue: Path | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.cap_days < 0 or not 0.0 <= self.holdout_share <= 1.0:
            raise ValueError(f"need cap_days >= 0 and holdout_share in [0, 1], got {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ReengagementConfig:
        """The configuration the settings describe."""
        return cls(
            inactivity=InactivityRule(settings.reengage_inactive_days, dict(settings.reengage_segment_days)),
            cap_days=settings.push_cap_days,
            holdout_share=settings.holdout_share,
            quiet_hours=QuietHours(
                settings.quiet_hours_start, settings.quiet_hours_end, settings.default_timezone
            ),
            exploration=settings.followup_exploration,
            catalogue=settings.followup_catalogue,
        )


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
            f"({self.deferred} deferred past quiet hours), skipped: {skipped}"
        )


def user_segments(engine: Engine) -> dict[int, str]:
    """user id → name of their segment in the current analytics run (empty before the first run)."""
    found: dict[int, str] = {}
    for segment in current_segments(engine):
        for user_id in segment_members(engine, segment.id):
            found[user_id] = segment.name
    return found


def load_active_model(engine: Engine) -> SequenceModel | None:
    """The active follow-up model, or None (the chooser then sends each segment's default).

    A model that cannot be loaded is logged and not used: a push with a default message beats
    no push, and retraining records a fresh model the next night.
    """
    run = active_model_run(engine, FOLLOWUP_MODEL_KIND)
    if run is None:
        return None
    try:
        return load_model(run.artefact_path)
    except (AnalyticsError, OSError, ValueError) as exc:
        logger.error("active follow-up model %d at %s cannot be loaded: %s", run.id, run.artefact_path, exc)
        return None


def sync_catalogue(engine: Engine, catalogue: Catalogue, *, now: datetime) -> None:
    """Store the catalogue's messages so deliveries and statistics can refer to them."""
    rows = [
        FollowupRow(m.id, m.text_en, m.text_zh, m.targets, m.segments, m.cooldown_days, m.default)
        for m in catalogue.messages
    ]
    sync_followups(engine, rows, now=now)


def plan_reengagement(
    engine: Engine,
    config: ReengagementConfig,
    *,
    now: datetime,
    model: SequenceModel | None = None,
    use_active_model: bool = True,
) -> ReengagementPlan:
    """Create today's re-engagement campaign and its deliveries.

    Args:
        model: the next-event model to use; by default the active one from `model_runs`.
        use_active_model: False with `model=None` means: choose without a model (defaults).
    """
    catalogue = load_catalogue(config.catalogue)
    sync_catalogue(engine, catalogue, now=now)
    segments = user_segments(engine)
    rule = config.inactivity
    recipients = reachable_recipients(engine, inactive_since=now - timedelta(days=rule.shortest))
    due = [
        r for r in recipients if r.last_seen < now - timedelta(days=rule.days_for(segments.get(r.user_id)))
    ]
    skipped: Counter[str] = Counter()
    rows: list[NewDelivery] = []

    def due_time(time_zone: str | None) -> datetime:
        return config.quiet_hours.next_allowed(now, time_zone)

    holdout = [r for r in due if in_holdout(r.user_id, config.holdout_share)]
    for r in holdout:
        rows.append(
            NewDelivery(r.user_id, r.user_id, "", due_time(r.time_zone), status=SKIPPED, reason="holdout")
        )
    treated = [r for r in due if not in_holdout(r.user_id, config.holdout_share)]
    capped = recently_pushed(
        engine,
        [r.user_id for r in treated],
        since=now - timedelta(days=config.cap_days),
        kinds=(REENGAGEMENT,),
    )
    for r in treated:
        if r.user_id in capped:
            rows.append(
                NewDelivery(r.user_id, r.user_id, "", due_time(r.time_zone), status=SKIPPED, reason="capped")
            )
    skipped.update(row.reason or "" for row in rows)
    targets = [r for r in treated if r.user_id not in capped]
    if model is None and use_active_model:
        model = load_active_model(engine)
    ids = [r.user_id for r in targets]
    histories = recent_events(engine, ids, since=now - timedelta(days=HISTORY_DAYS), limit=HISTORY_EVENTS)
    sends = last_sends(engine, ids)
    stats = {key: ResponseStats(sent, responded) for key, (sent, responded) in response_stats(engine).items()}
    contexts = (
        UserContext(
            user_id=r.user_id,
            history=tuple(event_token(kind, intent) for kind, intent in histories.get(r.user_id, [])),
            segment=segments.get(r.user_id),
            last_sent=sends.get(r.user_id, {}),
        )
        for r in targets
    )
    seed = config.seed if config.seed is not None else int(f"{now:%Y%m%d}")
    by_id = {r.user_id: r for r in targets}
    methods: Counter[str] = Counter()
    deferred = 0
    for user_id, choice in choose_followups(
        contexts,
        catalogue.messages,
        stats=stats,
        model=model,
        now=now,
        rng=np.random.default_rng(seed),
        exploration=config.exploration,
    ):
        recipient = by_id[user_id]
        when = due_time(recipient.time_zone)
        if choice is None:
            rows.append(NewDelivery(user_id, user_id, "", when, status=SKIPPED, reason="no_message"))
            skipped["no_message"] += 1
            continue
        message = catalogue.get(choice.message_id)
        deferred += when > now
        methods[choice.method] += 1
        rows.append(
            NewDelivery(
                user_id,
                user_id,
                message.text(recipient.language),
                when,
                followup_id=message.id,
                score=choice.score,
                choice_reason=choice.reason,
            )
        )
    campaign_id = create_campaign(
        engine,
        kind=REENGAGEMENT,
        name=f"re-engagement {now:%Y-%m-%d %H:%M}",
        segment=f"inactive:{rule.default_days}",
        text=None,
        scheduled_at=now,
        now=now,
        attributes={
            "inactive_days": rule.default_days,
            "segment_days": dict(rule.by_segment),
            "cap_days": config.cap_days,
            "holdout_share": config.holdout_share,
        },
        deliveries=rows,
    )
    plan = ReengagementPlan(
        campaign_id=campaign_id,
        candidates=len(due),
        pending=sum(methods.values()),
        deferred=deferred,
        skipped=dict(skipped),
        methods=dict(methods),
    )
    logger.info("re-engagement planned: %s", plan.summary())
    return plan
