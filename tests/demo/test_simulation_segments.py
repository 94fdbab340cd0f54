"""The analytics recover the simulator's hidden user types from the event log alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sklearn.metrics import adjusted_rand_score
from sqlalchemy import Engine

from analytics import UserSegmenter, cluster_matrix, compute_features
from analytics.naming import describe_segments
from demo.simulation import make_population, write_history

END = datetime(2026, 9, 1, tzinfo=UTC)


def test_segments_recover_the_hidden_types(sqlite_engine: Engine) -> None:
    population = make_population(300, days=60, seed=5)
    write_history(sqlite_engine, population, start=END - timedelta(days=60), until=END, profiles=False)
    features = compute_features(sqlite_engine, as_of=END, window_days=60)
    model = UserSegmenter(random_state=0).fit(cluster_matrix(features.frame))
    truth = population.true_types()
    assert adjusted_rand_score([truth[u] for u in features.frame.index], model.labels_) >= 0.8
    names = {p.name for p in describe_segments(features.frame, model.labels_, window_days=60)}
    assert {"Newcomers", "Drifting away", "Power users", "Community socialites"} <= names
