"""What the demo measures from the store: segment recovery, next-event models, return rates."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sklearn.metrics import adjusted_rand_score
from sqlalchemy import Engine

from analytics.insights import current_segments, segment_members
from analytics.metrics import RankingReport, evaluate_next_event, time_split
from analytics.sequence import MarkovModel, NextEventModel, PopularityModel, stored_token
from store import iter_user_sequences, user_events
from store.analytics_results import run_memberships

__all__ = [
    "ModelComparison",
    "ReturnRates",
    "compare_sequence_models",
    "return_rates",
    "segment_agreement",
    "segments_vs_types",
]

logger = logging.getLogger(__name__)


def segment_agreement(engine: Engine, run_id: int, truth: Mapping[int, str]) -> tuple[float, int]:
    """Adjusted Rand index of a run's segments against the hidden types, and users compared.

    Only users both segmented and simulated count (the manager, for one, is neither).
    """
    users, segments = run_memberships(engine, run_id)
    pairs = [(truth[u], s) for u, s in zip(users, segments, strict=True) if u in truth]
    if len(pairs) < 2:
        return 0.0, len(pairs)
    return float(adjusted_rand_score([p[0] for p in pairs], [p[1] for p in pairs])), len(pairs)


@dataclass(frozen=True)
class ModelComparison:
    """Next-event ranking quality of the LSTM and its baselines on the same held-out events."""

    reports: dict[str, RankingReport]
    n_train_users: int
    cutoff: datetime
    lstm_dir: Path | None
    lstm: NextEventModel


def compare_sequence_models(
    engine: Engine,
    *,
    cutoff: datetime,
    users: Collection[int] | None = None,
    lstm_params: Mapping[str, object] | None = None,
    save_dir: Path | None = None,
    step: Callable[[str], None] | None = None,
) -> ModelComparison:
    """Train LSTM, Markov and popularity models on events before `cutoff`; rank the rest.

    Every event at or after the cutoff is a test target with the user's full history as its
    prefix, as the follow-up chooser would use the model in production.
    """
    sequences: list[list[str]] = []
    times: list[list[datetime]] = []
    for user_id, events in iter_user_sequences(engine):
        if users is not None and user_id not in users:
            continue
        sequences.append([stored_token(e.kind, e.intent, e.attributes) for e in events])
        times.append([e.ts for e in events])
    split = time_split(sequences, times, cutoff=cutoff)
    train = [s for s in split.train if len(s) >= 2]
    models: dict[str, NextEventModel | MarkovModel | PopularityModel] = {
        "lstm": NextEventModel(**dict(lstm_params or {})),  # type: ignore[arg-type]
        "markov": MarkovModel(),
        "popularity": PopularityModel(),
    }
    reports: dict[str, RankingReport] = {}
    for name, model in models.items():
        if step is not None:
            step(name)
        model.fit(train)
        reports[name] = evaluate_next_event(model, split.test_prefixes, split.test_targets)
        logger.info("%s on %d held-out events: %s", name, reports[name].n, reports[name].summary())
    lstm = models["lstm"]
    assert isinstance(lstm, NextEventModel)
    lstm_dir = None
    if save_dir is not None:
        lstm.save(save_dir)
        lstm_dir = save_dir
    return ModelComparison(
        reports=reports, n_train_users=len(train), cutoff=cutoff, lstm_dir=lstm_dir, lstm=lstm
    )


@dataclass(frozen=True)
class ReturnRates:
    """Share of users who came back after the re-engagement job: pushed versus holdout."""

    pushed: int
    pushed_returned: int
    holdout: int
    holdout_returned: int

    @property
    def pushed_rate(self) -> float:
        """Return rate of users who were sent a push."""
        return self.pushed_returned / self.pushed if self.pushed else 0.0

    @property
    def holdout_rate(self) -> float:
        """Return rate of eligible users held out of pushes."""
        return self.holdout_returned / self.holdout if self.holdout else 0.0


_INBOUND = frozenset({"message", "fallback", "command", "feedback", "callback", "reaction", "poll_answer"})


def _returned(engine: Engine, user_id: int, since: datetime) -> bool:
    return any(e.ts >= since and e.kind in _INBOUND for e in user_events(engine, user_id, limit=50))


def return_rates(
    engine: Engine, *, pushed: Collection[int], holdout: Collection[int], since: datetime
) -> ReturnRates:
    """Count, from the event log, who did anything at or after `since`."""
    return ReturnRates(
        pushed=len(pushed),
        pushed_returned=sum(_returned(engine, u, since) for u in pushed),
        holdout=len(holdout),
        holdout_returned=sum(_returned(engine, u, since) for u in holdout),
    )


def segments_vs_types(engine: Engine, truth: Mapping[int, str]) -> list[dict[str, Any]]:
    """Each current segment with the hidden types of its members and its purity.

    Purity is the share of the segment's simulated members who have its most common type.
    """
    rows: list[dict[str, Any]] = []
    for segment in current_segments(engine):
        types = [truth[u] for u in segment_members(engine, segment.id) if u in truth]
        counts = {name: types.count(name) for name in sorted(set(types))}
        dominant = max(counts, key=lambda k: counts[k]) if counts else None
        rows.append(
            {
                "name": segment.name,
                "size": segment.size,
                "hidden_types": counts,
                "dominant_type": dominant,
                "purity": round(counts[dominant] / len(types), 3) if dominant else 0.0,
            }
        )
    return rows
