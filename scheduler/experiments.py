"""Broadcast experiments: planning rows by stable assignment, and the phased winner step.

Who gets what is a pure function of (experiment id, user id) and the shares, so re-planning (the
winner step, a re-run after a crash) puts everyone back in the same arm:

1. the global holdout first (`scheduler.policy.in_holdout`): a `skipped`/`holdout` row, outside
   the experiment;
2. then the control arm (`control_share` of the rest): a `skipped`/`control` row, so reports
   count it;
3. then the variants, in equal shares.

In phased mode ("winning variant") only users whose phase bucket falls under `test_share` are
planned at first (phase `test`); at `decide_at` the `experiments` job picks the winner from the
test phase's conversions (`analytics.experiments.pick_winner`: the default unless one variant is
significantly better) and plans every remaining eligible user once (phase `winner`), in one
transaction guarded by the experiment's status and the unique (campaign, user) constraint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from analytics.experiments import DEFAULT_ALPHA, assign_arm, assignment_bucket, pick_winner
from scheduler.errors import BroadcastError, ExperimentError, ExperimentNotFoundError
from scheduler.planning import check_text, segment_recipients
from scheduler.policy import in_holdout
from store.campaign_reports import Recipient
from store.campaigns import NewDelivery, get_campaign
from store.conversions import UnknownGoalError
from store.conversions import parse_goal as parse_campaign_goal
from store.db import unit_of_work
from store.experiments import (
    CONTROL,
    HOLDOUT,
    ArmCounts,
    ExperimentInfo,
    NewExperiment,
    VariantButton,
    VariantInfo,
    add_experiment,
    add_rows,
    arm_counts,
    due_experiments,
    get_experiment,
    record_winner,
)
from store.plans import NewCampaign, add_campaign
from store.vocabulary import CampaignKind, DeliveryStatus, ExperimentKind, ExperimentStatus

__all__ = [
    "MAX_VARIANTS",
    "MIN_VARIANTS",
    "VARIANT_KEYS",
    "ExperimentDraft",
    "VariantDraft",
    "arm_of",
    "check_draft",
    "create_experiment_broadcast",
    "decide_due_experiments",
    "decide_experiment",
    "experiment_key",
    "in_test_phase",
    "parse_goal",
    "plan_rows",
]

logger = logging.getLogger(__name__)

VARIANT_KEYS = "ABCDEFGH"
MIN_VARIANTS, MAX_VARIANTS = 2, 8
MAX_BUTTONS = 8
MAX_BUTTON_TEXT = 64
TEST, WINNER = "test", "winner"
RETURN_GOAL, CLICK_GOAL = "return", "click"
PRODUCT_GOAL = "product:"


@dataclass(frozen=True)
class VariantDraft:
    """One variant as a manager writes it: the text and, optionally, buttons."""

    text: str
    buttons: tuple[VariantButton, ...] = ()


@dataclass(frozen=True)
class ExperimentDraft:
    """What a manager asks for: the variants, the shares, the goal and (phased) when to pick the winner.

    Args:
        variants: 2 to 8 variants, keyed "A", "B", ... in this order.
        control_share: Share of the (non-holdout) audience that gets nothing.
        test_share: Phased mode: share that gets the variants first (None: everyone at once).
        pick_winner_after: Phased mode: how long after the send the winner is picked.
        default_variant: Sent to the rest when no variant is significantly better.
        goal: `return` (any event), `click` (a callback button pressed) or `product:<event>`.
        window_hours: How long after a send a conversion counts.
    """

    variants: tuple[VariantDraft, ...]
    control_share: float = 0.0
    test_share: float | None = None
    pick_winner_after: timedelta | None = None
    default_variant: str = "A"
    goal: str = "return"
    window_hours: float = 48.0

    @property
    def phased(self) -> bool:
        """Whether the winner is sent to the rest after a test phase."""
        return self.test_share is not None


def parse_goal(goal: str) -> str:
    """The goal, checked: `return`, `click` or `product:<event>` (written out: no bare event name).

    `click` is an experiment's own goal; the others are checked by campaigns' goal parser
    (`store.conversions.parse_goal`), so both accept the same product event names.

    Raises:
        ExperimentError: for anything else.
    """
    value = goal.strip()
    if value == CLICK_GOAL:
        return value
    if value != RETURN_GOAL and not value.startswith(PRODUCT_GOAL):
        raise ExperimentError(f"goal {goal!r}: expected return, click or product:<event name>")
    try:
        return parse_campaign_goal(value)
    except UnknownGoalError as exc:
        raise ExperimentError(str(exc)) from exc


def _check_buttons(key: str, buttons: Sequence[VariantButton]) -> None:
    if len(buttons) > MAX_BUTTONS:
        raise ExperimentError(f"variant {key} has {len(buttons)} buttons; at most {MAX_BUTTONS}")
    for button in buttons:
        if not button.text.strip() or len(button.text) > MAX_BUTTON_TEXT:
            raise ExperimentError(f"variant {key}: a button label needs 1 to {MAX_BUTTON_TEXT} characters")
        if button.url is not None and not button.url.startswith(("https://", "http://", "tg://")):
            raise ExperimentError(f"variant {key}: button URL {button.url!r} must start with https://")


def check_draft(draft: ExperimentDraft) -> list[VariantInfo]:
    """The variants as stored (keyed, texts stripped, the default marked) once every rule holds.

    Raises:
        ExperimentError: naming the first rule broken.
    """
    count = len(draft.variants)
    if not MIN_VARIANTS <= count <= MAX_VARIANTS:
        raise ExperimentError(f"an experiment needs {MIN_VARIANTS} to {MAX_VARIANTS} variants, got {count}")
    if not 0.0 <= draft.control_share < 1.0:
        raise ExperimentError(f"the control share must lie in [0, 1), got {draft.control_share}")
    if draft.phased:
        share = draft.test_share or 0.0
        if not 0.0 < share < 1.0:
            raise ExperimentError(f"the test share must lie strictly between 0 and 1, got {draft.test_share}")
        if draft.pick_winner_after is None or draft.pick_winner_after <= timedelta(0):
            raise ExperimentError("a test share needs a positive --pick-winner-after duration")
    elif draft.pick_winner_after is not None:
        raise ExperimentError("--pick-winner-after needs a test share (--test-share)")
    if draft.window_hours <= 0:
        raise ExperimentError(f"the conversion window must be positive, got {draft.window_hours} h")
    keys = VARIANT_KEYS[:count]
    default = draft.default_variant.strip().upper()
    if default not in keys:
        raise ExperimentError(f"default variant {draft.default_variant!r} is not one of {', '.join(keys)}")
    goal = parse_goal(draft.goal)
    variants = []
    for key, variant in zip(keys, draft.variants, strict=True):
        try:
            text = check_text(variant.text)
        except ValueError as exc:
            raise ExperimentError(f"variant {key}: {exc}") from exc
        _check_buttons(key, variant.buttons)
        variants.append(VariantInfo(key, text, tuple(variant.buttons), key == default))
    if goal == CLICK_GOAL and not any(b.trackable for v in variants for b in v.buttons):
        raise ExperimentError("goal click needs at least one variant with a callback (non-URL) button")
    return variants


def experiment_key(experiment_id: int) -> str:
    """The salt of an experiment's assignment: stable for as long as the experiment exists."""
    return f"experiment:{experiment_id}"


