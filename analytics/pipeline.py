"""One analytics run: features → segments → rules, stored atomically with a version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics.features import (
    UserFeatures,
    category_groups,
    cluster_columns,
    cluster_matrix,
    compute_features,
)
from analytics.naming import PreviousSegment, SegmentProfile, carry_names, describe_segments
from analytics.rules import OUTCOMES, AssociationRule, mine_rules
from analytics.segmentation import UserSegmenter
from analytics.traits import CATEGORY_PREFIX
from store.analytics_queries import FALLBACK_INTENTS, staff_with_events
from store.analytics_results import (
    NewSegment,
    complete_run,
    end_run,
    previous_done_run,
    run_memberships,
    run_segments,
    start_run,
)
from store.db import read_snapshot
from store.rollups import refresh_rollups

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class AnalyticsConfig:
    """Parameters of a run; stored with it so a run can be reproduced."""

    window_days: int = 30
    algorithm: str = "kmeans"
    k_min: int = 2
    k_max: int = 8
    random_state: int = 0
    min_support: float = 0.02
    min_confidence: float = 0.5
    min_lift: float = 1.2
    rule_algorithm: str = "fpgrowth"
    rule_max_len: int = 3
    outcome_rules_only: bool = False
    max_rules: int = 200
    exclude_users: tuple[int, ...] = ()
    """Staff accounts (`RAPPORT_ADMIN_IDS`, the bot) kept out of segments, rules and counts.

    The library cannot read settings; the callers (CLI, scheduler, demo) pass the admin ids.
    """


@dataclass(frozen=True)
class RunSummary:
    """What a run did: its id and status, sizes, quality scores and step timings."""

    run_id: int
    status: str
    message: str
    n_users: int
    n_events: int
    n_segments: int
    n_rules: int
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def user_baskets(features: UserFeatures, segment_names: pd.Series) -> pd.DataFrame:
    """One-hot baskets per user: intents used, actions taken, feedback, segment and outcome flags.

    Product data adds an item per product event a user did (`product:upgrade`) and per trait
    category a linked user has (`trait:plan=pro`), so rules can link questions to what users
    then do in the product.

    Args:
        features: The run's feature table (its index fixes the row order).
        segment_names: Segment name per user, aligned with the feature index.
    """
    f = features.frame
    index = f.index
    columns: dict[str, np.ndarray] = {}
    for intent in features.intent_counts.columns:
        item = "action:fallback" if intent in FALLBACK_INTENTS else f"intent:{intent}"
        used = (features.intent_counts[intent].reindex(index).fillna(0) > 0).to_numpy()
        columns[item] = columns[item] | used if item in columns else used
    flags = {
        "action:reaction": f["reactions"] > 0,
        "action:poll_answer": f["poll_answers"] > 0,
        "action:reply": f["replies"] > 0,
        "action:feedback": f["feedbacks"] > 0,
        "feedback:positive": f["mean_rating"] >= 4,
        "feedback:negative": f["mean_rating"] <= 2,
        "returned_after_push": f["push_response_rate"] > 0,
        "churned_30d": f["recency_days"] >= 30,
    }
    for item, values in flags.items():
        columns[item] = columns.get(item, np.zeros(len(index), dtype=bool)) | values.fillna(False).to_numpy(
            bool
        )
    for name in features.product_counts.columns:
        columns[f"product:{name}"] = (features.product_counts[name].reindex(index).fillna(0) > 0).to_numpy()
    for column in f.columns:
        if isinstance(column, str) and column.startswith(CATEGORY_PREFIX):
            columns[f"trait:{column.removeprefix(CATEGORY_PREFIX)}"] = (f[column] == 1.0).to_numpy()
    for name in pd.unique(segment_names):
        columns[f"segment:{name}"] = (segment_names == name).to_numpy()
    onehot = pd.DataFrame(columns, index=f.index)
    return onehot.loc[:, onehot.any(axis=0)].sort_index(axis=1)


def _match_previous(
    engine: Engine, run_id: int, user_ids: np.ndarray, profiles: list[SegmentProfile], labels: np.ndarray
) -> tuple[list[SegmentProfile], dict[int, bool], dict[int, int], int | None]:
    """Carry pinned names from the previous completed run by membership overlap."""
    previous = previous_done_run(engine, run_id)
    if previous is None:
        return profiles, {p.label: False for p in profiles}, {}, None
    old_users, old_segments = run_memberships(engine, previous.id)
    old = pd.Series(old_segments, index=pd.Index(old_users, dtype="int64"))
    new = pd.Series(labels, index=pd.Index(user_ids, dtype="int64"))
    both = pd.concat({"old": old, "new": new}, axis=1, join="inner")
    overlap = {(int(a), int(b)): int(n) for (a, b), n in both.groupby(["old", "new"]).size().items()}
    prev = [PreviousSegment(s.id, s.name, s.pinned, s.size) for s in run_segments(engine, previous.id)]
    named, pinned, matched = carry_names(profiles, prev, overlap)
    return named, pinned, matched, previous.id


@dataclass(frozen=True)
class _Segmentation:
    """The segmentation step's output: the fitted segmenter, the labels and the named profiles."""

    segmenter: UserSegmenter
    labels: np.ndarray
    user_ids: np.ndarray
    profiles: list[SegmentProfile]
    pinned: dict[int, bool]
    matched: dict[int, int]
    previous_id: int | None


