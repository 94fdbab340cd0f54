"""The follow-up chooser: which catalogue message to send a user next, and why.

Pure: no database, no clock, no global randomness and no module state. The scheduler passes in
the user's recent tokens, the catalogue, send history, response statistics, a model and an RNG,
and gets back a `FollowupChoice` whose `reason` a manager can read. What has been logged already
lives in an `UnknownTargetLog` the caller owns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from analytics.catalogue import FollowupMessage
from analytics.sequence.base import SequenceModel

logger = logging.getLogger(__name__)

METHOD_MODEL = "model"
METHOD_EXPLORATION = "exploration"
METHOD_DEFAULT = "default"
METHOD_RESPONSE_RATE = "response_rate"


@dataclass
class UnknownTargetLog:
    """The messages already reported as having targets the model does not know.

    One per model and caller: a planning run (or a loop calling `choose_followup` per user) passes
    the same log to every call, so each message is reported once rather than once per user. Each
    `choose_followups` call without one starts its own.
    """

    reported: set[str] = field(default_factory=set)

    def report(self, message: FollowupMessage) -> None:
        """Log (once) that `message`'s targets are unknown to the model."""
        if message.id in self.reported:
            return
        self.reported.add(message.id)
        logger.info(
            "message %r: targets %s are unknown to the model; scored by response rate only",
            message.id,
            list(message.targets),
        )


@dataclass(frozen=True)
class ResponseStats:
    """How often a message was sent and how often users responded to it."""

    sent: int = 0
    responded: int = 0

    def __post_init__(self) -> None:
        if self.sent < 0 or not 0 <= self.responded <= self.sent:
            raise ValueError(f"need 0 <= responded <= sent, got sent={self.sent} responded={self.responded}")


@dataclass(frozen=True)
class FollowupChoice:
    """The chosen message, its score, a human sentence saying why, and how it was chosen."""

    message_id: str
    score: float
    reason: str
    method: str


@dataclass(frozen=True)
class ChooserConfig:
    """Knobs of the chooser.

    Args:
        min_events: users with fewer events get their segment's default message (the model
            knows too little about them).
        model_weight: weight of the model's probability mass in the score; the rest goes to the
            Beta-posterior response rate.
        prior_responded: Beta prior pseudo-count of responses (alpha).
        prior_ignored: Beta prior pseudo-count of non-responses (beta).
    """

    min_events: int = 3
    model_weight: float = 0.7
    prior_responded: float = 1.0
    prior_ignored: float = 1.0

    def __post_init__(self) -> None:
        if self.min_events < 0:
            raise ValueError(f"min_events must be >= 0, got {self.min_events}")
        if not 0.0 <= self.model_weight <= 1.0:
            raise ValueError(f"model_weight must be in [0, 1], got {self.model_weight}")
        if self.prior_responded <= 0 or self.prior_ignored <= 0:
            raise ValueError(
                f"Beta prior counts must be > 0, got {self.prior_responded} and {self.prior_ignored}"
            )


@dataclass(frozen=True)
class UserContext:
    """What the chooser needs to know about one user."""

    user_id: int
    history: tuple[str, ...]
    segment: str | None = None
    last_sent: Mapping[str, datetime] = field(default_factory=dict)


def choose_followup(
    history: Sequence[str],
    messages: Sequence[FollowupMessage],
    *,
    segment: str | None,
    last_sent: Mapping[str, datetime],
    stats: Mapping[str, ResponseStats],
    model: SequenceModel | None,
    now: datetime,
    rng: np.random.Generator,
    exploration: float = 0.1,
    config: ChooserConfig = ChooserConfig(),
    unknown_targets: UnknownTargetLog | None = None,
) -> FollowupChoice | None:
    """Choose the follow-up message for one user; None (logged) when no message is eligible.

    Messages outside the user's segment or inside their cooldown for this user are skipped.
    Users with fewer than `config.min_events` events, or when no model is given, get their
    segment's default message. Otherwise, with probability `exploration` the message is drawn by
    Thompson sampling on response rates (so new messages get a chance); else each message scores
    `model_weight * P(next token in its targets) + (1 - model_weight) * posterior response rate`;
    a message whose targets the model does not know gets only the response-rate term (and is
    reported once to `unknown_targets`, a fresh log when None).
    """
    _check_exploration(exploration)
    user = UserContext(user_id=0, history=tuple(history), segment=segment, last_sent=last_sent)
    plan = _Plan(messages, stats, model, config, unknown_targets or UnknownTargetLog())
    return next(_choose_batch([user], plan, now, rng, exploration))[1]


