"""Per-user behavioural features, aggregated in SQL, plus an RFM score managers know."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from store.analytics_queries import (
    DAYPARTS,
    NON_QUESTION_INTENTS,
    message_intents,
    sent_deliveries,
    to_epoch_days,
    user_feature_table,
)

logger = logging.getLogger(__name__)

# What the segmentation clusters on: behaviour, not identity or time of day.
CLUSTER_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "active_days",
    "tenure_days",
    "messages",
    "questions",
    "fallback_rate",
    "rating_centered",
    "community_actions",
    "community_share",
    "push_response_rate",
)
# Heavy-tailed counts are compressed with log1p before scaling so a few very active
# users do not become their own clusters.
LOG_COLUMNS: frozenset[str] = frozenset(
    {"recency_days", "active_days", "tenure_days", "messages", "questions", "community_actions"}
)


@dataclass(frozen=True)
class UserFeatures:
    """The feature table (one row per user, indexed by user id) and how it was computed.

    `intents` are the top question intents with a share column; `intent_counts` has every
    user's message count per intent (all intents), the intent part of rule baskets.
    """

    frame: pd.DataFrame
    as_of: datetime
    window_days: int
    intents: tuple[str, ...]
    intent_counts: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_users(self) -> int:
        """How many users have features."""
        return len(self.frame)


def _safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator with 0 where the denominator is 0 (no data is no rate)."""
    den = denominator.astype(float)
    return (numerator.astype(float) / den.where(den > 0)).fillna(0.0)


def _quintile(values: pd.Series, *, higher_is_better: bool) -> pd.Series:
    """RFM quintile 1-5 from ranks, so ties and skew never leave a quintile empty by error."""
    ranks = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(ranks * 5).clip(1, 5).astype(int)


def rfm_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Recency, frequency and "monetary" (message volume) quintiles and their sum."""
    scores = pd.DataFrame(index=frame.index)
    scores["rfm_r"] = _quintile(frame["recency_days"], higher_is_better=False)
    scores["rfm_f"] = _quintile(frame["active_days"], higher_is_better=True)
    scores["rfm_m"] = _quintile(frame["messages"], higher_is_better=True)
    scores["rfm_score"] = scores["rfm_r"] + scores["rfm_f"] + scores["rfm_m"]
    scores["rfm_code"] = (
        scores["rfm_r"].astype(str) + scores["rfm_f"].astype(str) + scores["rfm_m"].astype(str)
    )
    return scores


def compute_features(
    engine: Engine,
    *,
    as_of: datetime | None = None,
    window_days: int = 30,
    n_intents: int = 5,
) -> UserFeatures:
    """Aggregate every user's events before `as_of` in SQL and derive rates and scores.

    Args:
        engine: The store.
        as_of: The moment recency is measured from (default: now, UTC).
        window_days: The window of the frequency feature (active days in it).
        n_intents: How many of the most used question intents get a share column.
    """
    as_of = as_of or datetime.now(UTC)
    every = [intent for intent, _n in message_intents(engine, until=as_of)]
    intents = tuple([i for i in every if i not in NON_QUESTION_INTENTS][:n_intents])
    table = user_feature_table(
        engine, as_of=as_of, window_start=as_of - timedelta(days=window_days), intents=every
    )
    raw = pd.DataFrame.from_records(table.rows, columns=list(table.columns))
    if raw.empty:
        return UserFeatures(
            frame=_empty_frame(intents), as_of=as_of, window_days=window_days, intents=intents
        )
    raw = raw.set_index("user_id")
    raw.index = raw.index.astype("int64")
    now_days = to_epoch_days(as_of)
    f = pd.DataFrame(index=raw.index)
    f["recency_days"] = (now_days - raw["last_day"].astype(float)).clip(lower=0.0)
    f["tenure_days"] = (now_days - raw["first_day"].astype(float)).clip(lower=0.0)
    f["active_days"] = raw["active_days"].astype(int)
    f["events"] = raw["events"].astype(int)
    for name in ("messages", "questions", "unanswered", "feedbacks", "replies", "reactions", "poll_answers"):
        f[name] = raw[name].fillna(0).astype(int)
    f["fallback_rate"] = _safe_ratio(f["unanswered"], f["messages"])
    f["mean_rating"] = pd.to_numeric(raw["mean_rating"], errors="coerce").astype(float)
    f["rating_centered"] = ((f["mean_rating"] - 3.0) / 2.0).fillna(0.0)
    f["community_actions"] = f["replies"] + f["reactions"] + f["poll_answers"]
    f["community_share"] = _safe_ratio(f["community_actions"], f["events"])
    f["group_share"] = _safe_ratio(raw["group_messages"].fillna(0), f["messages"])
    delivered = pd.Series(sent_deliveries(engine, as_of=as_of), dtype="float64")
    pushes = np.maximum(raw["pushes"].fillna(0).astype(float), delivered.reindex(raw.index).fillna(0.0))
    f["pushes"] = pushes.astype(int)
    f["push_response_rate"] = _safe_ratio(raw["push_responses"].fillna(0), pushes).clip(upper=1.0)
    counts = pd.DataFrame(
        {intent: raw[f"intent_{index}"].fillna(0).astype("int64") for index, intent in enumerate(every)},
        index=raw.index,
    )
    for intent in intents:
        f[f"share_{intent}"] = _safe_ratio(counts[intent], f["messages"])
    for name, _start, _stop in DAYPARTS:
        f[f"hours_{name}"] = _safe_ratio(raw[f"hours_{name}"].fillna(0), f["events"])
    f = f.join(rfm_scores(f))
    logger.info("features for %d users as of %s", len(f), as_of.isoformat())
    return UserFeatures(frame=f, as_of=as_of, window_days=window_days, intents=intents, intent_counts=counts)


def _empty_frame(intents: tuple[str, ...]) -> pd.DataFrame:
    columns = [
        *CLUSTER_COLUMNS,
        "events",
        "unanswered",
        "mean_rating",
        "pushes",
        *(f"share_{i}" for i in intents),
        *(f"hours_{name}" for name, _s, _e in DAYPARTS),
        "rfm_r",
        "rfm_f",
        "rfm_m",
        "rfm_score",
        "rfm_code",
    ]
    return pd.DataFrame(columns=columns, index=pd.Index([], dtype="int64", name="user_id"))


def cluster_matrix(frame: pd.DataFrame, columns: tuple[str, ...] = CLUSTER_COLUMNS) -> np.ndarray:
    """The numeric matrix the segmenter sees: chosen columns, log1p on heavy-tailed counts."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"feature columns {missing} are not in the feature table")
    parts = []
    for column in columns:
        values = frame[column].astype(float).to_numpy()
        parts.append(np.log1p(np.clip(values, 0.0, None)) if column in LOG_COLUMNS else values)
    return np.column_stack(parts) if parts else np.empty((len(frame), 0))
