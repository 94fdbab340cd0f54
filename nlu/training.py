"""Training: carve a validation split, choose C and the embedding weight, calibrate, tune the fallback,
then refit on everything."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy import sparse

from nlu.classifier import (
    NEVER_SKIP,
    FloatArray,
    IntentClassifier,
    dense_logits,
    fit_dense_head,
    fit_temperature,
    softmax,
)
from nlu.encoder import USE_MULTILINGUAL_V3, SentenceEncoder, get_encoder
from nlu.entities import EntityExtractor
from nlu.errors import TrainingDataError
from nlu.fallback import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_MIN_NONSENSE_RECALL,
    DEFAULT_TARGET_OUT_OF_SCOPE_RECALL,
    FallbackPolicy,
    tune_fallback,
)
from nlu.featurizer import TextFeaturizer, normalize
from nlu.model import NLUModel
from nlu.nonsense import generate_nonsense
from nlu.results import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT
from nlu.training_data import Example, TrainingData

logger = logging.getLogger(__name__)

MIN_EXAMPLES_FOR_NONSENSE = 10  # median examples per intent below which no nonsense class is trained
_Embed = Callable[[Sequence[str]], "FloatArray | None"]


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

    Generated nonsense (``nlu.nonsense``), ``nonsense_per_intent`` times the median intent's size and
    at most ``max_nonsense_examples``, is trained on as the ``nlu_fallback`` class; as much again,
    from another part of the same stream, must fall back at least ``min_nonsense_recall`` of the
    time under the tuned policy (``0`` examples: no nonsense class).
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
    max_nonsense_examples: int = 300
    nonsense_per_intent: float = 3.0
    min_nonsense_recall: float = DEFAULT_MIN_NONSENSE_RECALL
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


def _embedder(encoder: SentenceEncoder | None, texts: Sequence[str]) -> _Embed:
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
    dense: FloatArray | None,
    X_val: sparse.csr_matrix,
    val_labels: list[str],
) -> tuple[float, IntentClassifier, float]:
    """The (C, embedding weight) pair with the best validation accuracy; ties go to the earlier pair.

    ``dense`` holds the embedding head's validation logits (None: no head). Returns the accuracy,
    the SVM fitted with the chosen C, and the chosen weight.
    """
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
    return best


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


@dataclass(frozen=True)
class _Parts:
    """The texts and labels of one training run: fit and validation parts, and generated nonsense.

    ``nonsense_fit`` is trained on as the ``nlu_fallback`` class; ``nonsense_check`` (another seed)
    only checks that the tuned fallback policy falls back on nonsense.
    """

    fit_texts: list[str]
    fit_labels: list[str]
    val_texts: list[str]
    val_labels: list[str]
    nonsense_fit: list[str]
    nonsense_check: list[str]


@dataclass(frozen=True)
class _Choice:
    """What the validation data decided: the classifier's parameters, the policy, and the metrics."""

    params: dict[str, Any]
    policy: FallbackPolicy
    metrics: dict[str, float | int | None]


def _nonsense_count(config: TrainingConfig, data: TrainingData) -> int:
    """How much nonsense to generate: ``nonsense_per_intent`` times the median intent, capped.

    None for data whose intents are too small (under ``MIN_EXAMPLES_FOR_NONSENSE`` examples in the
    median intent): there the nonsense class would outweigh every real intent.
    """
    sizes = list(Counter(data.labels).values())
    median = float(np.median(sizes)) if sizes else 0.0
    if median < MIN_EXAMPLES_FOR_NONSENSE:
        return 0
    return min(config.max_nonsense_examples, round(config.nonsense_per_intent * median))


def _parts(config: TrainingConfig, data: TrainingData, validation: TrainingData | None) -> _Parts:
    """Carve (or take) the validation part and generate the nonsense, disjoint from every real text."""
    if validation is None:
        fit_part, val_part = split_validation(
            data.examples, fraction=config.validation_fraction, random_state=config.random_state
        )
    else:
        fit_part, val_part = list(data.examples), list(validation.examples)
    count = _nonsense_count(config, data)
    known = [*data.texts, *(e.text for e in val_part)]
    nonsense = generate_nonsense(2 * count, random_state=config.random_state, known_texts=known)
    return _Parts(
        fit_texts=[e.text for e in fit_part],
        fit_labels=[e.intent for e in fit_part],
        val_texts=[e.text for e in val_part],
        val_labels=[e.intent for e in val_part],
        nonsense_fit=nonsense[:count],
        nonsense_check=nonsense[count:],
    )


