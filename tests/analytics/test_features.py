"""Per-user features aggregated in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics import CLUSTER_COLUMNS, cluster_matrix, compute_features, rfm_scores, user_baskets
from analytics.features import activity_trend, cluster_columns, intent_topics
from store import EventRecord, append_events

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def _at(days_ago: float, hour: int = 10) -> datetime:
    return (AS_OF - timedelta(days=days_ago)).replace(hour=hour, minute=0)


def _log(engine: Engine) -> None:
    rows = [
        # user 1: three questions on two days, one unanswered, feedback 4 and 2, one push answered
        {"user_id": 1, "chat_id": 1, "ts": _at(10), "kind": "message", "intent": "pricing"},
        {"user_id": 1, "chat_id": 1, "ts": _at(10, 11), "kind": "message", "intent": "pricing"},
        {"user_id": 1, "chat_id": 1, "ts": _at(2, 20), "kind": "message", "intent": "billing"},
        {"user_id": 1, "chat_id": 1, "ts": _at(2, 20), "kind": "message", "intent": "greet"},
        {"user_id": 1, "chat_id": 1, "ts": _at(2, 21), "kind": "fallback", "intent": "nlu_fallback"},
        {"user_id": 1, "chat_id": 1, "ts": _at(2, 21), "kind": "feedback", "attributes": {"rating": 4}},
        {"user_id": 1, "chat_id": 1, "ts": _at(2, 22), "kind": "feedback", "attributes": {"rating": 2}},
        {"user_id": 1, "chat_id": 1, "ts": _at(5), "kind": "push_received", "attributes": {"campaign_id": 1}},
        {"user_id": 1, "chat_id": 1, "ts": _at(4), "kind": "push_received", "attributes": {"campaign_id": 2}},
        {"user_id": 1, "chat_id": 1, "ts": _at(4, 12), "kind": "push_response"},
        # user 2: a group socialite, last seen 40 days ago (outside the 30-day window)
        {"user_id": 2, "chat_id": -100, "ts": _at(60, 3), "kind": "join"},
        {
            "user_id": 2,
            "chat_id": -100,
            "ts": _at(50, 3),
            "kind": "message",
            "intent": "community_events",
            "attributes": {"chat_type": "supergroup", "reply": True},
        },
        {"user_id": 2, "chat_id": -100, "ts": _at(45, 3), "kind": "reaction"},
        {"user_id": 2, "chat_id": -100, "ts": _at(40, 3), "kind": "poll_answer"},
        # after as_of: ignored
        {"user_id": 2, "chat_id": -100, "ts": AS_OF + timedelta(hours=1), "kind": "reaction"},
    ]
    append_events(engine, [EventRecord(**row) for row in rows])


def test_features_are_aggregated_per_user(engine: Engine) -> None:
    _log(engine)
    features = compute_features(engine, as_of=AS_OF, window_days=30, n_intents=2)
    f = features.frame
    assert list(f.index) == [1, 2]
    assert features.intents == ("pricing", "billing")
    one, two = f.loc[1], f.loc[2]
    assert one["recency_days"] == pytest.approx(AS_OF.timestamp() / 86400 - _at(2, 22).timestamp() / 86400)
    assert one["tenure_days"] == pytest.approx(10 + (12 - 10) / 24)
    assert one["active_days"] == 4  # days 10, 5, 4 and 2 ago
    assert one["messages"] == 5  # four messages and one unanswered
    assert one["questions"] == 3  # greet is not a question
    assert one["unanswered"] == 1
    assert one["fallback_rate"] == pytest.approx(1 / 5)
    assert one["mean_rating"] == pytest.approx(3.0)
    assert one["pushes"] == 2
    assert one["push_response_rate"] == pytest.approx(0.5)
    assert one["share_pricing"] == pytest.approx(2 / 5)
    assert one["share_billing"] == pytest.approx(1 / 5)
    assert one["community_actions"] == 0
    assert two["active_days"] == 0
    assert two["recency_days"] == pytest.approx(40 + (12 - 3) / 24)
    assert two["replies"] == 1 and two["reactions"] == 1 and two["poll_answers"] == 1
    assert two["community_actions"] == 3
    assert two["community_share"] == pytest.approx(3 / 4)
    assert two["group_share"] == pytest.approx(1.0)
    assert np.isnan(two["mean_rating"]) and two["rating_centered"] == 0.0
    assert two["push_response_rate"] == 0.0
    assert two["hours_night"] == pytest.approx(1.0)
    assert one["hours_evening"] == pytest.approx(5 / 10)
    assert one["rfm_r"] == 5 and two["rfm_r"] == 3
    assert one["rfm_score"] == one["rfm_r"] + one["rfm_f"] + one["rfm_m"]
    counts = features.intent_counts
    assert counts.loc[1].to_dict() == {
        "pricing": 2,
        "billing": 1,
        "community_events": 0,
        "greet": 1,
        "nlu_fallback": 1,
    }


def test_activity_trend_compares_recent_and_earlier_days_in_sql(engine: Engine) -> None:
    _log(engine)
    f = compute_features(engine, as_of=AS_OF, window_days=30, trend_days=3).frame
    one, two = f.loc[1], f.loc[2]
    # user 1: one active day in the last 3 (2 days ago), three in the 7.08 days before
    around = 10 + (12 - 10) / 24
    recent, earlier = 1 / 3, 3 / (around - 3)
    assert one["activity_trend"] == pytest.approx((recent - earlier) / (recent + earlier))
    assert two["activity_trend"] == 0.0  # no activity in the window: nothing to compare
    assert f["activity_trend"].between(-1.0, 1.0).all()


def test_activity_trend_is_bounded_and_neutral_without_history() -> None:
    active = pd.Series([10, 30, 5, 0, 3])
    recent = pd.Series([0, 7, 5, 0, 3])
    tenure = pd.Series([60.0, 70.0, 60.0, 60.0, 5.0])
    trend = activity_trend(active, recent, tenure, window_days=60, recent_days=14)
    assert trend[0] == -1.0  # stopped
    assert trend[1] == pytest.approx(0.0)  # steady: 7 of the last 14 days, 23 of the 46 before
    assert trend[2] == 1.0  # only recent activity after a silent earlier window
    assert trend[3] == 0.0  # nothing in the window
    assert trend[4] == 0.0  # first seen 5 days ago: no earlier span to compare with


def test_intent_topics_separate_intent_mixes_and_fix_their_signs() -> None:
    rng = np.random.default_rng(0)
    billing = rng.poisson([6, 4, 0.2, 0.2, 1], size=(50, 5))
    onboarding = rng.poisson([0.2, 0.2, 6, 4, 1], size=(50, 5))
    silent = np.zeros((5, 5), dtype=int)
    counts = pd.DataFrame(
        np.vstack([billing, onboarding, silent]),
        columns=["billing", "bug_report", "getting_started", "api_keys", "greet"],
        index=pd.Index(range(105), dtype="int64"),
    )
    topics = intent_topics(counts)
    assert 1 <= topics.shape[1] <= 4 and topics.columns[0] == "topic_1"
    first = topics["topic_1"]
    assert (np.sign(first[:50]) != np.sign(first[50:100].median())).mean() > 0.95
    assert abs(first[100:].mean()) < abs(first[:50].mean())  # no messages: near the centre
    again = intent_topics(counts.sample(frac=1.0, random_state=1)).reindex(counts.index)
    assert again["topic_1"].to_numpy() == pytest.approx(first.to_numpy())
    assert intent_topics(counts[["billing"]]).shape == (105, 0)
    assert intent_topics(counts.iloc[100:]).shape == (5, 0)
    assert intent_topics(counts, max_topics=1).shape == (105, 1)
    assert intent_topics(pd.DataFrame({"a": [2, 2, 2], "b": [1, 1, 1]})).shape == (3, 0)


def test_features_cluster_on_intent_topics(engine: Engine) -> None:
    _log(engine)
    f = compute_features(engine, as_of=AS_OF).frame
    columns = cluster_columns(f)
    assert columns[: len(CLUSTER_COLUMNS)] == CLUSTER_COLUMNS
    assert all(c.startswith("topic_") for c in columns[len(CLUSTER_COLUMNS) :])
    assert cluster_matrix(f).shape == (2, len(columns))


def test_baskets_hold_intents_actions_segments_and_outcomes(engine: Engine) -> None:
    _log(engine)
    features = compute_features(engine, as_of=AS_OF)
    baskets = user_baskets(features, pd.Series(["Askers", "Socials"], index=features.frame.index))
    items = {user: sorted(baskets.columns[baskets.loc[user].to_numpy()]) for user in baskets.index}
    assert items[1] == [
        "action:fallback",
        "action:feedback",
        "intent:billing",
        "intent:greet",
        "intent:pricing",
        "returned_after_push",
        "segment:Askers",
    ]
    assert items[2] == [
        "action:poll_answer",
        "action:reaction",
        "action:reply",
        "churned_30d",
        "intent:community_events",
        "segment:Socials",
    ]


def test_empty_log_gives_an_empty_table(engine: Engine) -> None:
    features = compute_features(engine, as_of=AS_OF)
    assert features.n_users == 0
    assert set(CLUSTER_COLUMNS) <= set(features.frame.columns)
    assert cluster_matrix(features.frame).shape == (0, len(CLUSTER_COLUMNS))


def test_cluster_matrix_compresses_counts_and_names_missing_columns() -> None:
    frame = pd.DataFrame({c: [0.0, 0.5] for c in CLUSTER_COLUMNS})
    frame["messages"] = [0.0, np.e - 1]
    X = cluster_matrix(frame)
    assert X[:, CLUSTER_COLUMNS.index("messages")] == pytest.approx([0.0, 1.0])
    assert X[:, CLUSTER_COLUMNS.index("fallback_rate")] == pytest.approx([0.0, 0.5])
    with pytest.raises(KeyError, match="nope"):
        cluster_matrix(frame, ("nope",))
    frame["topic_2"], frame["topic_10"], frame["topic_1"] = [0.0, 1.0], [2.0, 3.0], [4.0, 5.0]
    assert cluster_columns(frame)[-3:] == ("topic_1", "topic_2", "topic_10")
    assert cluster_matrix(frame)[:, -1] == pytest.approx([2.0, 3.0])


def test_rfm_quintiles_rank_recent_and_frequent_users_high() -> None:
    frame = pd.DataFrame(
        {"recency_days": [1.0, 2, 3, 4, 5], "active_days": [5, 4, 3, 2, 1], "messages": [50, 40, 30, 20, 10]}
    )
    scores = rfm_scores(frame)
    assert scores["rfm_r"].tolist() == [5, 4, 3, 2, 1]
    assert scores["rfm_code"].tolist() == ["555", "444", "333", "222", "111"]
    assert scores["rfm_score"].tolist() == [15, 12, 9, 6, 3]
