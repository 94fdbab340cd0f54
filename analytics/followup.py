"""The follow-up chooser: which catalogue message to send a user next, and why.

Pure: no database, no clock, no global randomness. The scheduler passes in the user's recent
tokens, the catalogue, send history, response statistics, a model and an RNG, and gets back a
`FollowupChoice` whose `reason` a manager can read.
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

_UNKNOWN_TARGETS_LOGGED: set[tuple[int, str]] = set()


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
) -> FollowupChoice | None:
    """Choose the follow-up message for one user; None (logged) when no message is eligible.

    Messages outside the user's segment or inside their cooldown for this user are skipped.
    Users with fewer than `config.min_events` events, or when no model is given, get their
    segment's default message. Otherwise, with probability `exploration` the message is drawn by
    Thompson sampling on response rates (so new messages get a chance); else each message scores
    `model_weight * P(next token in its targets) + (1 - model_weight) * posterior response rate`;
    a message whose targets the model does not know gets only the response-rate term.
    """
    _check_exploration(exploration)
    proba = None
    if model is not None and len(history) >= config.min_events:
        proba = model.predict_proba([list(history)])[0]
    return _choose(history, messages, segment, last_sent, stats, model, proba, now, rng, exploration, config)


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
) -> Iterator[tuple[int, FollowupChoice | None]]:
    """Choose for many users, streaming: the model predicts one batch of histories at a time.

    Yields `(user_id, choice)` in input order; memory is bounded by `batch_size`, so a nightly
    run over 100k users does not hold every prediction at once.
    """
    _check_exploration(exploration)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[UserContext] = []
    for user in users:
        batch.append(user)
        if len(batch) == batch_size:
            yield from _choose_batch(batch, messages, stats, model, now, rng, exploration, config)
            batch = []
    if batch:
        yield from _choose_batch(batch, messages, stats, model, now, rng, exploration, config)


def _check_exploration(exploration: float) -> None:
    if not 0.0 <= exploration <= 1.0:
        raise ValueError(f"exploration must be in [0, 1], got {exploration}")


def _choose_batch(
    batch: list[UserContext],
    messages: Sequence[FollowupMessage],
    stats: Mapping[str, ResponseStats],
    model: SequenceModel | None,
    now: datetime,
    rng: np.random.Generator,
    exploration: float,
    config: ChooserConfig,
) -> Iterator[tuple[int, FollowupChoice | None]]:
    rows: dict[int, NDArray[np.float64]] = {}
    if model is not None:
        modelled = [position for position, user in enumerate(batch) if len(user.history) >= config.min_events]
        if modelled:
            proba = model.predict_proba([list(batch[position].history) for position in modelled])
            rows = {position: proba[offset] for offset, position in enumerate(modelled)}
    for position, user in enumerate(batch):
        choice = _choose(
            user.history,
            messages,
            user.segment,
            user.last_sent,
            stats,
            model,
            rows.get(position),
            now,
            rng,
            exploration,
            config,
        )
        yield user.user_id, choice


def _choose(
    history: Sequence[str],
    messages: Sequence[FollowupMessage],
    segment: str | None,
    last_sent: Mapping[str, datetime],
    stats: Mapping[str, ResponseStats],
    model: SequenceModel | None,
    proba: NDArray[np.float64] | None,
    now: datetime,
    rng: np.random.Generator,
    exploration: float,
    config: ChooserConfig,
) -> FollowupChoice | None:
    in_segment = [message for message in messages if message.eligible_for(segment)]
    candidates = [message for message in in_segment if not _cooling_down(message, last_sent, now)]
    if not candidates:
        logger.info(
            "no follow-up for segment %r: %d messages in the catalogue, %d for the segment, all in cooldown",
            segment,
            len(messages),
            len(in_segment),
        )
        return None
    if model is None or proba is None:
        why = (
            "no model is loaded"
            if model is None
            else f"only {len(history)} of the {config.min_events} events the model needs"
        )
        return _default_choice(candidates, segment, stats, config, why)
    if rng.random() < exploration:
        return _thompson_choice(candidates, stats, rng, config)
    return _model_choice(candidates, stats, model, proba, config)


def _cooling_down(message: FollowupMessage, last_sent: Mapping[str, datetime], now: datetime) -> bool:
    sent_at = last_sent.get(message.id)
    return sent_at is not None and now - sent_at < timedelta(days=message.cooldown_days)


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
    candidates: list[FollowupMessage],
    stats: Mapping[str, ResponseStats],
    model: SequenceModel,
    proba: NDArray[np.float64],
    config: ChooserConfig,
) -> FollowupChoice:
    index = {token: position for position, token in enumerate(model.classes_.tolist())}
    scored: list[tuple[float, FollowupMessage, str]] = []
    for message in candidates:
        known = [target for target in message.targets if target in index]
        rate = _rate(message, stats, config)
        if known:
            mass = float(sum(proba[index[target]] for target in known))
            score = config.model_weight * mass + (1.0 - config.model_weight) * rate
            reason = (
                f"model: {mass:.2f} probability of {'/'.join(known)} next; "
                f"{_rate_phrase(message, stats, config)}"
            )
        else:
            key = (id(model), message.id)
            if key not in _UNKNOWN_TARGETS_LOGGED:
                _UNKNOWN_TARGETS_LOGGED.add(key)
                logger.info(
                    "message %r: targets %s are unknown to the model; scored by response rate only",
                    message.id,
                    list(message.targets),
                )
            score = (1.0 - config.model_weight) * rate
            reason = (
                f"targets unknown to the model, response rate only; {_rate_phrase(message, stats, config)}"
            )
        scored.append((score, message, reason))
    score, message, reason = max(scored, key=lambda item: item[0])
    return FollowupChoice(message.id, score, f"{reason}; score {score:.2f}", METHOD_MODEL)