class _Timer:
    """Announces each step to ``progress`` and records its duration as ``<step>_s``."""

    def __init__(self, progress: Progress | None) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress or (lambda _name: None)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._progress(name)
        started = time.perf_counter()
        yield
        self.timings[f"{name}_s"] = time.perf_counter() - started


def _segment(engine: Engine, run_id: int, features: UserFeatures, config: AnalyticsConfig) -> _Segmentation:
    """Cluster the users, describe each segment and carry names over from the previous run."""
    segmenter = UserSegmenter(
        algorithm=config.algorithm,
        k_min=config.k_min,
        k_max=config.k_max,
        random_state=config.random_state,
        column_groups=category_groups(cluster_columns(features.frame)),
    ).fit(cluster_matrix(features.frame))
    labels = segmenter.labels_
    user_ids = features.frame.index.to_numpy()
    profiles = describe_segments(features.frame, labels, window_days=config.window_days)
    profiles, pinned, matched, previous_id = _match_previous(engine, run_id, user_ids, profiles, labels)
    return _Segmentation(segmenter, labels, user_ids, profiles, pinned, matched, previous_id)


def _rules(
    features: UserFeatures, segmentation: _Segmentation, config: AnalyticsConfig
) -> tuple[pd.DataFrame, list[AssociationRule]]:
    """The users' baskets and the association rules mined from them (at most ``max_rules``)."""
    names = {p.label: p.name for p in segmentation.profiles}
    segment_names = pd.Series([names[int(x)] for x in segmentation.labels], index=features.frame.index)
    baskets = user_baskets(features, segment_names)
    rules = mine_rules(
        baskets,
        min_support=config.min_support,
        min_confidence=config.min_confidence,
        min_lift=config.min_lift,
        algorithm=config.rule_algorithm,
        max_len=config.rule_max_len,
        outcomes=OUTCOMES if config.outcome_rules_only else None,
    )[: config.max_rules]
    return baskets, rules


def _store(
    engine: Engine,
    run_id: int,
    *,
    message: str,
    metrics: dict[str, Any],
    n_events: int,
    segmentation: _Segmentation,
    rules: list[AssociationRule],
) -> int:
    """Write the run's segments, memberships and rules in one transaction; returns users dropped."""
    segments = [
        NewSegment(
            p.label, p.name, p.description, p.size, {**p.profile}, segmentation.pinned.get(p.label, False)
        )
        for p in segmentation.profiles
    ]
    return complete_run(
        engine,
        run_id,
        message=message,
        metrics=metrics,
        n_events=n_events,
        segments=segments,
        user_ids=segmentation.user_ids.tolist(),
        labels=segmentation.labels.tolist(),
        rules=rules,
    )


def _empty_run(engine: Engine, run_id: int, as_of: datetime) -> RunSummary:
    """End a run over an empty log with a message that says so."""
    message = f"the event log has no user events before {as_of.isoformat()}: nothing to segment"
    end_run(engine, run_id, status="empty", message=message, n_events=0)
    logger.warning("analytics run %d: %s", run_id, message)
    return RunSummary(run_id, "empty", message, 0, 0, 0, 0)


