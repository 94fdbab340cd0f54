"""The intent classifier: a linear SVM on TF-IDF features plus a logistic-regression head on sentence
embeddings, their scores added with a weight chosen on validation data, then a temperature-calibrated
softmax.

The two heads are fitted separately because each has the solver that suits it: liblinear's dual
coordinate descent for ~100k sparse n-gram features, L-BFGS for 512 dense embedding dimensions (one
joint liblinear fit over both takes four times longer for the same accuracy).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from nlu.errors import NotFittedError

logger = logging.getLogger(__name__)

NEVER_SKIP = 1.01  # above any softmax confidence: the embedding head is always consulted

FloatArray = npt.NDArray[np.float32]
_PARAMS = (
    "C", "temperature", "class_weight", "max_iter", "random_state", "dense_C", "dense_weight",
    "sparse_temperature", "skip_confidence",
)  # fmt: skip


def softmax(scores: npt.NDArray[np.floating[Any]], temperature: float) -> FloatArray:
    """Row-wise softmax of ``scores * temperature`` (temperature here multiplies: larger is sharper)."""
    scaled = np.asarray(scores, dtype=np.float64) * temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled.astype(np.float32)


def fit_temperature(scores: npt.NDArray[np.floating[Any]], targets: npt.NDArray[np.intp]) -> float:
    """The softmax sharpness that minimises the log-loss of held-out ``scores`` (temperature scaling).

    SVM margins are not probabilities; one scalar fitted on data the SVM did not see turns them into
    confidences whose values mean what they say, without changing the ranking.
    """
    scores64 = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(targets))

    def loss(log_t: float) -> float:
        scaled = scores64 * np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(log_norm - scaled[rows, targets]))

    result = optimize.minimize_scalar(loss, bounds=(-3.0, 5.0), method="bounded")
    return float(np.exp(result.x))


def fit_dense_head(
    embeddings: FloatArray, y: Sequence[str], *, C: float, max_iter: int = 300
) -> tuple[FloatArray, FloatArray]:
    """Multinomial logistic regression on sentence embeddings: ``(coef (dim x classes), intercept)``.

    Classes come out in sorted order, the same as the SVM's. Two classes give one logit in sklearn;
    it is split evenly into two columns so that the softmax of the pair is the fitted sigmoid.
    """
    head = LogisticRegression(C=C, max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        head.fit(embeddings, np.asarray(y))
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.info("the embedding head stopped at %d L-BFGS iterations before converging", max_iter)
    coef = np.asarray(head.coef_, dtype=np.float32)
    intercept = np.asarray(head.intercept_, dtype=np.float32)
    if len(head.classes_) == 2:
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    return np.ascontiguousarray(coef.T), intercept


def fit_svm(
    X: sparse.csr_matrix,
    labels: npt.NDArray[np.str_],
    *,
    C: float,
    class_weight: str | None,
    max_iter: int,
    random_state: int,
) -> tuple[list[str], FloatArray, FloatArray]:
    """One-vs-rest LinearSVC: ``(classes, coef (features x classes), intercept)``.

    liblinear returns one row for two classes (score(c1) = -score(c0)); it is expanded to two
    columns so that every caller sees one column per class.
    """
    svm = LinearSVC(C=C, class_weight=class_weight, max_iter=max_iter, random_state=random_state)
    svm.fit(X, labels)
    coef = np.asarray(svm.coef_, dtype=np.float32)
    intercept = np.asarray(svm.intercept_, dtype=np.float32)
    if len(svm.classes_) == 2:
        coef = np.vstack([-coef, coef])
        intercept = np.concatenate([-intercept, intercept])
    return [str(c) for c in svm.classes_], np.ascontiguousarray(coef.T), intercept


def dense_logits(embeddings: FloatArray, coef: FloatArray, intercept: FloatArray) -> FloatArray:
    """The embedding head's logits: ``embeddings @ coef + intercept``."""
    return np.asarray(embeddings @ coef, dtype=np.float32) + intercept


