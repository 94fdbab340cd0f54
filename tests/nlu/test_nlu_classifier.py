"""The linear SVM classifier, temperature calibration and the fallback tuning."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from nlu import IntentClassifier, NotFittedError, TextFeaturizer, tune_fallback
from nlu.classifier import fit_temperature, softmax

TEXTS = ["hello", "hi there", "hey", "good morning", "bye", "goodbye", "see you", "bye bye"]
LABELS = ["greet"] * 4 + ["goodbye"] * 4


def test_fit_predict_and_probabilities() -> None:
    featurizer = TextFeaturizer(min_df=1).fit(TEXTS)
    X = featurizer.transform(TEXTS)
    clf = IntentClassifier(C=1.0, temperature=2.0).fit(X, LABELS)
    assert clf.classes_ == ["goodbye", "greet"]
    assert clf.coef_.shape == (X.shape[1], 2)
    assert clf.predict(X) == LABELS
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    indices, values = featurizer.transform_one("hello")
    np.testing.assert_allclose(clf.decision_one(indices, values), clf.decision_function(X[:1])[0], rtol=1e-5)


def test_one_intent_is_refused_and_unfitted_raises() -> None:
    X = TextFeaturizer(min_df=1).fit(TEXTS).transform(TEXTS)
    with pytest.raises(ValueError, match="at least 2 intents"):
        IntentClassifier().fit(X, ["greet"] * len(TEXTS))
    with pytest.raises(NotFittedError):
        IntentClassifier().decision_function(X)


def test_softmax_and_temperature_by_hand() -> None:
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]]), 1.0), [[0.25, 0.75]], rtol=1e-6)
    # labels always agree with the larger score: sharper is always better
    scores = np.array([[1.0, -1.0], [-1.0, 1.0]])
    assert fit_temperature(scores, np.array([0, 1])) > 10
    # half the labels disagree: confidences should be flat, so the sharpness goes to its lower bound
    mixed = np.array([[1.0, -1.0], [1.0, -1.0]])
    assert fit_temperature(mixed, np.array([0, 1])) < 0.1


def test_fallback_tuning_by_hand() -> None:
    classes = ["a", "b", "out_of_scope"]
    proba = np.array(
        [
            [0.90, 0.05, 0.05],  # a, right and sure
            [0.60, 0.35, 0.05],  # a, right but close to b
            [0.10, 0.80, 0.10],  # b, right
            [0.40, 0.35, 0.25],  # out of scope, unsure: should fall back
        ],
        dtype=np.float32,
    )
    labels = ["a", "a", "b", "out_of_scope"]
    strict = tune_fallback(proba, labels, classes, max_accuracy_drop=0.0)
    assert strict.out_of_scope_recall == 1.0
    assert strict.in_scope_accuracy == 1.0
    assert strict.policy.is_fallback(0.40, 0.35)
    assert not strict.policy.is_fallback(0.60, 0.35)
    no_oos = tune_fallback(proba[:3], labels[:3], classes, max_accuracy_drop=0.0)
    assert no_oos.out_of_scope_recall is None
    assert no_oos.in_scope_accuracy == 1.0


def _confidences(top1: list[float]) -> NDArray[np.float32]:
    """Rows whose best class is ``a`` with confidence ``top1`` and a distant runner-up."""
    return np.array([[value, 0.01, 0.0] for value in top1], dtype=np.float32)


def test_fallback_tuning_aims_at_recall_target_at_least_cost() -> None:
    classes = ["a", "b", "out_of_scope"]
    in_scope = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45]
    out_of_scope = [0.3, 0.4, 0.5, 0.95]
    proba = _confidences(in_scope + out_of_scope)
    labels = ["a"] * len(in_scope) + ["out_of_scope"] * len(out_of_scope)
    most = tune_fallback(proba, labels, classes, max_accuracy_drop=0.2)
    assert most.out_of_scope_recall == 0.75  # catches the 0.5 one by rejecting two right answers
    assert most.in_scope_accuracy == 0.8
    # target 25% plus one standard error (sqrt(0.25 * 0.75 / 4) ~ 0.22) needs 2 of the 4, at no cost
    aimed = tune_fallback(proba, labels, classes, max_accuracy_drop=0.2, target_out_of_scope_recall=0.25)
    assert aimed.out_of_scope_recall == 0.5
    assert aimed.in_scope_accuracy == 1.0
    # an unreachable target falls back to the most recall the accuracy cap allows
    unreachable = tune_fallback(
        proba, labels, classes, max_accuracy_drop=0.2, target_out_of_scope_recall=0.99
    )
    assert unreachable.policy == most.policy
    # without out-of-scope examples the target is ignored
    no_oos = tune_fallback(
        proba[:10], labels[:10], classes, max_accuracy_drop=0.0, target_out_of_scope_recall=0.5
    )
    assert no_oos.in_scope_accuracy == 1.0


def test_constructor_only_stores_parameters_and_fit_returns_self() -> None:
    params = {"C": 2.0, "temperature": 3.0, "dense_weight": 0.5, "skip_confidence": 0.9}
    clf = IntentClassifier(**params)
    assert {k: clf.get_params()[k] for k in params} == params
    assert not [name for name in vars(clf) if name.endswith("_")]  # nothing learned yet
    assert not clf.uses_embeddings
    X = TextFeaturizer(min_df=1).fit(TEXTS).transform(TEXTS)
    embeddings = np.eye(len(TEXTS), 4, dtype=np.float32)
    assert clf.fit(X, LABELS, embeddings) is clf
    assert {k: clf.get_params()[k] for k in params} == params  # fitting changed no parameter
    learned = {name for name in vars(clf) if name.endswith("_")}
    assert learned == {"classes_", "coef_", "intercept_", "dense_coef_", "dense_intercept_"}
    assert clf.dense_coef_ is not None and clf.dense_coef_.shape == (4, 2)
    assert clf.uses_embeddings


def test_the_parameters_describe_the_classifier_completely() -> None:
    X = TextFeaturizer(min_df=1).fit(TEXTS).transform(TEXTS)
    first = IntentClassifier(C=0.5, temperature=2.0).fit(X, LABELS)
    again = IntentClassifier(**first.get_params()).fit(X, LABELS)
    np.testing.assert_array_equal(again.coef_, first.coef_)
    np.testing.assert_allclose(again.predict_proba(X), first.predict_proba(X))


def test_from_fitted_rebuilds_a_classifier_and_checks_shapes() -> None:
    X = TextFeaturizer(min_df=1).fit(TEXTS).transform(TEXTS)
    fitted = IntentClassifier(temperature=2.0).fit(X, LABELS)
    rebuilt = IntentClassifier.from_fitted(
        classes=fitted.classes_, coef=fitted.coef_, intercept=fitted.intercept_, **fitted.get_params()
    )
    np.testing.assert_allclose(rebuilt.predict_proba(X), fitted.predict_proba(X))
    assert rebuilt.dense_coef_ is None and not rebuilt.uses_embeddings
    with pytest.raises(ValueError, match="coef has shape"):
        IntentClassifier.from_fitted(classes=["a", "b", "c"], coef=fitted.coef_, intercept=fitted.intercept_)
    with pytest.raises(ValueError, match="come together"):
        IntentClassifier.from_fitted(
            classes=fitted.classes_,
            coef=fitted.coef_,
            intercept=fitted.intercept_,
            dense_coef=np.zeros((3, 2)),
        )
    with pytest.raises(ValueError, match="unknown IntentClassifier parameters"):
        IntentClassifier.from_fitted(
            classes=fitted.classes_, coef=fitted.coef_, intercept=fitted.intercept_, gamma=1.0
        )