def choose_followups(
    users: Iterable[UserContext],
    messages: Sequence[FollowupMessage],
    *,
    stats: Mapping[str, ResponseStats],
    model: SequenceModel | None,
    now: datetime,
    rng: np.random.Generator,
    exploration: float = 0.1,
    config: ChooserConfig = ChooserConfig(),
    batch_size: int = 1024,
    unknown_targets: UnknownTargetLog | None = None,
) -> Iterator[tuple[int, FollowupChoice | None]]:
    """Choose for many users, streaming: the model predicts one batch of histories at a time.

    Yields `(user_id, choice)` in input order; memory is bounded by `batch_size`, so a nightly
    run over 100k users does not hold every prediction at once. Each batch is scored with numpy
    (one probability-mass matrix for the whole batch); the result for each user, and the draws
    taken from `rng`, are exactly those of calling `choose_followup` for each user in turn.
    """
    _check_exploration(exploration)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    plan = _Plan(messages, stats, model, config, unknown_targets or UnknownTargetLog())
    batch: list[UserContext] = []
    for user in users:
        batch.append(user)
        if len(batch) == batch_size:
            yield from _choose_batch(batch, plan, now, rng, exploration)
            batch = []
    if batch:
        yield from _choose_batch(batch, plan, now, rng, exploration)


def _check_exploration(exploration: float) -> None:
    if not 0.0 <= exploration <= 1.0:
        raise ValueError(f"exploration must be in [0, 1], got {exploration}")


