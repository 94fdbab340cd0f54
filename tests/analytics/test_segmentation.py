"""Segmentation: the estimator, segment names, and stored runs with their bad inputs."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs, make_moons
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from sqlalchemy import Engine

import analytics.pipeline as pipeline
from analytics import (
    AnalyticsConfig,
    UnknownSegmentError,
    UserSegmenter,
    cluster_matrix,
    compute_features,
    current_run,
    current_segments,
    describe_segments,
    pin_segment,
    run_analytics,
    segment_members,
    user_segment,
)
from analytics.naming import PreviousSegment, SegmentProfile, carry_names
from demo.synthetic import DEFAULT_END, populate
from store import EventRecord, append_events, forget_user
from store.analytics_results import list_runs

FAST = AnalyticsConfig(k_max=4, min_support=0.05)


@parametrize_with_checks([UserSegmenter(k_max=2, silhouette_sample=50)])  # type: ignore[misc]
def test_sklearn_estimator_contract(estimator: UserSegmenter, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_kmeans_picks_k_by_silhouette_and_reports_scores() -> None:
    X, truth = make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=1)
    model = UserSegmenter(k_max=6, random_state=0).fit(X)
    assert model.n_clusters_ == 3
    assert adjusted_rand_score(truth, model.labels_) == pytest.approx(1.0)
    assert sorted(model.k_scores_) == [2, 3, 4, 5, 6]
    best = max(model.k_scores_, key=lambda k: model.k_scores_[k]["silhouette"] or -1)
    assert best == 3
    assert model.scores_["silhouette"] == pytest.approx(model.k_scores_[3]["silhouette"])
    assert model.scores_["calinski_harabasz"] > 0 and model.scores_["davies_bouldin"] > 0
    assert (model.predict(X) == model.labels_).all()


def test_a_run_is_reproducible_with_a_fixed_random_state() -> None:
    X, _ = make_blobs(n_samples=200, centers=4, random_state=3)
    first = UserSegmenter(k_max=4, random_state=7, minibatch_threshold=100).fit(X).labels_
    second = UserSegmenter(k_max=4, random_state=7, minibatch_threshold=100).fit(X).labels_
    assert (first == second).all()


def test_dbscan_finds_non_spherical_groups_with_eps_from_the_knee() -> None:
    X, truth = make_moons(n_samples=400, noise=0.05, random_state=0)
    model = UserSegmenter(algorithm="dbscan", min_samples=5).fit(X)
    assert model.eps_ is not None and model.eps_ > 0
    assert model.n_clusters_ == 2
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    sampled = UserSegmenter(algorithm="dbscan", min_samples=5, dbscan_max_samples=200).fit(X)
    assert adjusted_rand_score(truth, sampled.labels_) > 0.9


@pytest.mark.parametrize("rows", [1, 5])
def test_identical_users_make_one_segment_without_warnings(rows: int) -> None:
    X = np.ones((rows, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = UserSegmenter().fit(X)
    assert model.n_clusters_ == 1
    assert model.labels_.tolist() == [0] * rows
    assert model.predict(X).tolist() == [0] * rows


def test_zero_variance_feature_is_harmless() -> None:
    X, _ = make_blobs(n_samples=200, centers=2, random_state=2)
    plain = UserSegmenter(k_max=3).fit(X)
    padded = UserSegmenter(k_max=3).fit(np.column_stack([X, np.full(200, 4.0)]))
    assert (padded.labels_ == plain.labels_).all()


def test_bad_parameters_and_unfitted_use_fail_clearly() -> None:
    with pytest.raises(NotFittedError):
        UserSegmenter().predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="k_min=5 should be <= k_max=3"):
        UserSegmenter(k_min=5, k_max=3).fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="algorithm"):
        UserSegmenter(algorithm="spectral").fit(np.zeros((4, 2)))


def test_synthetic_types_are_recovered(sqlite_engine: Engine) -> None:
    population = populate(sqlite_engine, 500, events_per_user=None, seed=3)
    features = compute_features(sqlite_engine, as_of=DEFAULT_END)
    model = UserSegmenter(k_min=3, k_max=7, random_state=0).fit(cluster_matrix(features.frame))
    truth = [population.types[u] for u in features.frame.index]
    assert adjusted_rand_score(truth, model.labels_) >= 0.8


def test_segments_get_names_and_descriptions_from_their_profile() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [30.0, 40, 1, 2, 1, 1],
            "tenure_days": [80.0, 90, 3, 4, 60, 70],
            "active_days": [0, 0, 2, 2, 20, 22],
            "questions": [5, 4, 1, 2, 30, 40],
            "messages": [6, 5, 2, 3, 40, 50],
            "community_actions": [0, 0, 0, 0, 1, 1],
            "community_share": [0.0, 0, 0, 0, 0.02, 0.02],
            "fallback_rate": [0.4, 0.3, 0, 0, 0, 0],
            "mean_rating": [1.5, np.nan, np.nan, np.nan, 5, 5],
        }
    )
    profiles = describe_segments(frame, np.array([0, 0, 1, 1, 2, 2]))
    names = [p.name for p in profiles]
    assert names == ["Dormant askers", "Newcomers", "Power users"]
    assert profiles[0].description == "asked 4+ questions, silent for 35+ days, 35% unanswered"
    assert profiles[0].size == 2 and profiles[0].profile["questions"] == 4.5


def test_lifecycle_names_newcomers_relative_to_the_log_and_drifting_by_trend() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [4.0, 5, 3, 4, 16, 24],
            "tenure_days": [59.0, 60, 21, 19, 59, 60],
            "activity_trend": [0.0, -0.1, -0.3, -0.2, -1.0, -1.0],
            "active_days": [8, 8, 6, 6, 9, 10],
            "questions": [13, 14, 14, 15, 16, 15],
            "messages": [20, 21, 18, 19, 23, 22],
            "community_share": [0.0] * 6,
            "fallback_rate": [0.0] * 6,
        }
    )
    profiles = describe_segments(frame, np.array([0, 0, 1, 1, 2, 2]), window_days=60)
    assert [p.name for p in profiles] == ["Casual askers", "Newcomers", "Drifting away"]
    assert profiles[0].description == "asked 13+ questions, active on 8 of the last 60 days"
    assert profiles[1].description.startswith("first seen 20 days ago")
    assert profiles[2].profile["activity_trend"] == -1.0


def test_look_alike_segments_are_told_apart_by_a_trait() -> None:
    frame = pd.DataFrame(
        {
            "recency_days": [30.0] * 6,
            "tenure_days": [80.0] * 6,
            "questions": [5] * 6,
            "push_response_rate": [0, 0, 0.5, 0.5, 0, 0],
        }
    )
    names = [p.name for p in describe_segments(frame, np.array([0, 0, 1, 1, 2, 2]))]
    assert names == ["Dormant askers", "Dormant askers who answer pushes", "Dormant askers 2"]


def test_pinned_names_follow_the_overlapping_segment() -> None:
    new = [SegmentProfile(0, "Casual askers", "", 10, {}), SegmentProfile(1, "Power users", "", 10, {})]
    previous = [PreviousSegment(7, "VIPs", True, 10), PreviousSegment(8, "Casual askers", False, 10)]
    overlap = {(7, 1): 9, (8, 0): 10, (7, 0): 1}
    named, pinned, matched = carry_names(new, previous, overlap)
    assert [p.name for p in named] == ["Casual askers", "VIPs"]
    assert pinned == {0: False, 1: True}
    assert matched == {0: 8, 1: 7}


def test_run_stores_segments_queryable_by_bot_and_scheduler(engine: Engine) -> None:
    populate(engine, 150, events_per_user=10, seed=5)
    summary = run_analytics(engine, config=FAST, as_of=DEFAULT_END)
    assert summary.status == "done" and summary.n_users == 150
    run = current_run(engine)
    assert run is not None and run.id == summary.run_id and run.is_current
    assert set(run.metrics["segmentation"]["scores"]) == {"silhouette", "calinski_harabasz", "davies_bouldin"}
    segments = current_segments(engine)
    assert sum(s.size for s in segments) == 150
    assert len({s.name for s in segments}) == len(segments)
    biggest = segments[0]
    members = segment_members(engine, biggest.name.upper())
    assert len(members) == biggest.size
    found = user_segment(engine, members[0])
    assert found is not None and found.id == biggest.id
    assert user_segment(engine, 999_999) is None
    with pytest.raises(UnknownSegmentError, match="no segment 'nope'"):
        segment_members(engine, "nope")

    pin_segment(engine, biggest.id, "Our crowd")
    again = run_analytics(engine, config=FAST, as_of=DEFAULT_END)
    renamed = [s for s in current_segments(engine) if s.name == "Our crowd"]
    assert again.run_id != summary.run_id
    assert len(renamed) == 1 and renamed[0].pinned and renamed[0].size == biggest.size


def test_empty_log_is_a_stored_run_that_says_so(sqlite_engine: Engine) -> None:
    summary = run_analytics(sqlite_engine, as_of=DEFAULT_END)
    assert summary.status == "empty"
    assert "no user events" in summary.message
    assert list_runs(sqlite_engine)[0].status == "empty"
    assert current_run(sqlite_engine) is None
    with pytest.raises(UnknownSegmentError, match="no analytics run yet"):
        segment_members(sqlite_engine, "Power users")


def _same_user_rows(user_id: int) -> list[EventRecord]:
    ts = DEFAULT_END - timedelta(days=3)
    return [
        EventRecord(user_id=user_id, chat_id=user_id, ts=ts, kind="message", intent="pricing"),
        EventRecord(user_id=user_id, chat_id=user_id, ts=ts + timedelta(hours=1), kind="reaction"),
    ]


@pytest.mark.parametrize("n_users", [1, 4])
def test_one_user_or_identical_users_make_one_segment(sqlite_engine: Engine, n_users: int) -> None:
    for user in range(1, n_users + 1):
        append_events(sqlite_engine, _same_user_rows(user))
    summary = run_analytics(sqlite_engine, config=FAST, as_of=DEFAULT_END)
    assert summary.status == "done" and summary.n_segments == 1
    assert "single segment" in summary.message
    assert "zero-variance" in summary.message or n_users == 1


def test_user_deleted_mid_run_is_left_out(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    populate(sqlite_engine, 60, events_per_user=10, seed=2)
    real = pipeline.compute_features

    def compute_then_forget(*args: object, **kwargs: object) -> object:
        features = real(*args, **kwargs)  # type: ignore[arg-type]
        forget_user(sqlite_engine, 1)
        return features

    monkeypatch.setattr(pipeline, "compute_features", compute_then_forget)
    summary = run_analytics(sqlite_engine, config=FAST, as_of=DEFAULT_END)
    assert summary.status == "done" and summary.n_users == 59
    assert "1 user(s) deleted during the run" in summary.message
    assert user_segment(sqlite_engine, 1) is None
    assert sum(s.size for s in current_segments(sqlite_engine)) == 59


def test_a_failing_step_marks_the_run_failed_and_writes_nothing(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(sqlite_engine, 30, events_per_user=8, seed=2)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "mine_rules", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_analytics(sqlite_engine, config=FAST, as_of=DEFAULT_END)
    run = list_runs(sqlite_engine)[0]
    assert run.status == "failed" and run.message == "RuntimeError: disk on fire"
    assert current_segments(sqlite_engine) == []


def test_support_threshold_that_yields_nothing_still_stores_the_run(sqlite_engine: Engine) -> None:
    populate(sqlite_engine, 40, events_per_user=8, seed=4)
    config = AnalyticsConfig(k_max=4, min_support=1.0, min_confidence=1.0, min_lift=50.0)
    summary = run_analytics(sqlite_engine, config=config, as_of=DEFAULT_END)
    assert summary.status == "done" and summary.n_rules == 0
    assert "no rule reaches support 1.0" in summary.message
    assert datetime.now(UTC) > DEFAULT_END