def arm_of(experiment_id: int, user_id: int, keys: Sequence[str], control_share: float) -> str:
    """The user's arm: "control" for `control_share` of users, else one of `keys` in equal shares."""
    weights: dict[str, float] = {CONTROL: control_share} if control_share > 0 else {}
    weights.update({key: (1.0 - control_share) / len(keys) for key in keys})
    return assign_arm(experiment_key(experiment_id), user_id, weights)


def in_test_phase(experiment_id: int, user_id: int, test_share: float) -> bool:
    """Whether the user belongs to the test share (a hash independent of the arm's)."""
    return assignment_bucket(f"{experiment_key(experiment_id)}:phase", user_id) < test_share


def _row(
    recipient: Recipient, *, arm: str | None, text: str, due: datetime, phase: str | None, reason: str | None
) -> NewDelivery:
    status = DeliveryStatus.PENDING if reason is None else DeliveryStatus.SKIPPED
    return NewDelivery(
        recipient.user_id, recipient.user_id, text, due, status, reason, variant=arm, phase=phase
    )


def plan_rows(
    experiment_id: int,
    recipients: Sequence[Recipient],
    variants: Sequence[VariantInfo],
    *,
    control_share: float,
    holdout_share: float,
    due: datetime,
    phase: str | None,
    test_share: float | None = None,
    winner: str | None = None,
) -> list[NewDelivery]:
    """The rows of one planning step: holdout first, then control, then the variants (or the winner).

    Args:
        phase: "test" plans only users in the test share; "winner" plans everyone given, with the
            winner's text; None (not phased) plans everyone with their own variant.
    """
    texts = {v.key: v.text for v in variants}
    keys = [v.key for v in variants]
    rows = []
    for recipient in recipients:
        user = recipient.user_id
        if in_holdout(user, holdout_share):
            rows.append(_row(recipient, arm=None, text=texts[keys[0]], due=due, phase=None, reason=HOLDOUT))
            continue
        if phase == TEST and not in_test_phase(experiment_id, user, test_share or 0.0):
            continue
        arm = arm_of(experiment_id, user, keys, control_share)
        if arm == CONTROL:
            rows.append(
                _row(recipient, arm=CONTROL, text=texts[keys[0]], due=due, phase=phase, reason=CONTROL)
            )
            continue
        sent_arm = winner if phase == WINNER and winner is not None else arm
        rows.append(_row(recipient, arm=sent_arm, text=texts[sent_arm], due=due, phase=phase, reason=None))
    return rows


