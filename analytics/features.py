"""Per-user behavioural features, aggregated in SQL, plus an RFM score managers know.

What the segmentation sees has three families:

- volume and engagement (active days, messages, questions, community actions), log1p-compressed;
- lifecycle: tenure (days since first seen), recency, and the activity trend (recent vs
  earlier activity rate), so newcomers and users drifting away are told from steady ones
  with the same volume;
- what users ask about: the few main components ("topics") of each user's intent mix.

The intent mix matters because low-volume users differ mostly in *what* they ask: a
billing-and-outage complainer, an onboarding newcomer and an occasional pricing asker have
similar counts. Without it, such groups merge into one "casual" segment whatever k is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics.traits import (
    AGE_PREFIX,
    CATEGORY_PREFIX,
    NUMERIC_PREFIX,
    TraitFeatures,
    is_trait_column,
    load_traits,
    signed_log1p,
    trait_of,
)
from store.analytics_queries import (
    DAYPARTS,
    NON_QUESTION_INTENTS,
    message_intents,
    product_event_names,
    sent_deliveries,
    to_epoch_days,
    user_feature_table,
    user_product_table,
)
from store.db import read_snapshot

logger = logging.getLogger(__name__)

# What the segmentation clusters on: behaviour, not identity or time of day.
CLUSTER_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "active_days",
    "tenure_days",
    "activity_trend",
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
TOPIC_PREFIX = "topic_"
"""Intent-mix components are columns `topic_1`, `topic_2`, ... of the feature table."""
MONETARY_COLUMN = "monetary"
"""Real money per user (a spend trait, else product events' revenue), when the store has any."""
TREND_DAYS = 14
"""The recent part of the activity trend: the last two weeks (at most half the window)."""
MAX_TOPICS = 4
TOPIC_PRIOR_MESSAGES = 5.0


@dataclass(frozen=True)
class UserFeatures:
    """The feature table (one row per user, indexed by user id) and how it was computed.

    `intents` are the top question intents with a share column; `intent_counts` has every
    user's message count per intent (all intents), the intent part of rule baskets;
    `product_counts` the same per product event name. `traits` is how the trait columns
    (`num:`, `age:`, `cat:`) were chosen; `monetary` what RFM's monetary score ranks: a spend
    trait (`trait:spend`), product events' `properties.revenue` (`events:revenue`) or `messages`.
    """

    frame: pd.DataFrame
    as_of: datetime
    window_days: int
    intents: tuple[str, ...]
    intent_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    product_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    traits: TraitFeatures | None = None
    monetary: str = "messages"

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


def activity_trend(
    active_days: pd.Series,
    recent_active_days: pd.Series,
    tenure_days: pd.Series,
    *,
    window_days: float,
    recent_days: float,
) -> pd.Series:
    """Recent vs earlier activity rate, in [-1, 1]: -1 stopped, 0 steady (or unknown), +1 new burst.

    Rates are active days per day the user was around: the last `recent_days` against the
    rest of the window since the user's first event (a user first seen mid-window is not
    "declining" for the days before they existed). The symmetric ratio (r - e) / (r + e)
    is bounded, so it needs no scaling tricks, and it is 0 when there is nothing to compare
    (no earlier span, or no activity at all in the window).
    """
    around = np.minimum(tenure_days.astype(float), float(window_days))
    recent_span = np.clip(np.minimum(around, recent_days), 1.0, None)
    earlier_span = around - recent_days
    recent_rate = recent_active_days.astype(float) / recent_span
    earlier = (active_days - recent_active_days).astype(float).clip(lower=0.0)
    earlier_rate = earlier / earlier_span.where(earlier_span >= 1.0)
    total = recent_rate + earlier_rate
    trend = (recent_rate - earlier_rate) / total.where(total > 0)
    return trend.fillna(0.0).clip(-1.0, 1.0)


def intent_topics(
    counts: pd.DataFrame, *, max_topics: int = MAX_TOPICS, prior_messages: float = TOPIC_PRIOR_MESSAGES
) -> pd.DataFrame:
    """The main components of users' intent mixes: columns `topic_1..k`, one row per user.

    Each user's intent shares are first shrunk towards the population's mix by
    `prior_messages` pseudo-messages (empirical Bayes: a user with two messages has no
    reliable mix, and one with none sits at the population's centre), then square-rooted,
    so Euclidean distance is the Hellinger distance between mixes and rare intents are not
    blown up as standardising each share would. A PCA of that keeps the components above
    the mean eigenvalue (Kaiser's rule: those explaining more than one intent's worth of
    variance), at most `max_topics`, so a fragmented intent catalogue never outweighs the
    behavioural columns. Signs are fixed (largest loading positive), so runs are stable.
    """
    index = counts.index
    values = counts.to_numpy(dtype=np.float64) if counts.shape[1] else np.empty((len(index), 0))
    total = float(values.sum())
    if values.shape[1] < 2 or len(index) < 2 or total <= 0 or max_topics < 1:
        return pd.DataFrame(index=index)
    prior = values.sum(axis=0) / total
    shares = (values + prior_messages * prior) / (values.sum(axis=1, keepdims=True) + prior_messages)
    hellinger = np.sqrt(shares)
    hellinger -= hellinger.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(hellinger.T @ hellinger / (len(index) - 1))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    # Hellinger coordinates lie in [0, 1]: a variance below 1e-10 is rounding, not a topic.
    keep = (eigenvalues > eigenvalues.mean()) & (eigenvalues > 1e-10)
    n_topics = min(int(keep.sum()), max_topics)
    vectors = eigenvectors[:, :n_topics]
    largest = np.abs(vectors).argmax(axis=0)
    vectors = vectors * np.sign(vectors[largest, np.arange(n_topics)])
    scores = hellinger @ vectors
    return pd.DataFrame(scores, index=index, columns=[f"{TOPIC_PREFIX}{i + 1}" for i in range(n_topics)])


def rfm_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Recency, frequency and monetary quintiles and their sum.

    Monetary is real money (column `monetary`) when the frame has it, else message volume: the
    only "value" the bot sees by itself.
    """
    scores = pd.DataFrame(index=frame.index)
    money = MONETARY_COLUMN if MONETARY_COLUMN in frame.columns else "messages"
    scores["rfm_r"] = _quintile(frame["recency_days"], higher_is_better=False)
    scores["rfm_f"] = _quintile(frame["active_days"], higher_is_better=True)
    scores["rfm_m"] = _quintile(frame[money], higher_is_better=True)
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
    trend_days: int = TREND_DAYS,
    exclude_users: Sequence[int] = (),
    traits: Sequence[str] | None = None,
    use_traits: bool = True,
) -> UserFeatures:
    """Aggregate every user's events before `as_of` in SQL and derive rates and scores.

    Args:
        engine: The store.
        as_of: The moment recency is measured from (default: now, UTC).
        window_days: The window of the frequency feature (active days in it).
        n_intents: How many of the most used question intents get a share column.
        trend_days: The recent part of the activity trend (at most half the window).
        exclude_users: Staff accounts (managers, the bot) kept out of the table, so they are
            never segmented, never in a rule's basket and never counted as users.
        traits: Trait names to use (default: the well-covered ones, `analytics.traits`).
        use_traits: False leaves product traits out entirely.
    """
    as_of = as_of or datetime.now(UTC)
    recent_days = min(float(trend_days), window_days / 2.0)
    with read_snapshot(engine) as session:  # the intent list, the aggregates and the pushes agree
        every = [intent for intent, _n in message_intents(session, until=as_of, exclude_users=exclude_users)]
        products = [
            name for name, _n in product_event_names(session, until=as_of, exclude_users=exclude_users)
        ]
        table = user_feature_table(
            session,
            as_of=as_of,
            window_start=as_of - timedelta(days=window_days),
            recent_start=as_of - timedelta(days=recent_days),
            intents=every,
            exclude_users=exclude_users,
        )
        product_table = user_product_table(
            session, as_of=as_of, products=products, exclude_users=exclude_users
        )
        sent = sent_deliveries(session, as_of=as_of, exclude_users=exclude_users)
    encoded = (
        load_traits(engine, as_of=as_of, exclude_users=exclude_users, include=traits) if use_traits else None
    )
    intents = tuple([i for i in every if i not in NON_QUESTION_INTENTS][:n_intents])
    raw = pd.DataFrame.from_records(table.rows, columns=list(table.columns))
    if raw.empty:
        return UserFeatures(
            frame=_empty_frame(intents), as_of=as_of, window_days=window_days, intents=intents
        )
    raw = raw.set_index("user_id")
    raw.index = raw.index.astype("int64")
    product_raw = pd.DataFrame.from_records(product_table.rows, columns=list(product_table.columns))
    product_raw = product_raw.set_index("user_id")
    product_raw.index = product_raw.index.astype("int64")
    product_raw = product_raw.reindex(raw.index)
    now_days = to_epoch_days(as_of)
    f = pd.DataFrame(index=raw.index)
    f["recency_days"] = (now_days - raw["last_day"].astype(float)).clip(lower=0.0)
    f["tenure_days"] = (now_days - raw["first_day"].astype(float)).clip(lower=0.0)
    f["active_days"] = raw["active_days"].astype(int)
    f["activity_trend"] = activity_trend(
        f["active_days"],
        raw["recent_active_days"].fillna(0).astype(int),
        f["tenure_days"],
        window_days=window_days,
        recent_days=recent_days,
    )
    f["events"] = raw["events"].astype(int)
    for name in ("messages", "questions", "unanswered", "feedbacks", "replies", "reactions", "poll_answers"):
        f[name] = raw[name].fillna(0).astype(int)
    f["fallback_rate"] = _safe_ratio(f["unanswered"], f["messages"])
    f["mean_rating"] = pd.to_numeric(raw["mean_rating"], errors="coerce").astype(float)
    f["rating_centered"] = ((f["mean_rating"] - 3.0) / 2.0).fillna(0.0)
    f["community_actions"] = f["replies"] + f["reactions"] + f["poll_answers"]
    f["community_share"] = _safe_ratio(f["community_actions"], f["events"])
    f["group_share"] = _safe_ratio(raw["group_messages"].fillna(0), f["messages"])
    delivered = pd.Series(sent, dtype="float64")
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
    monetary = monetary_source(encoded, product_raw["revenue"])
    if monetary != "messages":
        f[MONETARY_COLUMN] = monetary_values(encoded, product_raw["revenue"], f.index)
    f = f.join(rfm_scores(f)).join(intent_topics(counts))
    if encoded is not None and len(encoded.frame.columns):
        f = f.join(encoded.frame, how="left")
    product_counts = pd.DataFrame(
        {
            name: product_raw[f"product_{index}"].fillna(0).astype("int64")
            for index, name in enumerate(products)
        },
        index=raw.index,
    )
    logger.info("features for %d users as of %s", len(f), as_of.isoformat())
    return UserFeatures(
        frame=f,
        as_of=as_of,
        window_days=window_days,
        intents=intents,
        intent_counts=counts,
        product_counts=product_counts,
        traits=encoded,
        monetary=monetary,
    )


def monetary_source(traits: TraitFeatures | None, revenue: pd.Series) -> str:
    """What RFM's monetary score ranks: a spend trait, else product revenue, else `messages`."""
    if traits is not None and traits.monetary is not None:
        return f"trait:{traits.monetary}"
    return "events:revenue" if pd.to_numeric(revenue, errors="coerce").notna().any() else "messages"


def monetary_values(traits: TraitFeatures | None, revenue: pd.Series, index: pd.Index) -> pd.Series:
    """Money per user: the spend trait's value or the summed revenue; 0 where none is known.

    0, not NaN: a user with no spend trait and no purchase has brought in nothing we know of,
    which is the bottom of the monetary ranking, not a gap in it.
    """
    if traits is not None and traits.monetary is not None and traits.monetary_values is not None:
        values = traits.monetary_values.reindex(index)
    else:
        values = pd.to_numeric(revenue, errors="coerce").astype(float).reindex(index)
    return values.fillna(0.0).astype(float)


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


def cluster_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """What the segmenter clusters on: `CLUSTER_COLUMNS`, the intent topics, then the trait columns."""
    topics = [c for c in frame.columns if isinstance(c, str) and c.startswith(TOPIC_PREFIX)]
    topics.sort(
        key=lambda c: int(c.removeprefix(TOPIC_PREFIX)) if c.removeprefix(TOPIC_PREFIX).isdigit() else 0
    )
    traits = [str(c) for c in frame.columns if is_trait_column(c)]
    return (*CLUSTER_COLUMNS, *topics, *traits)


def category_groups(columns: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """Positions of each categorical trait's one-hot columns, for the segmenter's shared scales."""
    groups: dict[str, list[int]] = {}
    for position, column in enumerate(columns):
        if column.startswith(CATEGORY_PREFIX):
            groups.setdefault(trait_of(column)[1], []).append(position)
    return tuple(tuple(positions) for positions in groups.values())


def compresses(column: str) -> bool:
    """Whether the cluster matrix compresses a trait column with a signed log1p (numbers and ages)."""
    return column.startswith((NUMERIC_PREFIX, AGE_PREFIX))


def cluster_matrix(frame: pd.DataFrame, columns: tuple[str, ...] | None = None) -> np.ndarray:
    """The numeric matrix the segmenter sees: chosen columns, log1p on heavy-tailed counts.

    By default the columns are `cluster_columns(frame)`: the behavioural and lifecycle
    features plus whatever intent topics and trait columns the frame has. Trait numbers and
    ages go through a signed log1p; a user without a trait gets the column's mean over the
    users who have it (after that transform), so missing traits pull nobody anywhere.
    """
    columns = cluster_columns(frame) if columns is None else columns
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"feature columns {missing} are not in the feature table")
    parts = []
    for column in columns:
        values = frame[column].astype(float).to_numpy()
        if column in LOG_COLUMNS:
            values = np.log1p(np.clip(values, 0.0, None))
        elif is_trait_column(column):
            values = signed_log1p(values) if compresses(column) else values
            present = ~np.isnan(values)
            fill = values[present].mean() if present.any() else 0.0
            values = np.where(present, values, fill)
        parts.append(values)
    return np.column_stack(parts) if parts else np.empty((len(frame), 0))
