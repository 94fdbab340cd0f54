"""Per-user features aggregated in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics import CLUSTER_COLUMNS, cluster_matrix, compute_features, rfm_scores, user_baskets
from store import append_events

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
    append_events(engine, rows)


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


def test_rfm_quintiles_rank_recent_and_frequent_users_high() -> None:
    frame = pd.DataFrame(
        {"recency_days": [1.0, 2, 3, 4, 5], "active_days": [5, 4, 3, 2, 1], "messages": [50, 40, 30, 20, 10]}
    )
    scores = rfm_scores(frame)
    assert scores["rfm_r"].tolist() == [5, 4, 3, 2, 1]
    assert scores["rfm_code"].tolist() == ["555", "444", "333", "222", "111"]
    assert scores["rfm_score"].tolist() == [15, 12, 9, 6, 3]