def _with_nonsense(
    texts: Sequence[str], labels: Sequence[str], nonsense: list[str]
) -> tuple[list[str], list[str]]:
    return [*texts, *nonsense], [*labels, *([FALLBACK_INTENT] * len(nonsense))]


def _untuned(config: TrainingConfig, encoder: SentenceEncoder | None) -> _Choice:
    """The defaults for data too small to split, with the reason logged."""
    c_value = config.c_grid[len(config.c_grid) // 2]
    dense_weight = config.default_dense_weight if encoder is not None else 0.0
    logger.warning(
        "training data too small for a validation split: using C=%s, embedding weight %s and "
        "default thresholds",
        c_value,
        dense_weight,
    )
    return _Choice({"C": c_value, "dense_weight": dense_weight}, FallbackPolicy(), {})


def _tune(config: TrainingConfig, parts: _Parts, embed: _Embed) -> _Choice:
    """Choose C and the embedding weight, calibrate both softmaxes, pick the cascade's confidence
    and tune the fallback policy, all on the validation part."""
    fit_texts, fit_labels = _with_nonsense(parts.fit_texts, parts.fit_labels, parts.nonsense_fit)
    featurizer = _featurizer(config).fit(fit_texts)
    X_val = featurizer.transform(parts.val_texts)
    E_val = embed(parts.val_texts)
    candidates, head = _fit_parallel(
        config, config.c_grid, featurizer.transform(fit_texts), fit_labels, embed(fit_texts)
    )
    dense = dense_logits(E_val, *head) if head is not None and E_val is not None else None
    accuracy, svm, dense_weight = _choose(config, candidates, dense, X_val, parts.val_labels)
    params: dict[str, Any] = {"C": svm.C, "dense_weight": dense_weight}
    metrics: dict[str, float | int | None] = {"validation_accuracy": accuracy}
    index = {label: i for i, label in enumerate(svm.classes_)}
    known = [i for i, label in enumerate(parts.val_labels) if label in index]
    targets = np.asarray([index[parts.val_labels[i]] for i in known], dtype=np.intp)
    sparse_val = svm.sparse_scores(X_val)
    scores = sparse_val if dense is None or dense_weight == 0.0 else sparse_val + dense_weight * dense
    if known:
        params["temperature"] = fit_temperature(scores[known], targets)
        if dense is not None and dense_weight != 0.0:
            params["sparse_temperature"] = fit_temperature(sparse_val[known], targets)
    classifier = IntentClassifier.from_fitted(
        classes=svm.classes_, coef=svm.coef_, intercept=svm.intercept_,
        dense_coef=head[0] if head is not None else None,
        dense_intercept=head[1] if head is not None else None,
        **_final_params(config, params),
    )  # fmt: skip
    if classifier.uses_embeddings and known:
        params["skip_confidence"], metrics["validation_share_without_embedding"] = _choose_skip_confidence(
            config, classifier, sparse_val, softmax(scores, classifier.temperature), parts.val_labels
        )
        classifier = IntentClassifier.from_fitted(
            classes=classifier.classes_, coef=classifier.coef_, intercept=classifier.intercept_,
            dense_coef=classifier.dense_coef_, dense_intercept=classifier.dense_intercept_,
            **_final_params(config, params),
        )  # fmt: skip
    tuning = tune_fallback(
        _cascade(classifier, featurizer, parts.val_texts, embed),
        parts.val_labels,
        classifier.classes_,
        max_accuracy_drop=config.max_accuracy_drop,
        target_out_of_scope_recall=config.target_out_of_scope_recall,
        nonsense_proba=_cascade(classifier, featurizer, parts.nonsense_check, embed),
        min_nonsense_recall=config.min_nonsense_recall,
    )
    metrics.update(
        validation_in_scope_accuracy=tuning.in_scope_accuracy,
        validation_out_of_scope_recall=tuning.out_of_scope_recall,
        validation_nonsense_recall=tuning.nonsense_recall,
    )
    return _Choice(params, tuning.policy, metrics)


def _cascade(
    classifier: IntentClassifier, featurizer: TextFeaturizer, texts: list[str], embed: _Embed
) -> FloatArray:
    """Confidences of ``texts`` as the parser computes them (the cascade), from cached embeddings."""
    if not texts:
        return np.zeros((0, len(classifier.classes_)), dtype=np.float32)
    embeddings = embed(texts)
    return classifier.cascade_proba(
        classifier.sparse_scores(featurizer.transform(texts)),
        lambda rows: None if embeddings is None else embeddings[rows],
    )


def _final_params(config: TrainingConfig, chosen: dict[str, Any]) -> dict[str, Any]:
    """The classifier's constructor arguments: the chosen values over the defaults.

    Without an embedding head in use, the cascade settings keep their defaults (never skip).
    """
    params: dict[str, Any] = {"random_state": config.random_state, "dense_C": config.dense_c, **chosen}
    if params.get("dense_weight", 0.0) == 0.0:
        params.pop("sparse_temperature", None)
        params.pop("skip_confidence", None)
    return params


def _fit_final(
    config: TrainingConfig,
    data: TrainingData,
    parts: _Parts,
    choice: _Choice,
    embed: _Embed,
    *,
    use_head: bool,
) -> tuple[TextFeaturizer, IntentClassifier]:
    """Refit the featurizer and the classifier on all the data (and the nonsense) with the choice."""
    texts, labels = _with_nonsense(data.texts, data.labels, parts.nonsense_fit)
    featurizer = _featurizer(config).fit(texts)
    params = _final_params(
        config, {**choice.params, "dense_weight": choice.params["dense_weight"] if use_head else 0.0}
    )
    classifier = IntentClassifier(**params).fit(
        featurizer.transform(texts), labels, embed(texts) if use_head else None
    )
    return featurizer, classifier


def _metadata(
    config: TrainingConfig,
    data: TrainingData,
    parts: _Parts,
    choice: _Choice,
    *,
    explicit_validation: bool,
    with_encoder: bool,
    seconds: float,
) -> dict[str, Any]:
    return {
        "data_hash": data.fingerprint(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_examples": len(data.examples),
        "has_out_of_scope_intent": OUT_OF_SCOPE_INTENT in data.intents,
        "tuning": {
            "c_grid": list(config.c_grid),
            "dense_weight_grid": list(config.dense_weight_grid) if with_encoder else [],
            "validation": "explicit" if explicit_validation else f"split {config.validation_fraction}",
            "max_accuracy_drop": config.max_accuracy_drop,
            "target_out_of_scope_recall": config.target_out_of_scope_recall,
            "n_nonsense": len(parts.nonsense_fit),
            "n_nonsense_check": len(parts.nonsense_check),
            "min_nonsense_recall": config.min_nonsense_recall,
        },
        "metrics": {
            "n_validation": len(parts.val_texts),
            **choice.metrics,
            "training_seconds": round(seconds, 3),
        },
    }


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
    if len(data.intents) < 2:
        raise TrainingDataError(f"training needs at least 2 intents, got {data.intents!r}")
    parts = _parts(config, data, validation)
    encoder = get_encoder(config.sentence_encoder) if config.sentence_encoder else None
    embed = _embedder(encoder, [*data.texts, *parts.val_texts, *parts.nonsense_fit, *parts.nonsense_check])
    if parts.val_texts and len(set(parts.fit_labels)) >= 2:
        choice = _tune(config, parts, embed)
    else:
        choice = _untuned(config, encoder)
    use_head = encoder is not None and choice.params["dense_weight"] != 0.0
    featurizer, classifier = _fit_final(config, data, parts, choice, embed, use_head=use_head)
    extractor = EntityExtractor().fit(data)
    seconds = time.perf_counter() - started
    metadata = _metadata(
        config, data, parts, choice, explicit_validation=validation is not None,
        with_encoder=encoder is not None, seconds=seconds,
    )  # fmt: skip
    logger.info(
        "trained NLU model: %d examples, %d intents, C=%s, embedding weight %s, T=%.3f, threshold=%.3f"
        " in %.1fs",
        len(data.examples), len(data.intents), classifier.C, classifier.dense_weight, classifier.temperature,
        choice.policy.threshold, seconds,
    )  # fmt: skip
    return NLUModel(
        featurizer, classifier, extractor, choice.policy, metadata, encoder=encoder if use_head else None
    )
