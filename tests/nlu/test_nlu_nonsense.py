"""Gibberish falls back: the generated nonsense, its class, the tuning check and the default model."""

from __future__ import annotations

import numpy as np

from nlu import (
    FALLBACK_INTENT,
    NLUModel,
    TrainingConfig,
    load_training_data,
    reads_yaml,
    train,
    tune_fallback,
)
from nlu.default import default_data_paths
from nlu.featurizer import normalize
from nlu.nonsense import GENERATORS, KEYBOARD_ROWS, generate_nonsense

# The strings of issue 18, and more of each kind; none is produced by the training seeds.
GIBBERISH = [
    "asdkjh qwpoeiru",
    "jjjjjjjj",
    "фывапролдж",
    "qwertyuiop",
    "zxcvbnm",
    "lkjhgf",
    "hfjdkslaowie",
    "ываыва",
    "鬱鬣鼈龜龘",
    "xcvxcvxcv",
]
REAL = {
    "hello": "greet",
    "thanks a lot": "thanks",
    "how much is the pro plan": "pricing",
    "how do I get an api key": "api_keys",
    "I want to talk to a human": "human_handoff",
    "你好": "greet",
    "专业版多少钱": "pricing",
    "我想删除我的数据": "data_privacy",
}


def test_generated_nonsense_is_deterministic_distinct_and_never_a_known_text() -> None:
    known = ["hello", "asdf"]
    first = generate_nonsense(120, random_state=3, known_texts=known)
    assert first == generate_nonsense(120, random_state=3, known_texts=known)
    assert first != generate_nonsense(120, random_state=4, known_texts=known)
    assert len(first) == len(set(first)) == 120
    assert not {normalize(text) for text in first} & {normalize(text) for text in known}
    assert all(text.strip() for text in first)


def test_every_kind_of_nonsense_is_generated() -> None:
    texts = generate_nonsense(6 * 20, random_state=0, known_texts=["专业版多少钱"])
    latin = [t for t in texts if t.replace(" ", "").isascii() and t.replace(" ", "").isalpha()]
    repeated = [t for t in texts if len(set(t)) == 1 and len(t) >= 4]
    on_a_row = [t for t in texts if any(t[:4] in row or t[:4][::-1] in row for row in KEYBOARD_ROWS)]
    ideographs = [t for t in texts if all("\u4e00" <= c <= "\u9fa5" for c in t)]
    from_the_data = [t for t in ideographs if set(t) <= set("专业版多少钱")]
    assert len(GENERATORS) == 6
    assert min(len(latin), len(repeated), len(on_a_row), len(ideographs), len(from_the_data)) >= 10


def test_tuning_must_fall_back_on_the_nonsense_by_hand() -> None:
    classes = ["a", "b"]
    proba = np.array([[0.95, 0.05], [0.9, 0.1], [0.1, 0.9], [0.2, 0.8]], dtype=np.float32)
    labels = ["a", "a", "b", "b"]
    nonsense = np.array([[0.6, 0.4], [0.7, 0.3], [0.45, 0.55]], dtype=np.float32)
    without = tune_fallback(proba, labels, classes, max_accuracy_drop=0.0)
    assert without.nonsense_recall is None
    assert not without.policy.is_fallback(0.7, 0.3)  # nothing told it 0.7 is nonsense
    checked = tune_fallback(proba, labels, classes, max_accuracy_drop=0.0, nonsense_proba=nonsense)
    assert checked.nonsense_recall == 1.0 and checked.in_scope_accuracy == 1.0
    assert checked.policy.is_fallback(0.7, 0.3) and not checked.policy.is_fallback(0.8, 0.2)
    # a nonsense row as sure as a right answer cannot be caught within the cap: the most that can is
    sure = np.vstack([nonsense, [[0.95, 0.05]]])
    capped = tune_fallback(
        proba, labels, classes, max_accuracy_drop=0.0, nonsense_proba=sure, min_nonsense_recall=1.0
    )
    assert capped.nonsense_recall == 0.75 and capped.in_scope_accuracy == 1.0


def test_predicting_the_nonsense_class_counts_as_falling_back() -> None:
    classes = ["a", "b", FALLBACK_INTENT]
    proba = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]], dtype=np.float32)
    nonsense = np.array([[0.02, 0.03, 0.95]], dtype=np.float32)
    tuning = tune_fallback(proba, ["a", "b"], classes, max_accuracy_drop=0.0, nonsense_proba=nonsense)
    assert tuning.nonsense_recall == 1.0
    assert tuning.policy.threshold <= 0.9


def test_default_model_falls_back_on_gibberish(default_model: NLUModel) -> None:
    for text in GIBBERISH:
        result = default_model.parse(text)
        assert result.intent.name == FALLBACK_INTENT, (text, result.intent_ranking[:2])
        assert FALLBACK_INTENT not in [s.name for s in result.intent_ranking[1:]]
    assert [r.intent.name for r in default_model.parse_batch(GIBBERISH)] == [FALLBACK_INTENT] * len(GIBBERISH)


def test_default_model_falls_back_on_unseen_generated_nonsense(default_model: NLUModel) -> None:
    known = load_training_data(default_data_paths()).texts
    texts = generate_nonsense(300, random_state=12345, known_texts=known)
    fallbacks = [r.intent.name == FALLBACK_INTENT for r in default_model.parse_batch(texts)]
    assert np.mean(fallbacks) >= 0.9


def test_default_model_still_answers_real_questions(default_model: NLUModel) -> None:
    for text, intent in REAL.items():
        assert default_model.parse(text).intent.name == intent, text
    assert FALLBACK_INTENT not in default_model.labels
    metrics = default_model.metadata["metrics"]
    assert metrics["validation_accuracy"] >= 0.9
    assert metrics["validation_in_scope_accuracy"] >= 0.9
    assert metrics["validation_nonsense_recall"] >= TrainingConfig().min_nonsense_recall
    assert default_model.metadata["tuning"]["n_nonsense"] > 0


def test_small_data_trains_no_nonsense_class() -> None:
    n_per_intent = 4
    rows = "\n".join(
        f"- intent: {name}\n  examples: |\n"
        + "".join(f"    - {name} example {i}\n" for i in range(n_per_intent))
        for name in ("greet", "bye", "price")
    )
    model = train(reads_yaml(f'version: "3.1"\nnlu:\n{rows}'), config=TrainingConfig(sentence_encoder=None))
    assert FALLBACK_INTENT not in model.classifier.classes_
    assert model.metadata["tuning"]["n_nonsense"] == 0
