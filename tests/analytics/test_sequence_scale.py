"""The LSTM at catalogue scale: output layer by vocabulary size, time budget, SASRec evaluation."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from analytics.metrics import evaluate_sampled
from analytics.sequence import MarkovModel, NextEventModel, PopularityModel, load_model
from analytics.sequence.lstm import SAMPLED_SOFTMAX_ABOVE, sampling_proposal
from analytics.sequence.sampled_eval import (
    draw_negatives,
    draw_negatives_batch,
    evaluate_leave_one_out,
    sampled_ranks,
)
from tests.analytics.test_sequence import TOKENS, first_order_sequences, hr1, small_lstm


class FixedScores:
    """A stand-in model whose probabilities are one fixed row per prefix's first token."""

    def __init__(self, classes: list[str], scores: dict[str, list[float]]) -> None:
        self.classes_ = np.array(classes, dtype=np.str_)
        self.scores = scores

    def predict_proba(self, prefixes: Sequence[Sequence[str]]) -> NDArray[np.float64]:
        return np.array([self.scores[prefix[0]] for prefix in prefixes], dtype=np.float64)

    def rank(self, prefixes: Sequence[Sequence[str]], k: int = 10) -> list[list[str]]:
        raise NotImplementedError


@pytest.fixture(scope="module")
def train_test() -> tuple[list[list[str]], list[list[str]]]:
    return first_order_sequences(300, 16, seed=11), first_order_sequences(200, 12, seed=12)


@pytest.fixture(scope="module")
def sampled_lstm(train_test: tuple[list[list[str]], list[list[str]]]) -> NextEventModel:
    # Eight tokens, but the threshold lowered below them: "auto" must pick the sampled softmax.
    return small_lstm(sampled_softmax_above=5, n_sampled=6).fit(train_test[0])