def run_analytics(
    engine: Engine,
    *,
    config: AnalyticsConfig | None = None,
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Compute features, segment users, mine rules and store it all as one new current run.

    Bad input (an empty log, one user, identical users) ends in a stored run whose message
    says what happened, never an exception; an unexpected error marks the run `failed`
    (nothing half-written: results are written in one transaction) and is re-raised.
    """
    config = config or AnalyticsConfig()
    as_of = as_of or datetime.now(UTC)
    params = {**asdict(config), "as_of": as_of.isoformat()}
    refresh_rollups(engine)  # the dashboard's figures catch up with the log this run reads
    run_id = start_run(engine, algorithm=config.algorithm, params=params)
    timer = _Timer(progress)
    try:
        with timer.step("features"):
            features = compute_features(
                engine, as_of=as_of, window_days=config.window_days, exclude_users=config.exclude_users
            )
            staff = _staff_left_out(engine, config.exclude_users, as_of)
        if features.n_users == 0:
            return _empty_run(engine, run_id, as_of)
        n_events = int(features.frame["events"].sum())
        with timer.step("segmentation"):
            segmentation = _segment(engine, run_id, features, config)
        with timer.step("rules"):
            baskets, rules = _rules(features, segmentation, config)
        with timer.step("store"):
            message = "; ".join(_notes(features, segmentation.segmenter, rules, config, staff))
            metrics = _metrics(
                segmentation.segmenter, features, rules, baskets, segmentation.previous_id,
                segmentation.matched, timer.timings,
            )  # fmt: skip
            metrics["staff_excluded"] = staff
            dropped = _store(
                engine, run_id, message=message, metrics=metrics, n_events=n_events,
                segmentation=segmentation, rules=rules,
            )  # fmt: skip
    except Exception as exc:
        fail_run(engine, run_id, exc, engine_name="analytics")
        raise
    return done_summary(
        run_id,
        message=message,
        dropped=dropped,
        n_users=len(segmentation.user_ids),
        n_events=n_events,
        n_segments=len(segmentation.profiles),
        n_rules=len(rules),
        metrics=metrics,
        timings=timer.timings,
        engine_name="analytics",
    )


def fail_run(engine: Engine, run_id: int, exc: Exception, *, engine_name: str) -> None:
    """Mark a run failed with the error (both engines; the caller re-raises)."""
    end_run(engine, run_id, status="failed", message=f"{type(exc).__name__}: {exc}")
    logger.exception("%s run %d failed", engine_name, run_id)


def done_summary(
    run_id: int,
    *,
    message: str,
    dropped: int,
    n_users: int,
    n_events: int,
    n_segments: int,
    n_rules: int,
    metrics: dict[str, Any],
    timings: dict[str, float],
    engine_name: str,
) -> RunSummary:
    """The summary of a stored run (both engines): users deleted while it ran are left out and said."""
    if dropped:
        message = f"{message}; {dropped} user(s) deleted during the run were left out"
    logger.info("%s run %d done: %s", engine_name, run_id, message)
    return RunSummary(
        run_id=run_id,
        status="done",
        message=message,
        n_users=n_users - dropped,
        n_events=n_events,
        n_segments=n_segments,
        n_rules=n_rules,
        metrics=metrics,
        timings=timings,
    )


def _staff_left_out(engine: Engine, staff: tuple[int, ...], as_of: datetime) -> int:
    """How many staff accounts with events the run left out (said in its message and report)."""
    if not staff:
        return 0
    with read_snapshot(engine) as session:
        return staff_with_events(session, staff, until=as_of)


def _notes(
    features: UserFeatures,
    segmenter: UserSegmenter,
    rules: list[AssociationRule],
    config: AnalyticsConfig,
    staff: int = 0,
) -> list[str]:
    notes = [f"{features.n_users} users in {segmenter.n_clusters_} segment(s), {len(rules)} rule(s)"]
    if staff:
        notes.append(f"{staff} staff account(s) left out")
    if features.traits is not None:
        notes.extend(features.traits.notes)
    if features.n_users == 1:
        notes.append("only one user: a single segment")
    elif segmenter.n_clusters_ == 1:
        notes.append("users are too alike to split: a single segment")
    columns = cluster_columns(features.frame)
    matrix = features.frame[list(columns)].astype(float)
    constant = [c for c in columns if matrix[c].nunique(dropna=False) <= 1]
    if constant and features.n_users > 1:
        notes.append(f"zero-variance features ignored by scaling: {', '.join(constant)}")
    if not rules:
        notes.append(
            f"no rule reaches support {config.min_support}, confidence {config.min_confidence}"
            f" and lift {config.min_lift}"
        )
    return notes


def _metrics(
    segmenter: UserSegmenter,
    features: UserFeatures,
    rules: list[AssociationRule],
    baskets: pd.DataFrame,
    previous_id: int | None,
    matched: dict[int, int],
    timings: dict[str, float],
) -> dict[str, Any]:
    return {
        "segmentation": {
            "algorithm": segmenter.algorithm,
            "n_clusters": int(segmenter.n_clusters_),
            "scores": segmenter.scores_,
            "k_scores": {str(k): v for k, v in segmenter.k_scores_.items()},
            "eps": segmenter.eps_,
            "features": list(cluster_columns(features.frame)),
        },
        "rules": {"n_rules": len(rules), "n_items": int(baskets.shape[1]), "n_baskets": len(baskets)},
        "features": {
            "as_of": features.as_of.isoformat(),
            "intents": list(features.intents),
            "traits": [] if features.traits is None else list(features.traits.traits),
            "products": [str(c) for c in features.product_counts.columns],
            "monetary": features.monetary,
        },
        "previous_run": previous_id,
        "matched_segments": {str(label): prev for label, prev in matched.items()},
        "timings": dict(timings),
    }