def create_experiment_broadcast(
    engine: Engine,
    *,
    segment: str,
    draft: ExperimentDraft,
    at: datetime,
    now: datetime,
    holdout_share: float,
    created_by: int | None = None,
) -> tuple[int, int]:
    """Create a broadcast campaign carrying an experiment, with its first rows; (campaign id, experiment id).

    The campaign, the experiment, its variants and its rows are one transaction, so the delivery
    loop never sees one without the others.

    Raises:
        ExperimentError: bad variants, shares, goal or default.
        BroadcastError: bad segment or a naive time.
    """
    if at.tzinfo is None:
        raise ExperimentError(f"the send time {at!r} has no time zone")
    variants = check_draft(draft)
    recipients = segment_recipients(engine, segment, now=now)
    default = next(v for v in variants if v.is_default)
    phased = draft.phased
    after = draft.pick_winner_after
    with unit_of_work(engine) as session:
        campaign_id = add_campaign(
            session,
            NewCampaign(
                kind=CampaignKind.BROADCAST,
                name=f"experiment: broadcast to {segment}",
                segment=segment,
                text=default.text,
                scheduled_at=at,
                created_by=created_by,
            ),
            (),
            now=now,
        )
        experiment_id = add_experiment(
            session,
            campaign_id,
            NewExperiment(
                kind=ExperimentKind.BROADCAST,
                name=f"broadcast to {segment}",
                goal=parse_goal(draft.goal),
                window_hours=draft.window_hours,
                control_share=draft.control_share,
                status=ExperimentStatus.TESTING if phased else ExperimentStatus.RUNNING,
                test_share=draft.test_share,
                pick_winner_after_s=int(after.total_seconds()) if after is not None else None,
                decide_at=at + after if phased and after is not None else None,
            ),
            variants,
            now=now,
        )
        rows = plan_rows(
            experiment_id,
            recipients,
            variants,
            control_share=draft.control_share,
            holdout_share=holdout_share,
            due=at,
            phase=TEST if phased else None,
            test_share=draft.test_share,
        )
        add_rows(session, campaign_id, rows, now=now)
    logger.info(
        "experiment %d (campaign %d) to %r: %d variants, %d rows planned%s",
        experiment_id,
        campaign_id,
        segment,
        len(variants),
        len(rows),
        f", winner at {at + after:%Y-%m-%d %H:%M} UTC" if phased and after is not None else "",
    )
    return campaign_id, experiment_id


