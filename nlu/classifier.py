"""The intent classifier: a linear SVM on TF-IDF features with temperature-calibrated softmax confidences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse
from sklearn.svm import LinearSVC

from nlu.errors import NotFittedError

FloatArray = npt.NDArray[np.float32]


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


class IntentClassifier:
    """One-vs-rest linear SVM (liblinear) whose scores go through a calibrated softmax.

    Args:
        C: inverse regularisation strength of the SVM, chosen on validation data by ``nlu.training``.
        temperature: softmax sharpness applied to the SVM scores, fitted on validation data.
        class_weight: passed to LinearSVC (``"balanced"`` helps when intents are very uneven).
        max_iter: liblinear iteration cap.
        random_state: seed for liblinear's coordinate order.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        temperature: float = 1.0,
        class_weight: str | None = None,
        max_iter: int = 2000,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.temperature = temperature
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: sparse.csr_matrix, y: Sequence[str]) -> IntentClassifier:
        """Fit the SVM; stores ``classes_``, ``coef_`` (features x classes) and ``intercept_``."""
        labels = np.asarray(y)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise ValueError(f"need at least 2 intents to train a classifier, got {classes.tolist()!r}")
        svm = LinearSVC(
            C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, random_state=self.random_state
        )
        svm.fit(X, labels)
        coef = np.asarray(svm.coef_, dtype=np.float32)
        intercept = np.asarray(svm.intercept_, dtype=np.float32)
        if len(classes) == 2:  # liblinear returns one row for two classes: score(c1) = -score(c0)
            coef = np.vstack([-coef, coef])
            intercept = np.concatenate([-intercept, intercept])
        self.classes_: list[str] = [str(c) for c in svm.classes_]
        self.coef_: FloatArray = np.ascontiguousarray(coef.T)
        self.intercept_: FloatArray = intercept
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("IntentClassifier is not fitted; call fit() first")

    def decision_function(self, X: sparse.csr_matrix) -> FloatArray:
        """Raw SVM scores, one column per class in ``classes_`` order."""
        self._check_fitted()
        return np.asarray(X @ self.coef_, dtype=np.float32) + self.intercept_

    def decision_one(self, indices: npt.NDArray[np.int32], values: FloatArray) -> FloatArray:
        """Scores of one sparse row given as indices and values: a gather and a dot, no validation."""
        self._check_fitted()
        if len(indices) == 0:
            return self.intercept_.copy()
        return np.asarray(values @ self.coef_[indices], dtype=np.float32) + self.intercept_

    def predict_proba(self, X: sparse.csr_matrix) -> FloatArray:
        """Calibrated confidences, one column per class."""
        return softmax(self.decision_function(X), self.temperature)

    def predict(self, X: sparse.csr_matrix) -> list[str]:
        """The top intent of each row."""
        scores = self.decision_function(X)
        return [self.classes_[i] for i in scores.argmax(axis=1)]
