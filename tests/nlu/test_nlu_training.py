"""Training procedure: validation split, thin data, one-intent data, and evaluation scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import (
    TrainingConfig,
    TrainingDataError,
    evaluate,
    load_training_data,
    reads_csv,
    reads_yaml,
    score,
    train,
)
from nlu.fallback import DEFAULT_TARGET_OUT_OF_SCOPE_RECALL
from nlu.training import split_validation


def test_split_keeps_thin_intents_in_training() -> None:
    data = reads_csv("text,intent\n" + "".join(f"a{i},big\n" for i in range(10)) + "x,small\ny,small\n")
    fit, val = split_validation(data.examples, fraction=0.2, random_state=0)
    assert sorted(e.intent for e in val) == ["big", "big"]
    assert sum(e.intent == "small" for e in fit) == 2
    again = split_validation(data.examples, fraction=0.2, random_state=0)
    assert again == (fit, val)


def test_trains_on_toy_data_with_metadata(toy_file: Path) -> None:
    model = train(load_training_data([toy_file]))
    assert model.parse("good morning to you").intent.name == "greet"
    assert model.parse("is it going to rain").intent.name == "weather"
    assert model.metadata["metrics"]["n_validation"] > 0
    assert len(model.metadata["data_hash"]) == 64


def test_an_intent_with_one_example_still_trains(caplog: pytest.LogCaptureFixture) -> None:
    data = reads_yaml(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n    - hey\n"
        "- intent: lonely\n  examples: |\n    - purple elephant\n"
    )
    model = train(data)
    assert model.parse("purple elephant").intent_ranking[0].name == "lonely"


def test_one_intent_is_a_clear_error() -> None:
    with pytest.raises(TrainingDataError, match="at least 2 intents"):
        train(reads_csv("text,intent\nhi,greet\nhello,greet\n"))


def test_explicit_validation_data_is_used(toy_file: Path) -> None:
    data = load_training_data([toy_file])
    validation = reads_csv("text,intent\nhey there,greet\nis it raining,weather\n")
    model = train(data, validation=validation)
    assert model.metadata["tuning"]["validation"] == "explicit"
    assert model.metadata["metrics"]["n_validation"] == 2


def test_score_by_hand() -> None:
    true = ["a", "a", "b", "out_of_scope", "out_of_scope"]
    predicted = ["a", "b", "b", "nlu_fallback", "a"]
    report = score(true, predicted)
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.in_scope_accuracy == pytest.approx(2 / 3)
    assert report.out_of_scope_recall == pytest.approx(1 / 2)
    assert report.fallback_rate == pytest.approx(1 / 5)
    per = {s.intent: s for s in report.per_intent}
    assert per["a"].precision == pytest.approx(1 / 2) and per["a"].recall == pytest.approx(1 / 2)
    assert per["b"].precision == pytest.approx(1 / 2) and per["b"].recall == 1.0
    assert per["out_of_scope"].f1 == pytest.approx(2 / 3)
    assert report.macro_f1 == pytest.approx((1 / 2 + 2 / 3 + 2 / 3) / 3)
    assert set(report.confused_pairs) == {("a", "b", 1), ("out_of_scope", "a", 1)}
    assert report.to_dict()["confused_pairs"][0]["count"] == 1
    with pytest.raises(ValueError, match="2 true labels and 1"):
        score(["a", "b"], ["a"])


def test_evaluate_a_model(toy_file: Path) -> None:
    data = load_training_data([toy_file])
    report = evaluate(train(data), data)
    assert report.n_examples == len(data.examples)
    assert report.accuracy >= 0.9


def test_recall_target_is_recorded(toy_file: Path) -> None:
    data = load_training_data([toy_file])
    assert TrainingConfig().target_out_of_scope_recall == DEFAULT_TARGET_OUT_OF_SCOPE_RECALL
    model = train(data, config=TrainingConfig(target_out_of_scope_recall=None))
    assert model.metadata["tuning"]["target_out_of_scope_recall"] is None
    model = train(data)
    assert model.metadata["tuning"]["target_out_of_scope_recall"] == DEFAULT_TARGET_OUT_OF_SCOPE_RECALL
