"""Tests of the next-event models: baselines by hand, the LSTM on synthetic structure, persistence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from analytics.errors import ModelFormatError
from analytics.metrics import evaluate_next_event
from analytics.sequence import (
    MarkovModel,
    NextEventModel,
    PopularityModel,
    SequenceModel,
    TokenVocabulary,
    event_token,
    load_model,
)
from analytics.sequence.lstm import _bucketed_batches, bucket_width, training_windows, validation_windows

TOKENS = [f"t{i}" for i in range(8)]


def first_order_sequences(n: int, length: int, seed: int) -> list[list[str]]:
    """Each token is followed by its successor (i+1 mod 8) with p=0.7, else a uniform token."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n):
        state = int(rng.integers(8))
        sequence = [state]
        for _ in range(length - 1):
            state = (state + 1) % 8 if rng.random() < 0.7 else int(rng.integers(8))
            sequence.append(state)
        sequences.append([TOKENS[i] for i in sequence])
    return sequences


def second_order_sequences(n: int, length: int, seed: int) -> list[list[str]]:
    """The token two steps back decides the next one (i+3 mod 8 with p=0.8); the last one does not."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n):
        sequence = [int(rng.integers(8)), int(rng.integers(8))]
        for _ in range(length - 2):
            back = sequence[-2]
            sequence.append((back + 3) % 8 if rng.random() < 0.8 else int(rng.integers(8)))
        sequences.append([TOKENS[i] for i in sequence])
    return sequences


def small_lstm(**overrides: object) -> NextEventModel:
    params: dict[str, object] = {
        "max_len": 20,
        "embedding_dim": 16,
        "units": 32,
        "dropout": 0.1,
        "epochs": 12,
        "batch_size": 32,
        "learning_rate": 0.01,
        "min_count": 1,
        "patience": 2,
        "random_state": 0,
    }
    params.update(overrides)
    return NextEventModel(**params)  # type: ignore[arg-type]


def hr1(model: SequenceModel, sequences: list[list[str]]) -> float:
    report = evaluate_next_event(model, [s[:-1] for s in sequences], [s[-1] for s in sequences], ks=(1,))
    return report.hit_rate[1]


@pytest.fixture(scope="module")
def first_order() -> tuple[list[list[str]], list[list[str]]]:
    return first_order_sequences(300, 16, seed=1), first_order_sequences(300, 12, seed=2)


@pytest.fixture(scope="module")
def first_order_lstm(first_order: tuple[list[list[str]], list[list[str]]]) -> NextEventModel:
    return small_lstm().fit(first_order[0])


def test_event_token_prefers_intent_over_kind() -> None:
    assert event_token("message", "pricing") == "pricing"
    assert event_token("reaction", None) == "reaction"
    assert event_token("message", "") == "message"
    vocabulary = TokenVocabulary.of(["pricing", "nlu_fallback"])  # an NLU model's labels
    assert {"pricing", "push_response", "nlu_fallback"} <= vocabulary.tokens
    with pytest.raises(ValueError, match="kind"):
        event_token("", "pricing")


def test_popularity_model_by_hand() -> None:
    model = PopularityModel(alpha=0.0).fit([["a", "b", "a"], ["a", "c"]])
    assert model.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(model.predict_proba([["b"], []]), [[0.6, 0.2, 0.2]] * 2)
    # b and c tie; the tie-break is stable and the popular token comes first.
    assert model.rank([["x"]], k=5) == [["a", "b", "c"]]


def test_markov_model_by_hand_and_backoff() -> None:
    model = MarkovModel(alpha=0.0).fit([["a", "b", "a", "b"], ["a", "c"]])
    proba = model.predict_proba([["b", "a"], ["a", "b"], ["c"], [], ["unknown"]])
    np.testing.assert_allclose(proba[0], [0.0, 2 / 3, 1 / 3])  # a -> b twice, a -> c once
    np.testing.assert_allclose(proba[1], [1.0, 0.0, 0.0])  # b -> a
    popularity = model.prior_
    for row in proba[2:]:  # c never precedes anything, empty and unknown: back off to popularity
        np.testing.assert_allclose(row, popularity)
    assert model.rank([["a"]], k=1) == [["b"]]


def test_models_reject_bad_input() -> None:
    with pytest.raises(TypeError, match="string"):
        MarkovModel().fit("abc")
    with pytest.raises(TypeError, match="non-string"):
        PopularityModel().fit([["a", 3]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="min_count"):
        PopularityModel(min_count=5).fit([["a", "b"]])
    with pytest.raises(NotFittedError):
        MarkovModel().predict_proba([["a"]])
    with pytest.raises(ValueError, match="k must be"):
        PopularityModel().fit([["a"]]).rank([["a"]], k=0)
    with pytest.raises(ValueError, match="dropout"):
        small_lstm(dropout=1.5).fit([["a", "b"]])
    with pytest.raises(ValueError, match="two or more tokens"):
        small_lstm().fit([["a"], ["b"]])


def test_training_windows_cover_every_target_once() -> None:
    x, y, w = training_windows([[2, 3, 4, 5, 6, 7, 8]], max_len=4)
    # 6 transitions, windows of 4 overlapping by half: starts 0 and 2; second weights only new targets.
    np.testing.assert_array_equal(x, [[2, 3, 4, 5], [4, 5, 6, 7]])
    np.testing.assert_array_equal(y, [[3, 4, 5, 6], [5, 6, 7, 8]])
    np.testing.assert_array_equal(w, [[1, 1, 1, 1], [0, 0, 1, 1]])
    assert w.sum() == 6
    x, y, w = training_windows([[2, 3], [4]], max_len=4)  # short sequences are right-padded
    np.testing.assert_array_equal(x, [[2]])
    xv, yv, wv = validation_windows([[2, 3, 4]], max_len=4)
    np.testing.assert_array_equal(xv, [[2, 3]])
    np.testing.assert_array_equal(yv, [[3, 4]])
    np.testing.assert_array_equal(wv, [[0, 1]])


def test_bucketed_batches_keep_shapes_keras_can_trace() -> None:
    rng = np.random.default_rng(0)
    encoded = [list(rng.integers(2, 9, size=length)) for length in rng.integers(2, 40, size=100)]
    x, y, w = training_windows(encoded, max_len=30)
    for shuffle in (True, False):
        batches = _bucketed_batches(x, y, w, batch_size=16, max_len=30, seed=0, shuffle=shuffle)
        items = [batches[i] for i in range(len(batches))]
        assert {item[0].shape[0] for item in items} == {16}  # one batch size throughout
        assert items[0][0].shape[1] != items[1][0].shape[1]  # Keras reads the signature off these two
        assert sum(float(item[2].sum()) for item in items) == pytest.approx(float(w.sum()))
        for xb, yb, wb in items:
            assert min(bucket_width(int((xb != 0).sum(axis=1).max()), 30), x.shape[1]) == xb.shape[1]
            assert ((wb > 0) <= (yb > 0)).all()
    assert (bucket_width(1, 50), bucket_width(9, 50), bucket_width(49, 50)) == (8, 16, 50)


def test_lstm_fits_sequences_of_mixed_lengths() -> None:
    rng = np.random.default_rng(1)
    sequences = [s[: int(rng.integers(3, 16))] for s in first_order_sequences(120, 16, seed=6)]
    model = small_lstm(epochs=2, max_len=12).fit(sequences)
    assert model.predict_proba([["t1"]]).shape == (1, 8)


@pytest.mark.parametrize(("batch_size", "validation"), [(1, False), (3, True), (32, True), (500, False)])
def test_lstm_fits_any_batch_size_with_bucketed_widths(batch_size: int, validation: bool) -> None:
    # Regression: bucketed batches have widths 8, 16, ..., max_len, so the input signature Keras
    # derives for its generator must leave the width open (it once fixed it to max_len and
    # failed on the first narrower batch with small batch sizes).
    rng = np.random.default_rng(batch_size)
    sequences = [s[: int(rng.integers(2, 41))] for s in first_order_sequences(24, 40, seed=7)]
    held_out = [s[:-1] for s in sequences[:8] if len(s) >= 3] if validation else None
    model = small_lstm(epochs=2, max_len=30, units=8, embedding_dim=4, patience=5)
    model.set_params(batch_size=batch_size).fit(sequences, validation_sequences=held_out)
    assert model.metrics_["epochs_run"] == 2
    assert model.predict_proba([["t1"], ["t2"] * 35]).shape == (2, 8)


def test_lstm_learns_first_order_structure(
    first_order: tuple[list[list[str]], list[list[str]]], first_order_lstm: NextEventModel
) -> None:
    train, test = first_order
    popularity = PopularityModel().fit(train)
    markov = MarkovModel().fit(train)
    lstm_hr, markov_hr, popularity_hr = hr1(first_order_lstm, test), hr1(markov, test), hr1(popularity, test)
    assert markov_hr > 0.6
    assert lstm_hr > popularity_hr + 0.3
    assert lstm_hr >= markov_hr - 0.03
    assert first_order_lstm.metrics_["epochs_run"] >= 1


@pytest.mark.slow
def test_lstm_beats_markov_on_longer_memory() -> None:
    train, test = second_order_sequences(300, 16, seed=3), second_order_sequences(300, 12, seed=4)
    markov = MarkovModel().fit(train)
    lstm = small_lstm().fit(train)
    assert hr1(lstm, test) > hr1(markov, test) + 0.3


def test_lstm_predict_proba_shape_unknowns_and_empty_prefix(first_order_lstm: NextEventModel) -> None:
    model = first_order_lstm
    assert model.classes_.tolist() == TOKENS
    proba = model.predict_proba([["t1", "t2"], [], ["never-seen"], ["t3"] * 100])
    assert proba.shape == (4, 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba >= 0).all()
    assert model.rank([["t1", "t2"]], k=2)[0][0] == "t3"
    batches = list(model.iter_predict_proba([["t1"]] * 5, batch_size=2))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert model.predict_proba([]).shape == (0, 8)


def test_lstm_save_load_round_trip(first_order_lstm: NextEventModel, tmp_path: Path) -> None:
    prefixes = [["t1", "t2"], [], ["t5", "x", "t6"]]
    first_order_lstm.save(tmp_path / "lstm")
    loaded = NextEventModel.load(tmp_path / "lstm")
    np.testing.assert_array_equal(loaded.predict_proba(prefixes), first_order_lstm.predict_proba(prefixes))
    assert loaded.get_params() == first_order_lstm.get_params()
    assert loaded.classes_.tolist() == TOKENS
    assert isinstance(load_model(tmp_path / "lstm"), NextEventModel)
    metadata = json.loads((tmp_path / "lstm" / "metadata.json").read_text())
    assert metadata["format_version"] == 1
    assert metadata["metrics"]["epochs_run"] >= 1


def test_lstm_load_rejects_mismatches(first_order_lstm: NextEventModel, tmp_path: Path) -> None:
    first_order_lstm.save(tmp_path / "m")
    path = tmp_path / "m" / "metadata.json"
    original = json.loads(path.read_text())
    path.write_text(json.dumps({**original, "format_version": 99}))
    with pytest.raises(ModelFormatError, match="format_version 99"):
        NextEventModel.load(tmp_path / "m")
    path.write_text(
        json.dumps(
            {**original, "vocabulary": [*original["vocabulary"], "zz"], "prior": [*original["prior"], 0]}
        )
    )
    with pytest.raises(ModelFormatError, match="vocabulary needs 11"):
        NextEventModel.load(tmp_path / "m")
    path.write_text(json.dumps({**original, "model_type": "markov"}))
    with pytest.raises(ModelFormatError, match="model_type 'markov'"):
        NextEventModel.load(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="no model metadata"):
        load_model(tmp_path / "missing")


@pytest.mark.parametrize("cls", [PopularityModel, MarkovModel])
def test_baselines_save_load_round_trip(cls: type[PopularityModel | MarkovModel], tmp_path: Path) -> None:
    model = cls().fit(first_order_sequences(50, 10, seed=5))
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded) is cls
    prefixes = [["t1"], [], ["t7", "t0"]]
    np.testing.assert_array_equal(loaded.predict_proba(prefixes), model.predict_proba(prefixes))
    assert loaded.rank(prefixes, k=3) == model.rank(prefixes, k=3)


def test_markov_load_rejects_bad_counts(tmp_path: Path) -> None:
    MarkovModel().fit([["a", "b"]]).save(tmp_path)
    path = tmp_path / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["state"]["transition_counts"] = [[1.0]]
    path.write_text(json.dumps(metadata))
    with pytest.raises(ModelFormatError, match=r"shape \(1, 1\)"):
        MarkovModel.load(tmp_path)
    metadata["model_type"] = "gru"
    path.write_text(json.dumps(metadata))
    with pytest.raises(ModelFormatError, match="unknown model_type 'gru'"):
        load_model(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ModelFormatError, match="unreadable"):
        load_model(tmp_path)


def test_importing_analytics_does_not_import_keras() -> None:
    code = (
        "import sys, analytics.sequence, analytics.followup, analytics.metrics, analytics.catalogue;"
        "bad = [m for m in ('keras', 'tensorflow') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
