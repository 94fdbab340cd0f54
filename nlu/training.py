"""Training: carve a validation split, choose C and the embedding weight, calibrate, tune the fallback,
then refit on everything."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from scipy import sparse

from nlu.classifier import (
    NEVER_SKIP,
    FloatArray,
    IntentClassifier,
    fit_dense_head,
    fit_temperature,
    softmax,
)
from nlu.encoder import USE_MULTILINGUAL_V3, SentenceEncoder, get_encoder
from nlu.entities import EntityExtractor
from nlu.errors import TrainingDataError
from nlu.fallback import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_TARGET_OUT_OF_SCOPE_RECALL,
    FallbackPolicy,
    tune_fallback,
)
from nlu.featurizer import TextFeaturizer, normalize
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

    ``sentence_encoder`` names the pretrained encoder whose embeddings feed the classifier's second
    head (``None``: n-grams only); ``dense_weight_grid`` is searched on the validation split together
    with ``c_grid``, and ``default_dense_weight`` is used when the data is too small to split. The
    cascade (the SVM answers alone when sure) uses the lowest confidence of ``skip_confidence_grid``
    that loses at most ``max_cascade_accuracy_drop`` of validation accuracy against both heads.
    """

    c_grid: tuple[float, ...] = (1.0, 2.0)
    sentence_encoder: str | None = USE_MULTILINGUAL_V3
    dense_c: float = 10.0
    dense_weight_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
    default_dense_weight: float = 0.3
    skip_confidence_grid: tuple[float, ...] = (0.8, 0.85, 0.9, 0.95, 0.97, 0.99)
    max_cascade_accuracy_drop: float = 0.002
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


def _embedder(
    encoder: SentenceEncoder | None, texts: Sequence[str]
) -> Callable[[Sequence[str]], FloatArray | None]:
    """Encode every distinct text once; the returned function looks rows up by text."""
    if encoder is None:
        return lambda _texts: None
    distinct = list(dict.fromkeys(texts))
    vectors = encoder.encode([normalize(text) for text in distinct])
    row = {text: i for i, text in enumerate(distinct)}
    return lambda wanted: vectors[[row[text] for text in wanted]]


def _fit_parallel(
    config: TrainingConfig,
    c_values: Sequence[float],
    X: sparse.csr_matrix,
    labels: list[str],
    embeddings: FloatArray | None,
) -> tuple[list[IntentClassifier], tuple[FloatArray, FloatArray] | None]:
    """One SVM per C and the embedding head, fitted in threads (liblinear and BLAS release the GIL)."""

    def fit(c_value: float) -> IntentClassifier:
        return IntentClassifier(C=c_value, random_state=config.random_state).fit(X, labels)

    workers = max(1, min(len(c_values) + (embeddings is not None), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        head: Future[tuple[FloatArray, FloatArray]] | None = None
        if embeddings is not None:
            head = pool.submit(fit_dense_head, embeddings, labels, C=config.dense_c)
        classifiers = list(pool.map(fit, c_values))
        return classifiers, head.result() if head is not None else None


def _accuracy(predicted: list[str], labels: list[str]) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)])) if labels else 0.0


def _choose(
    config: TrainingConfig,
    candidates: list[IntentClassifier],
    head: tuple[FloatArray, FloatArray] | None,
    X_val: sparse.csr_matrix,
    E_val: FloatArray | None,
    val_labels: list[str],
) -> tuple[float, IntentClassifier]:
    """The (C, embedding weight) pair with the best validation accuracy; ties go to the earlier pair.

    Returns the accuracy and the chosen classifier, its head attached and weighted.
    """
    dense = None
    if head is not None and E_val is not None:
        for candidate in candidates:
            candidate.set_dense_head(*head)
        dense = candidates[0].dense_scores(E_val)
    weights = config.dense_weight_grid if dense is not None else (0.0,)
    best: tuple[float, IntentClassifier, float] | None = None
    for candidate in candidates:
        sparse_scores = candidate.sparse_scores(X_val)
        classes = np.asarray(candidate.classes_)
        for weight in weights:
            scores = sparse_scores if dense is None or weight == 0.0 else sparse_scores + weight * dense
            accuracy = _accuracy(classes[scores.argmax(axis=1)].tolist(), val_labels)
            logger.info("C=%s, embedding weight %s: validation accuracy %.4f", candidate.C, weight, accuracy)
            if best is None or accuracy > best[0]:
                best = (accuracy, candidate, weight)
    assert best is not None
    accuracy, classifier, weight = best
    classifier.dense_weight = weight
    return accuracy, classifier


def _choose_skip_confidence(
    config: TrainingConfig,
    classifier: IntentClassifier,
    sparse_scores: FloatArray,
    full_proba: FloatArray,
    val_labels: list[str],
) -> tuple[float, float]:
    """The lowest SVM-alone confidence from which skipping the embedding keeps validation accuracy.

    Returns ``(skip_confidence, share of validation messages that skip)``; ``NEVER_SKIP`` when no
    grid value keeps accuracy within ``max_cascade_accuracy_drop``.
    """
    classes = np.asarray(classifier.classes_)
    labels = np.asarray(val_labels)
    sparse_proba = softmax(sparse_scores, classifier.sparse_temperature)
    sure = sparse_proba.max(axis=1)
    full_correct = classes[full_proba.argmax(axis=1)] == labels
    sparse_correct = classes[sparse_proba.argmax(axis=1)] == labels
    for threshold in sorted(config.skip_confidence_grid):
        skip = sure >= threshold
        accuracy = float(np.where(skip, sparse_correct, full_correct).mean())
        if accuracy >= float(full_correct.mean()) - config.max_cascade_accuracy_drop:
            return threshold, float(skip.mean())
    return NEVER_SKIP, 0.0