class _Plan:
    """What the chooser precomputes once per call: rates, phrases and the model's target columns."""

    def __init__(
        self,
        messages: Sequence[FollowupMessage],
        stats: Mapping[str, ResponseStats],
        model: SequenceModel | None,
        config: ChooserConfig,
        unknown_targets: UnknownTargetLog,
    ) -> None:
        self.messages = list(messages)
        self.unknown_targets = unknown_targets
        self.stats = stats
        self.model = model
        self.config = config
        self.ids = {message.id: position for position, message in enumerate(self.messages)}
        self.rates = np.array([_rate(message, stats, config) for message in self.messages], dtype=np.float64)
        self.phrases = [_rate_phrase(message, stats, config) for message in self.messages]
        self.cooldowns = [timedelta(days=message.cooldown_days) for message in self.messages]
        self.conditional = [
            position for position, message in enumerate(self.messages) if message.requires or message.excludes
        ]
        self._segments: dict[str | None, NDArray[np.bool_]] = {}
        index = (
            {} if model is None else {token: column for column, token in enumerate(model.classes_.tolist())}
        )
        self.known = [[target for target in message.targets if target in index] for message in self.messages]
        self.columns = [[index[target] for target in known] for known in self.known]
        self.unknown = np.array([not known for known in self.known], dtype=np.bool_)

    def in_segment(self, segment: str | None) -> NDArray[np.bool_]:
        mask = self._segments.get(segment)
        if mask is None:
            mask = np.array([message.eligible_for(segment) for message in self.messages], dtype=np.bool_)
            self._segments[segment] = mask
        return mask

    def candidates(self, user: UserContext, now: datetime) -> tuple[NDArray[np.bool_], int]:
        """The user's eligible messages (segment, history conditions, cooldown); how many fit the segment."""
        in_segment = self.in_segment(user.segment)
        if not user.last_sent and not self.conditional:
            return in_segment, int(in_segment.sum())
        mask = in_segment.copy()
        if self.conditional:
            seen = set(user.history)
            for conditional in self.conditional:
                if mask[conditional] and not self.messages[conditional].fits(seen):
                    mask[conditional] = False
        for message_id, sent_at in user.last_sent.items():
            position = self.ids.get(message_id)
            if position is not None and now - sent_at < self.cooldowns[position]:
                mask[position] = False
        return mask, int(in_segment.sum())

    def scores(self, proba: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """`(mass, score)` of every message for each probability row, summed in target order."""
        weight = self.config.model_weight
        mass = np.zeros((len(proba), len(self.messages)), dtype=np.float64)
        for position, columns in enumerate(self.columns):
            if columns:
                total = proba[:, columns[0]].copy()
                for column in columns[1:]:
                    total += proba[:, column]
                mass[:, position] = total
        base = (1.0 - weight) * self.rates
        score = np.where(self.unknown, base, weight * mass + base)
        return mass, score


def _choose_batch(
    batch: list[UserContext],
    plan: _Plan,
    now: datetime,
    rng: np.random.Generator,
    exploration: float,
) -> Iterator[tuple[int, FollowupChoice | None]]:
    config, model = plan.config, plan.model
    eligible = [plan.candidates(user, now) for user in batch]
    rows: dict[int, int] = {}
    mass = score = np.zeros((0, len(plan.messages)), dtype=np.float64)
    if model is not None:
        modelled = [
            position
            for position, user in enumerate(batch)
            if len(user.history) >= config.min_events and eligible[position][0].any()
        ]
        if modelled:
            proba = model.predict_proba([list(batch[position].history) for position in modelled])
            mass, score = plan.scores(proba)
            rows = {position: offset for offset, position in enumerate(modelled)}
    for position, user in enumerate(batch):
        mask, n_segment = eligible[position]
        if not mask.any():
            logger.info(
                "no follow-up for segment %r: %d messages in the catalogue, %d for the segment, "
                "all in cooldown",
                user.segment,
                len(plan.messages),
                n_segment,
            )
            yield user.user_id, None
            continue
        candidates = [plan.messages[index] for index in np.flatnonzero(mask).tolist()]
        row = rows.get(position)
        if model is None or row is None:
            why = (
                "no model is loaded"
                if model is None
                else f"only {len(user.history)} of the {config.min_events} events the model needs"
            )
            yield user.user_id, _default_choice(candidates, user.segment, plan.stats, config, why)
        elif rng.random() < exploration:
            yield user.user_id, _thompson_choice(candidates, plan.stats, rng, config)
        else:
            yield user.user_id, _model_choice(plan, mask, mass[row], score[row])


def _rate(message: FollowupMessage, stats: Mapping[str, ResponseStats], config: ChooserConfig) -> float:
    observed = stats.get(message.id, ResponseStats())
    return (observed.responded + config.prior_responded) / (
        observed.sent + config.prior_responded + config.prior_ignored
    )


def _rate_phrase(message: FollowupMessage, stats: Mapping[str, ResponseStats], config: ChooserConfig) -> str:
    observed = stats.get(message.id, ResponseStats())
    rate = _rate(message, stats, config)
    if observed.sent == 0:
        return f"no sends yet (prior response rate {rate:.0%})"
    return f"response rate {rate:.0%} over {observed.sent} sends"


def _default_choice(
    candidates: list[FollowupMessage],
    segment: str | None,
    stats: Mapping[str, ResponseStats],
    config: ChooserConfig,
    why: str,
) -> FollowupChoice:
    for message in candidates:
        if message.default and segment is not None and segment in message.segments:
            return FollowupChoice(message.id, 1.0, f"default for segment {segment!r}: {why}", METHOD_DEFAULT)
    for message in candidates:
        if message.default and not message.segments:
            return FollowupChoice(message.id, 1.0, f"global default: {why}", METHOD_DEFAULT)
    best = max(candidates, key=lambda message: _rate(message, stats, config))
    reason = (
        f"best response rate ({why}; no default message is available): {_rate_phrase(best, stats, config)}"
    )
    return FollowupChoice(best.id, _rate(best, stats, config), reason, METHOD_RESPONSE_RATE)


def _thompson_choice(
    candidates: list[FollowupMessage],
    stats: Mapping[str, ResponseStats],
    rng: np.random.Generator,
    config: ChooserConfig,
) -> FollowupChoice:
    draws = []
    for message in candidates:
        observed = stats.get(message.id, ResponseStats())
        draws.append(
            rng.beta(
                observed.responded + config.prior_responded,
                observed.sent - observed.responded + config.prior_ignored,
            )
        )
    best = int(np.argmax(draws))
    message = candidates[best]
    phrase = _rate_phrase(message, stats, config)
    reason = f"exploration: Thompson sample {draws[best]:.2f} was the highest; {phrase}"
    return FollowupChoice(message.id, float(draws[best]), reason, METHOD_EXPLORATION)


def _model_choice(
    plan: _Plan, mask: NDArray[np.bool_], mass: NDArray[np.float64], score: NDArray[np.float64]
) -> FollowupChoice:
    """The candidate with the highest score; the first in catalogue order on ties."""
    for position in np.flatnonzero(mask & plan.unknown).tolist():
        plan.unknown_targets.report(plan.messages[position])
    best = int(np.argmax(np.where(mask, score, -np.inf)))
    message, phrase, best_score = plan.messages[best], plan.phrases[best], float(score[best])
    if plan.known[best]:
        reason = f"model: {float(mass[best]):.2f} probability of {'/'.join(plan.known[best])} next; {phrase}"
    else:
        reason = f"targets unknown to the model, response rate only; {phrase}"
    return FollowupChoice(message.id, best_score, f"{reason}; score {best_score:.2f}", METHOD_MODEL)