def test_output_layer_follows_the_vocabulary_size() -> None:
    model = NextEventModel()
    assert model.output_layer(SAMPLED_SOFTMAX_ABOVE) == (False, False)  # full softmax, untied
    assert model.output_layer(SAMPLED_SOFTMAX_ABOVE + 1) == (True, False)  # sampled, untied
    assert NextEventModel(softmax="full").output_layer(50_000) == (False, False)
    assert NextEventModel(softmax="sampled").output_layer(10) == (True, False)
    assert NextEventModel(tie_embeddings=True).output_layer(50_000) == (True, True)
    assert NextEventModel(tie_embeddings=True).output_layer(10) == (False, True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"softmax": "hierarchical"}, "softmax must be one of"),
        ({"n_sampled": 0}, "n_sampled"),
        ({"sampled_softmax_above": -1}, "sampled_softmax_above"),
        ({"max_train_seconds": 0}, "max_train_seconds"),
        ({"max_train_seconds": -5.0}, "max_train_seconds"),
        ({"tie_embeddings": "yes"}, "tie_embeddings"),
        ({"tie_embeddings": None}, "tie_embeddings"),
    ],
)
def test_new_parameters_are_checked(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_lstm(**params).fit([["a", "b", "a", "b"]])


def test_sampled_softmax_is_chosen_above_the_threshold_and_learns(
    sampled_lstm: NextEventModel, train_test: tuple[list[list[str]], list[list[str]]]
) -> None:
    metrics = sampled_lstm.metrics_
    assert metrics["sampled_softmax"] is True and metrics["tied_embeddings"] is False
    names = {layer.name for layer in sampled_lstm.model_.layers}
    assert {"embedding", "projection", "output_table"} <= names
    # The saved network still scores the whole vocabulary, and so does prediction.
    assert int(sampled_lstm.model_.output_shape[-1]) == len(TOKENS) + 2
    proba = sampled_lstm.predict_proba([["t1", "t2"], []])
    assert proba.shape == (2, len(TOKENS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    train, test = train_test
    assert hr1(sampled_lstm, test) > hr1(PopularityModel().fit(train), test) + 0.3
    assert hr1(sampled_lstm, test) >= hr1(MarkovModel().fit(train), test) - 0.05


def test_full_softmax_is_kept_below_the_threshold(
    train_test: tuple[list[list[str]], list[list[str]]],
) -> None:
    model = small_lstm(epochs=1).fit(train_test[0][:60])
    assert model.metrics_["sampled_softmax"] is False and model.metrics_["tied_embeddings"] is False
    names = {layer.name for layer in model.model_.layers}
    assert "projection" not in names and model.model_.get_layer("next_token").__class__.__name__ == "Dense"


def test_sampled_loss_matches_its_formula() -> None:
    import keras

    from analytics.sequence.lstm_keras import keras_layers

    layers = keras_layers()
    rng = np.random.default_rng(0)
    table = layers.TokenTable(6, 3, name="table")
    table.build()
    rows = rng.normal(size=(6, 3)).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    table.set_weights([rows, bias])
    proposal = np.array([0.0, 0.1, 0.2, 0.3, 0.2, 0.2])
    loss_layer = layers.SampledSoftmaxLoss(table, proposal, n_sampled=5, seed=3)
    hidden = rng.normal(size=(2, 2, 3)).astype(np.float32)
    targets = np.array([[2, 3], [5, 0]], dtype=np.int32)
    got = keras.ops.convert_to_numpy(loss_layer(hidden, targets, training=False))
    candidates = loss_layer.fixed_candidates
    log_expected = np.log(np.maximum(proposal, 1e-12) * 5)
    expected = np.zeros((2, 2))
    for b in range(2):
        for t in range(2):
            target = targets[b, t]
            true = hidden[b, t] @ rows[target] + bias[target] - log_expected[target]
            sampled = hidden[b, t] @ rows[candidates].T + bias[candidates] - log_expected[candidates]
            sampled = np.where(candidates == target, -1e9, sampled)  # accidental hits removed
            logits = np.concatenate([[true], sampled])
            expected[b, t] = math.log(np.exp(logits - logits.max()).sum()) + logits.max() - true
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert (candidates > 0).all()  # padding (proposal 0) is never drawn


def test_sampling_proposal_favours_popular_tokens_and_never_padding() -> None:
    proposal = sampling_proposal(np.array([2, 2, 2, 2, 3, 0, 0]), 5)
    assert proposal[0] == 0.0
    assert proposal.sum() == pytest.approx(1.0)
    assert proposal[2] > proposal[3] > proposal[4] > 0  # counts 4, 1, 0 (plus one each)
    assert proposal[2] / proposal[4] == pytest.approx(5**0.75, rel=1e-5)


def test_time_budget_stops_training_keeps_a_usable_model_and_says_so(
    train_test: tuple[list[list[str]], list[list[str]]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="analytics.sequence.lstm")
    model = small_lstm(epochs=50, patience=50, max_train_seconds=0.01).fit(train_test[0])
    assert model.metrics_["stopped_by_budget"] is True
    assert model.metrics_["epochs_run"] == 1  # stopped inside the first epoch
    assert model.metrics_["best_epoch"] == 1 and math.isfinite(model.metrics_["best_val_loss"])
    assert model.predict_proba([["t1"]]).shape == (1, len(TOKENS))
    messages = [record.getMessage() for record in caplog.records]
    assert any("lstm epoch 1/50" in m and "time budget reached" in m for m in messages)
    assert any("stopped by the time budget" in m for m in messages)
    # Stopped between batches, not at the end of an epoch (this epoch has ten batches; the
    # batch hook may run a batch behind on Keras's helper thread).
    assert any(re.search(r"budget of 0 s reached after [12] batches of epoch 1", m) for m in messages)
    model.save(tmp_path)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata["metrics"]["stopped_by_budget"] is True
    assert metadata["parameters"]["max_train_seconds"] == 0.01


def test_no_budget_hit_is_reported_as_such(sampled_lstm: NextEventModel) -> None:
    assert sampled_lstm.metrics_["stopped_by_budget"] is False
    assert sampled_lstm.metrics_["epochs_run"] >= 2
    assert sampled_lstm.metrics_["seconds_per_epoch"] > 0
    assert sampled_lstm.metrics_["cpu_cores_busy"] > 0


def test_monitor_restores_the_best_weights_however_training_ends() -> None:
    import keras

    from analytics.sequence.lstm_keras import keras_layers

    network = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    network.compile(optimizer="adam", loss="mse")
    monitor = keras_layers().TrainingMonitor(
        monitor="val_loss", started=0.0, budget=None, epochs=3, log=logging.getLogger("test")
    )
    monitor.set_model(network)
    best = [np.full_like(w, 1.0) for w in network.get_weights()]
    for epoch, (weights, loss) in enumerate([(best, 0.5), ([w * 0 + 2 for w in best], 0.9)]):
        network.set_weights(weights)
        monitor.on_epoch_begin(epoch)
        monitor.on_epoch_end(epoch, {"loss": loss, "val_loss": loss})
    monitor.on_train_end()
    for got, want in zip(network.get_weights(), best, strict=True):
        np.testing.assert_array_equal(got, want)
    assert monitor.best_epoch == 1 and monitor.best == 0.5 and not monitor.stopped_by_budget


@pytest.mark.parametrize("options", [{"sampled_softmax_above": 5, "n_sampled": 4, "tie_embeddings": True}])
def test_saved_models_with_the_new_options_load_back_and_predict_the_same(
    options: dict[str, object],
    sampled_lstm: NextEventModel,
    train_test: tuple[list[list[str]], list[list[str]]],
    tmp_path: Path,
) -> None:
    tied = small_lstm(epochs=2, **options).fit(train_test[0][:80])
    assert tied.metrics_["sampled_softmax"] is True and tied.metrics_["tied_embeddings"] is True
    assert "output_table" not in {layer.name for layer in tied.model_.layers}  # one table for both
    prefixes = [["t1", "t2"], [], ["t5", "x", "t6"], ["t3"] * 40]
    for name, model in (("tied", tied), ("untied", sampled_lstm)):
        model.save(tmp_path / name)
        loaded = load_model(tmp_path / name)
        assert isinstance(loaded, NextEventModel)
        np.testing.assert_array_equal(loaded.predict_proba(prefixes), model.predict_proba(prefixes))
        assert loaded.rank(prefixes, k=3) == model.rank(prefixes, k=3)
        assert loaded.get_params() == model.get_params()
        assert loaded.metrics_ == model.metrics_


def test_a_model_saved_before_these_options_still_loads(sampled_lstm: NextEventModel, tmp_path: Path) -> None:
    model = small_lstm(epochs=1).fit(first_order_sequences(40, 8, seed=13))
    model.save(tmp_path)
    path = tmp_path / "metadata.json"
    metadata = json.loads(path.read_text())
    for name in ("softmax", "sampled_softmax_above", "n_sampled", "tie_embeddings", "max_train_seconds"):
        del metadata["parameters"][name]
    path.write_text(json.dumps(metadata))
    loaded = NextEventModel.load(tmp_path)
    assert loaded.softmax == "auto" and loaded.max_train_seconds == NextEventModel().max_train_seconds
    np.testing.assert_array_equal(loaded.predict_proba([["t1"], []]), model.predict_proba([["t1"], []]))


# --- the SASRec protocol --------------------------------------------------------------------


def test_sasrec_protocol_on_a_hand_made_case() -> None:
    # Ten classes; each user's history plus target leaves exactly six unseen, and six negatives
    # are asked for, so every unseen class is a negative and each rank is known in advance.
    classes = [f"c{i}" for i in range(10)]

    def row(values: dict[int, float]) -> list[float]:
        return [values.get(i, 0.0) for i in range(10)]

    model = FixedScores(
        classes,
        {
            # user a: history c0 c1 c2, target c3 scores above every unseen class -> rank 1;
            # the history itself scores higher still, but is never a negative.
            "c0": row({0: 0.9, 1: 0.9, 2: 0.9, 3: 0.5, 4: 0.1}),
            # user b: history c4 c5 c6, target c7: two unseen classes above it -> rank 3.
            "c4": row({8: 0.6, 9: 0.5, 7: 0.4, 0: 0.1}),
            # user c: history c1 c2 c3, target c0: four above, one tied -> rank 5.5.
            "c1": row({4: 0.5, 5: 0.5, 6: 0.5, 7: 0.5, 8: 0.2, 0: 0.2}),
        },
    )
    sequences = [["c0", "c1", "c2", "c3"], ["c4", "c5", "c6", "c7"], ["c1", "c2", "c3", "c0"]]
    result = sampled_ranks(model, [s[:-1] for s in sequences], [s[-1] for s in sequences], n_negatives=6)
    np.testing.assert_array_equal(result.ranks, [1.0, 3.0, 5.5])
    assert result.short == 0 and result.unknown == 0
    report = result.report(ks=(1, 3, 10))
    assert report.hit_rate == {1: pytest.approx(1 / 3), 3: pytest.approx(2 / 3), 10: pytest.approx(1.0)}
    assert report.ndcg[3] == pytest.approx((1.0 + 1.0 / math.log2(4)) / 3)
    assert report.ndcg[10] == pytest.approx((1.0 + 1.0 / math.log2(4) + 1.0 / math.log2(6.5)) / 3)
    assert report.mrr == pytest.approx((1.0 + 1 / 3 + 1 / 5.5) / 3)
    whole = evaluate_leave_one_out(model, [*sequences, ["c0"]], n_negatives=6, ks=(3,))
    assert whole.n == 3 and whole.hit_rate[3] == pytest.approx(2 / 3)  # one-token users skipped
    # Asking for more negatives than there are unseen classes uses them all and says so.
    short = sampled_ranks(model, [sequences[0][:-1]], [sequences[0][-1]], n_negatives=50)
    assert short.short == 1 and short.ranks.tolist() == [1.0]
    unknown = sampled_ranks(model, [["c0"]], ["never-seen"], n_negatives=6)
    assert unknown.unknown == 1 and unknown.ranks.tolist() == [7.0]


def test_negatives_are_never_in_the_history_distinct_uniform_and_seeded() -> None:
    rng = np.random.default_rng(5)
    seen = [rng.choice(400, size=int(rng.integers(1, 60)), replace=False) for _ in range(3000)]
    seen[0] = np.append(seen[0], [-1])  # a token the model does not know is ignored
    draws = draw_negatives_batch(seen, 400, 20, np.random.default_rng(1))
    assert draws.shape == (3000, 20) and draws.min() >= 0 and draws.max() < 400
    for history, row in zip(seen, draws, strict=True):
        assert len(set(row.tolist())) == 20
        assert not set(row.tolist()) & set(history.tolist())
    counts = np.bincount(draws.ravel(), minlength=400)
    # Uniform over each user's unseen classes: class c expects 20 / (400 - |seen|) from each user
    # who never had it; every class must land within a loose band around that.
    expected = np.zeros(400)
    for history in seen:
        unseen = np.setdiff1d(np.arange(400), history)
        expected[unseen] += 20 / len(unseen)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 5)
    np.testing.assert_array_equal(draws, draw_negatives_batch(seen, 400, 20, np.random.default_rng(1)))
    assert not np.array_equal(draws, draw_negatives_batch(seen, 400, 20, np.random.default_rng(2)))
    few = draw_negatives(np.arange(0, 395), 400, 20, np.random.default_rng(0))
    assert sorted(few.tolist()) == [395, 396, 397, 398, 399]
    with pytest.raises(ValueError, match="n_negatives"):
        draw_negatives_batch(seen, 400, 0, rng)


def test_sasrec_figures_agree_with_the_existing_sampled_metric(
    train_test: tuple[list[list[str]], list[list[str]]],
) -> None:
    # Same protocol, different draws: on a 300-token vocabulary the two estimates must agree.
    rng = np.random.default_rng(3)
    sequences = [[f"x{int(v)}" for v in rng.zipf(1.3, size=12) % 300] for _ in range(1500)]
    model = MarkovModel().fit(sequences[:1000])
    test = sequences[1000:]
    ours = evaluate_leave_one_out(model, test, n_negatives=20, ks=(10,))
    theirs = evaluate_sampled(model, [s[:-1] for s in test], [s[-1] for s in test], n_negatives=20)
    assert ours.hit_rate[10] == pytest.approx(theirs.hit_rate[10], abs=0.04)
    with pytest.raises(ValueError, match="prefixes but"):
        sampled_ranks(model, [["x1"]], [])