def train(
    data: TrainingData, *, config: TrainingConfig | None = None, validation: TrainingData | None = None
) -> NLUModel:
    """Train a model on ``data``; tune on ``validation`` or, when absent, on a split carved from ``data``.

    With a carved split the final model is refitted on all of ``data`` with the chosen settings; with
    explicit validation data the model never sees it during fitting.

    Raises:
        TrainingDataError: fewer than two intents.
        ModelLoadError: the configured sentence encoder cannot be loaded.
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
    encoder = get_encoder(config.sentence_encoder) if config.sentence_encoder else None
    embed = _embedder(encoder, [*data.texts, *(e.text for e in val_part)])
    val_texts = [e.text for e in val_part]
    val_labels = [e.intent for e in val_part]
    fit_labels = [e.intent for e in fit_part]
    chosen_c, temperature, policy = config.c_grid[len(config.c_grid) // 2], 1.0, FallbackPolicy()
    sparse_temperature, skip_confidence = 1.0, NEVER_SKIP
    dense_weight = config.default_dense_weight if encoder is not None else 0.0
    metrics: dict[str, float | int | None] = {"n_validation": len(val_part)}
    if val_part and len(set(fit_labels)) >= 2:
        featurizer = _featurizer(config).fit([e.text for e in fit_part])
        X_fit = featurizer.transform([e.text for e in fit_part])
        X_val = featurizer.transform(val_texts)
        E_val = embed(val_texts)
        candidates, head = _fit_parallel(
            config, config.c_grid, X_fit, fit_labels, embed([e.text for e in fit_part])
        )
        accuracy, classifier = _choose(config, candidates, head, X_val, E_val, val_labels)
        chosen_c, dense_weight = classifier.C, classifier.dense_weight
        index = {label: i for i, label in enumerate(classifier.classes_)}
        known = [i for i, label in enumerate(val_labels) if label in index]
        scores = classifier.decision_function(X_val, E_val)
        if known:
            targets = np.asarray([index[val_labels[i]] for i in known], dtype=np.intp)
            temperature = fit_temperature(scores[known], targets)
        classifier.temperature = temperature
        sparse_val = classifier.sparse_scores(X_val)
        if classifier.uses_embeddings and known:
            classifier.sparse_temperature = fit_temperature(sparse_val[known], targets)
            classifier.skip_confidence, skipped = _choose_skip_confidence(
                config, classifier, sparse_val, softmax(scores, temperature), val_labels
            )
            metrics["validation_share_without_embedding"] = skipped
        assert E_val is not None or not classifier.uses_embeddings
        tuning = tune_fallback(
            classifier.cascade_proba(sparse_val, lambda rows: None if E_val is None else E_val[rows]),
            val_labels,
            classifier.classes_,
            max_accuracy_drop=config.max_accuracy_drop,
            target_out_of_scope_recall=config.target_out_of_scope_recall,
        )
        policy = tuning.policy
        sparse_temperature, skip_confidence = classifier.sparse_temperature, classifier.skip_confidence
        metrics.update(
            validation_accuracy=accuracy,
            validation_in_scope_accuracy=tuning.in_scope_accuracy,
            validation_out_of_scope_recall=tuning.out_of_scope_recall,
        )
    else:
        logger.warning(
            "training data too small for a validation split: using C=%s, embedding weight %s and "
            "default thresholds",
            chosen_c,
            dense_weight,
        )
    featurizer = _featurizer(config).fit(data.texts)
    use_head = encoder is not None and dense_weight != 0.0
    [classifier], head = _fit_parallel(
        config, [chosen_c], featurizer.transform(data.texts), list(data.labels),
        embed(data.texts) if use_head else None,
    )  # fmt: skip
    classifier.temperature = temperature
    if head is not None:
        classifier.set_dense_head(*head)
        classifier.dense_weight = dense_weight
        classifier.sparse_temperature, classifier.skip_confidence = sparse_temperature, skip_confidence
    extractor = EntityExtractor().fit(data)
    seconds = time.perf_counter() - started
    metadata = {
        "data_hash": data.fingerprint(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_examples": len(data.examples),
        "has_out_of_scope_intent": OUT_OF_SCOPE_INTENT in intents,
        "tuning": {
            "c_grid": list(config.c_grid),
            "dense_weight_grid": list(config.dense_weight_grid) if encoder is not None else [],
            "validation": "explicit" if validation is not None else f"split {config.validation_fraction}",
            "max_accuracy_drop": config.max_accuracy_drop,
            "target_out_of_scope_recall": config.target_out_of_scope_recall,
        },
        "metrics": {**metrics, "training_seconds": round(seconds, 3)},
    }
    logger.info(
        "trained NLU model: %d examples, %d intents, C=%s, embedding weight %s, T=%.3f, threshold=%.3f"
        " in %.1fs",
        len(data.examples), len(intents), chosen_c, dense_weight, temperature, policy.threshold, seconds,
    )  # fmt: skip
    return NLUModel(
        featurizer, classifier, extractor, policy, metadata, encoder=encoder if use_head else None
    )
