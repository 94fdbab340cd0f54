"""Before-versus-after validation of a retraining."""

from __future__ import annotations

import pytest

from nlu import TrainingConfig, TrainingDataError
from nlu.retraining import Figures, compare, verdict
from nlu.training_data import Example, TrainingData

FAST = TrainingConfig(sentence_encoder=None, c_grid=(1.0,))
OLD = {
    "greet": ["hi", "hello", "hey there", "good morning", "hello bot", "hey", "morning", "hiya", "yo", "sup"],
    "pricing": [
        "how much", "price please", "what does it cost", "pricing", "cost per month",
        "how expensive", "price of pro", "team plan cost", "is it free", "monthly fee",
    ],
}  # fmt: skip
MARS = ["ship to mars", "deliver to mars", "mars delivery", "send it to mars", "mars shipping please"]


def _data(intents: dict[str, list[str]]) -> TrainingData:
    return TrainingData(tuple(Example(t, i) for i, texts in intents.items() for t in texts))


def _figures(macro_f1: float, known: float | None) -> Figures:
    return Figures(n=10, accuracy=macro_f1, macro_f1=macro_f1, known_n=8, known_accuracy=known)


@pytest.mark.parametrize(
    ("before", "after", "no_worse", "reason"),
    [
        (_figures(0.80, 0.90), _figures(0.80, 0.90), True, "no worse"),
        (_figures(0.80, 0.90), _figures(0.79, 0.95), False, "worse: held-out macro-F1 0.790 vs 0.800"),
        (_figures(0.80, 0.90), _figures(0.85, 0.891), True, "no worse"),  # within one point
        (_figures(0.80, 0.90), _figures(0.85, 0.88), False, "worse on what it knew"),
        (_figures(0.80, None), _figures(0.85, None), True, "no worse"),
    ],
)
def test_verdict(before: Figures, after: Figures, no_worse: bool, reason: str) -> None:
    decided, why = verdict(before, after)
    assert decided is no_worse and why.startswith(reason)


def test_learning_a_new_intent_scores_better_on_the_same_held_out_examples() -> None:
    old = _data(OLD)
    new = _data({**OLD, "shipping_to_mars": MARS})
    result = compare(old, new, config=FAST)
    assert result.before.n == result.after.n == 5  # 2 of each old intent, 1 of the new one
    assert result.before.known_n == result.after.known_n == 4
    assert result.n_train_before == 16 and result.n_train_after == 20
    assert result.before.accuracy <= 0.8  # it cannot know the held-out Mars question
    assert result.after.macro_f1 > result.before.macro_f1 and result.no_worse


def test_nothing_to_hold_out_is_an_error() -> None:
    tiny = _data({"a": ["x", "y"], "b": ["z", "w"]})
    with pytest.raises(TrainingDataError, match="hold some out"):
        compare(tiny, tiny, config=FAST)