def decide_experiment(
    engine: Engine, experiment_id: int, *, now: datetime, holdout_share: float, alpha: float = DEFAULT_ALPHA
) -> str | None:
    """Pick the winner of a phased experiment and plan it for everyone not yet planned; the decision.

    Safe to call any number of times and from several processes: only the call that moves the
    experiment from `testing` to `decided` plans rows (see `store.experiments.record_winner`).
    Returns None when this call decided nothing (not testing, already decided, or cancelled).

    Raises:
        ExperimentNotFoundError: no experiment has this id.
    """
    experiment = get_experiment(engine, experiment_id)
    if experiment is None:
        raise ExperimentNotFoundError(f"no experiment #{experiment_id}")
    if experiment.status != ExperimentStatus.TESTING or experiment.campaign_id is None:
        return None
    campaign = get_campaign(engine, experiment.campaign_id)
    if campaign is None:
        return None
    decision = _pick(experiment, arm_counts(engine, experiment, phase=TEST), alpha=alpha)
    winner, text = decision
    try:
        recipients = segment_recipients(engine, campaign.segment, now=now)
    except BroadcastError as exc:  # e.g. a learned segment gone with a new analytics run
        logger.error("experiment %d: cannot plan the winner for the rest: %s", experiment.id, exc)
        recipients = []
        text += f"; but the rest of the audience could not be found ({exc}): the winner was sent to no one"
    rows = plan_rows(
        experiment.id,
        recipients,
        experiment.variants,
        control_share=experiment.control_share,
        holdout_share=holdout_share,
        due=now,
        phase=WINNER,
        winner=winner,
    )
    if not record_winner(engine, experiment.id, winner=winner, decision=text, rows=rows, now=now):
        return None
    logger.info("experiment %d: %s", experiment.id, text)
    return text


def _pick(experiment: ExperimentInfo, counts: dict[str, ArmCounts], *, alpha: float) -> tuple[str, str]:
    """The winner by the goal's conversions in the test phase, and the decision as one sentence."""
    keys = [v.key for v in experiment.variants]
    sends = {key: counts.get(key, ArmCounts()).sends for key in keys}
    conversions = {key: counts.get(key, ArmCounts()).converted for key in keys}
    result = pick_winner(conversions, sends, default=experiment.default_variant, alpha=alpha)
    figures = ", ".join(f"{k} {conversions[k]}/{sends[k]}" for k in keys)
    if result.declared:
        return result.arm, f"winner {result.arm} (test phase {figures}): {result.reason}"
    return (
        result.arm,
        f"no significant winner (test phase {figures}): sent the default {result.arm}; {result.reason}",
    )


def decide_due_experiments(
    engine: Engine, *, now: datetime, holdout_share: float, alpha: float = DEFAULT_ALPHA
) -> list[str]:
    """Decide every phased experiment whose `decide_at` has passed; one line per decision made."""
    lines = []
    for experiment_id in due_experiments(engine, now=now):
        decision = decide_experiment(engine, experiment_id, now=now, holdout_share=holdout_share, alpha=alpha)
        if decision is not None:
            lines.append(f"#{experiment_id}: {decision}")
    return lines
