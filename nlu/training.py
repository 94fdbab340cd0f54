"""Training: carve a validation split, choose C, calibrate, tune the fallback, then refit on everything."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from scipy import sparse

from nlu.classifier import IntentClassifier, fit_temperature
from nlu.entities import EntityExtractor
from nlu.errors import TrainingDataError
from nlu.fallback import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_TARGET_OUT_OF_SCOPE_RECALL,
    FallbackPolicy,
    tune_fallback,
)
from nlu.featurizer import TextFeaturizer
from nlu.model import NLUModel
from nlu.results import OUT_OF_SCOPE_INTENT
from nlu.training_data import Example, TrainingData

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters and the tuning procedure's settings.

    ``c_grid`` is searched on the validation split; ``max_accuracy_drop`` caps the in-scope accuracy
    the fallback tuning may give up, and ``target_out_of_scope_recall`` (when the data has
    ``out_of_scope`` examples) is the recall it aims for at the least in-scope cost; ``None`` catches
    as many out-of-scope messages as the cap allows. See :func:`nlu.fallback.tune_fallback`.
    """

    c_grid: tuple[float, ...] = (1.0, 2.0)
    validation_fraction: float = 0.2
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    target_out_of_scope_recall: float | None = DEFAULT_TARGET_OUT_OF_SCOPE_RECALL
    word_ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] = (2, 5)
    min_df: int = 2
    random_state: int = 0


def split_validation(
    examples: tuple[Example, ...], *, fraction: float, random_state: int
) -> tuple[list[Example], list[Example]]:
    """Stratified hold-out: ``fraction`` of each intent with at least 3 examples goes to validation.

    Intents with fewer examples stay whole in the training part, so none disappears from the model.
    """
    rng = np.random.default_rng(random_state)
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example)
    train: list[Example] = []
    validation: list[Example] = []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        order = rng.permutation(len(group))
        n_val = round(len(group) * fraction) if len(group) >= 3 else 0
        validation.extend(group[i] for i in order[:n_val])
        train.extend(group[i] for i in order[n_val:])
    return train, validation


def _featurizer(config: TrainingConfig) -> TextFeaturizer:
    return TextFeaturizer(
        word_ngram_range=config.word_ngram_range,
        char_ngram_range=config.char_ngram_range,
        min_df=config.min_df,
    )


def _fit_grid(config: TrainingConfig, X: sparse.csr_matrix, labels: list[str]) -> list[IntentClassifier]:
    """One classifier per C, fitted in threads (liblinear releases the GIL), in ``c_grid`` order."""

    def fit(c_value: float) -> IntentClassifier:
        return IntentClassifier(C=c_value, random_state=config.random_state).fit(X, labels)

    workers = max(1, min(len(config.c_grid), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fit, config.c_grid))


def _accuracy(predicted: list[str], labels: list[str]) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)])) if labels else 0.0


def train(
    data: TrainingData, *, config: TrainingConfig | None = None, validation: TrainingData | None = None
) -> NLUModel:
    """Train a model on ``data``; tune on ``validation`` or, when absent, on a split carved from ``data``.

    With a carved split the final model is refitted on all of ``data`` with the chosen settings; with
    explicit validation data the model never sees it during fitting.

    Raises:
        TrainingDataError: fewer than two intents.
    """
    config = config or TrainingConfig()
    started = time.perf_counter()
    intents = data.intents
    if len(intents) < 2:
        raise TrainingDataError(f"training needs at least 2 intents, got {intents!r}")
    if validation is None:
        fit_part, val_part = split_validation(
            data.examples, fraction=config.validation_fraction, random_state=config.random_state
        )
    else:
        fit_part, val_part = list(data.examples), list(validation.examples)
    val_texts = [e.text for e in val_part]
    val_labels = [e.intent for e in val_part]
    fit_labels = [e.intent for e in fit_part]
    chosen_c, temperature, policy = config.c_grid[len(config.c_grid) // 2], 1.0, FallbackPolicy()
    metrics: dict[str, float | int | None] = {"n_validation": len(val_part)}
    if val_part and len(set(fit_labels)) >= 2:
        featurizer = _featurizer(config).fit([e.text for e in fit_part])
        X_fit = featurizer.transform([e.text for e in fit_part])
        X_val = featurizer.transform(val_texts)
        best: tuple[float, IntentClassifier] | None = None
        for c_value, candidate in zip(config.c_grid, _fit_grid(config, X_fit, fit_labels), strict=True):
            accuracy = _accuracy(candidate.predict(X_val), val_labels)
            logger.info("C=%s: validation accuracy %.4f", c_value, accuracy)
            if best is None or accuracy > best[0]:
                best = (accuracy, candidate)
        assert best is not None
        classifier = best[1]
        chosen_c = classifier.C
        index = {label: i for i, label in enumerate(classifier.classes_)}
        known = [i for i, label in enumerate(val_labels) if label in index]
        scores = classifier.decision_function(X_val)
        if known:
            targets = np.asarray([index[val_labels[i]] for i in known], dtype=np.intp)
            temperature = fit_temperature(scores[known], targets)
        classifier.temperature = temperature
        tuning = tune_fallback(
            classifier.predict_proba(X_val),
            val_labels,
            classifier.classes_,
            max_accuracy_drop=config.max_accuracy_drop,
            target_out_of_scope_recall=config.target_out_of_scope_recall,
        )
        policy = tuning.policy
        metrics.update(
            validation_accuracy=best[0],
            validation_in_scope_accuracy=tuning.in_scope_accuracy,
            validation_out_of_scope_recall=tuning.out_of_scope_recall,
        )
    else:
        logger.warning(
            "training data too small for a validation split: using C=%s and default thresholds", chosen_c
        )
    featurizer = _featurizer(config).fit(data.texts)
    classifier = IntentClassifier(C=chosen_c, temperature=temperature, random_state=config.random_state)
    classifier.fit(featurizer.transform(data.texts), data.labels)
    extractor = EntityExtractor().fit(data)
    seconds = time.perf_counter() - started
    metadata = {
        "data_hash": data.fingerprint(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_examples": len(data.examples),
        "has_out_of_scope_intent": OUT_OF_SCOPE_INTENT in intents,
        "tuning": {
            "c_grid": list(config.c_grid),
            "validation": "explicit" if validation is not None else f"split {config.validation_fraction}",
            "max_accuracy_drop": config.max_accuracy_drop,
            "target_out_of_scope_recall": config.target_out_of_scope_recall,
        },
        "metrics": {**metrics, "training_seconds": round(seconds, 3)},
    }
    logger.info(
        "trained NLU model: %d examples, %d intents, C=%s, T=%.3f, threshold=%.3f in %.1fs",
        len(data.examples), len(intents), chosen_c, temperature, policy.threshold, seconds,
    )  # fmt: skip
    return NLUModel(featurizer, classifier, extractor, policy, metadata)