class IntentClassifier:
    """One-vs-rest linear SVM (liblinear) plus an optional embedding head, through a calibrated softmax.

    ``score = svm(X) + dense_weight * head(embedding)``; with ``dense_weight == 0`` (or no head) the
    embedding is not needed at all. Encoding a message costs ~10 times more than the SVM, so
    :meth:`cascade_proba` lets the SVM answer alone when its own calibrated confidence (softmax at
    ``sparse_temperature``) reaches ``skip_confidence``; both are chosen on validation data so that
    the shortcut costs next to no accuracy (``nlu.training``). ``skip_confidence > 1`` never skips.

    An estimator in scikit-learn's sense: the constructor only stores parameters, :meth:`fit` sets
    the learned attributes (ending in ``_``) and returns ``self``, and nothing changes a parameter
    afterwards. ``nlu.training`` chooses the parameters on validation data and then builds the final
    classifier with them; :meth:`from_fitted` rebuilds one from saved arrays.

    Args:
        C: inverse regularisation strength of the SVM, chosen on validation data by ``nlu.training``.
        temperature: softmax sharpness applied to the scores, fitted on validation data.
        class_weight: passed to LinearSVC (``"balanced"`` helps when intents are very uneven).
        max_iter: liblinear iteration cap.
        random_state: seed for liblinear's coordinate order.
        dense_C: inverse regularisation strength of the embedding head.
        dense_weight: weight of the embedding head's logits, chosen on validation data.
        sparse_temperature: softmax sharpness of the SVM's scores alone, for the cascade.
        skip_confidence: SVM-alone confidence from which the embedding is not computed.

    Attributes:
        classes_: the intents, sorted; one score column each.
        coef_: SVM weights, features x classes.
        intercept_: SVM intercepts, one per class.
        dense_coef_: embedding-head weights, embedding dimensions x classes (None without a head).
        dense_intercept_: embedding-head intercepts (None without a head).
    """

    classes_: list[str]
    coef_: FloatArray
    intercept_: FloatArray
    dense_coef_: FloatArray | None
    dense_intercept_: FloatArray | None

    def __init__(
        self,
        *,
        C: float = 1.0,
        temperature: float = 1.0,
        class_weight: str | None = None,
        max_iter: int = 2000,
        random_state: int = 0,
        dense_C: float = 10.0,
        dense_weight: float = 0.0,
        sparse_temperature: float = 1.0,
        skip_confidence: float = NEVER_SKIP,
    ) -> None:
        self.C = C
        self.temperature = temperature
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.dense_C = dense_C
        self.dense_weight = dense_weight
        self.sparse_temperature = sparse_temperature
        self.skip_confidence = skip_confidence

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (``IntentClassifier(**clf.get_params())`` is an unfitted copy)."""
        return {name: getattr(self, name) for name in _PARAMS}

    @classmethod
    def from_fitted(
        cls,
        *,
        classes: Sequence[str],
        coef: npt.ArrayLike,
        intercept: npt.ArrayLike,
        dense_coef: npt.ArrayLike | None = None,
        dense_intercept: npt.ArrayLike | None = None,
        **params: Any,
    ) -> IntentClassifier:
        """A fitted classifier from its learned arrays and parameters (loading a saved model).

        Raises:
            ValueError: the arrays' shapes do not agree with each other or with ``classes``.
        """
        unknown = set(params) - set(_PARAMS)
        if unknown:
            raise ValueError(f"unknown IntentClassifier parameters {sorted(unknown)!r}")
        classifier = cls(**params)
        classifier.classes_ = [str(label) for label in classes]
        classifier.coef_ = np.ascontiguousarray(coef, dtype=np.float32)
        classifier.intercept_ = np.asarray(intercept, dtype=np.float32)
        n_classes = len(classifier.classes_)
        if classifier.coef_.ndim != 2 or classifier.coef_.shape[1] != n_classes:
            raise ValueError(f"coef has shape {classifier.coef_.shape}, expected (n_features, {n_classes})")
        if classifier.intercept_.shape != (n_classes,):
            raise ValueError(f"intercept has shape {classifier.intercept_.shape}, expected ({n_classes},)")
        if (dense_coef is None) != (dense_intercept is None):
            raise ValueError("dense_coef and dense_intercept come together")
        classifier.dense_coef_ = classifier.dense_intercept_ = None
        if dense_coef is not None and dense_intercept is not None:
            classifier.dense_coef_ = np.ascontiguousarray(dense_coef, dtype=np.float32)
            classifier.dense_intercept_ = np.asarray(dense_intercept, dtype=np.float32)
            if classifier.dense_coef_.ndim != 2 or classifier.dense_coef_.shape[1] != n_classes:
                raise ValueError(
                    f"dense_coef has shape {classifier.dense_coef_.shape}, expected (dimension, {n_classes})"
                )
            if classifier.dense_intercept_.shape != (n_classes,):
                raise ValueError(
                    f"dense_intercept has shape {classifier.dense_intercept_.shape}, expected ({n_classes},)"
                )
        return classifier

    @property
    def uses_embeddings(self) -> bool:
        """Whether scoring needs a sentence embedding (a fitted head with a non-zero weight)."""
        return getattr(self, "dense_coef_", None) is not None and self.dense_weight != 0.0

    def fit(
        self, X: sparse.csr_matrix, y: Sequence[str], embeddings: FloatArray | None = None
    ) -> IntentClassifier:
        """Fit the SVM and, given ``embeddings``, the head beside it in a second thread.

        liblinear and BLAS release the GIL, so the two fits overlap on a multi-core machine.
        """
        labels = np.asarray(y)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise ValueError(f"need at least 2 intents to train a classifier, got {classes.tolist()!r}")
        with ThreadPoolExecutor(max_workers=2 if embeddings is not None else 1) as pool:
            head = None
            if embeddings is not None:
                head = pool.submit(fit_dense_head, embeddings, y, C=self.dense_C)
            classes_, coef, intercept = fit_svm(
                X, labels, C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                random_state=self.random_state,
            )  # fmt: skip
            dense = head.result() if head is not None else None
        self.classes_ = classes_
        self.coef_ = coef
        self.intercept_ = intercept
        self.dense_coef_, self.dense_intercept_ = dense if dense is not None else (None, None)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("IntentClassifier is not fitted; call fit() first")

    def sparse_scores(self, X: sparse.csr_matrix) -> FloatArray:
        """The SVM's scores alone, one column per class in ``classes_`` order."""
        self._check_fitted()
        return np.asarray(X @ self.coef_, dtype=np.float32) + self.intercept_

    def dense_scores(self, embeddings: FloatArray) -> FloatArray:
        """The embedding head's logits alone (unweighted)."""
        self._check_fitted()
        if self.dense_coef_ is None or self.dense_intercept_ is None:
            raise NotFittedError("this classifier has no embedding head")
        return dense_logits(embeddings, self.dense_coef_, self.dense_intercept_)

    def _with_head(self, scores: FloatArray, embeddings: FloatArray | None) -> FloatArray:
        if not self.uses_embeddings:
            return scores
        if embeddings is None:
            raise ValueError("this classifier scores with sentence embeddings: pass them")
        return scores + self.dense_weight * self.dense_scores(embeddings)

    def decision_function(self, X: sparse.csr_matrix, embeddings: FloatArray | None = None) -> FloatArray:
        """Combined scores, one column per class in ``classes_`` order."""
        return self._with_head(self.sparse_scores(X), embeddings)

    def sparse_one(self, indices: npt.NDArray[np.int32], values: FloatArray) -> FloatArray:
        """SVM scores of one sparse row given as indices and values: a gather and a dot, no validation."""
        self._check_fitted()
        if len(indices) == 0:
            return self.intercept_.copy()
        return np.asarray(values @ self.coef_[indices], dtype=np.float32) + self.intercept_

    def decision_one(
        self, indices: npt.NDArray[np.int32], values: FloatArray, embedding: FloatArray | None = None
    ) -> FloatArray:
        """Combined scores of one sparse row (and its embedding, when the head is in use)."""
        return self._with_head(self.sparse_one(indices, values), embedding)

    def predict_proba(self, X: sparse.csr_matrix, embeddings: FloatArray | None = None) -> FloatArray:
        """Calibrated confidences from both heads, one column per class."""
        return self.combined_proba(self.sparse_scores(X), embeddings)

    def combined_proba(self, sparse_scores: FloatArray, embeddings: FloatArray | None) -> FloatArray:
        """Calibrated confidences of rows whose SVM scores are known, adding the head where in use."""
        return softmax(self._with_head(sparse_scores, embeddings), self.temperature)

    def sparse_pass(self, sparse_scores: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
        """The cascade's first step: confidences where the SVM alone answers, and the unsure rows.

        The unsure rows need both heads (:meth:`combined_proba`); a classifier without a head in use
        has none.
        """
        if not self.uses_embeddings:
            return softmax(sparse_scores, self.temperature), np.empty(0, dtype=np.intp)
        proba = softmax(sparse_scores, self.sparse_temperature)
        return proba, np.flatnonzero(proba.max(axis=1) < self.skip_confidence)

    def cascade_proba(
        self, sparse_scores: FloatArray, embed: Callable[[npt.NDArray[np.intp]], FloatArray | None]
    ) -> FloatArray:
        """Confidences from the SVM alone where it is sure enough, from both heads elsewhere.

        ``embed(rows)`` returns the embeddings of those rows only; it is not called when every row
        is sure (or the classifier has no head in use).
        """
        proba, unsure = self.sparse_pass(sparse_scores)
        if len(unsure):
            proba[unsure] = self.combined_proba(sparse_scores[unsure], embed(unsure))
        return proba

    def predict(self, X: sparse.csr_matrix, embeddings: FloatArray | None = None) -> list[str]:
        """The top intent of each row."""
        scores = self.decision_function(X, embeddings)
        return [self.classes_[i] for i in scores.argmax(axis=1)]
