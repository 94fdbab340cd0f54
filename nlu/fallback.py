"""Rasa-style fallback: ``nlu_fallback`` when the top intent is unsure, tuned on validation data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nlu.results import OUT_OF_SCOPE_INTENT

DEFAULT_MAX_ACCURACY_DROP = 0.01
DEFAULT_TARGET_OUT_OF_SCOPE_RECALL = 0.55
_AMBIGUITY_GRID = (0.0, 0.02, 0.05, 0.08, 0.12, 0.16, 0.2, 0.25, 0.3)


@dataclass(frozen=True)
class FallbackPolicy:
    """Predict the fallback when confidence < ``threshold`` or top1 - top2 < ``ambiguity_threshold``."""

    threshold: float = 0.3
    ambiguity_threshold: float = 0.0

    def is_fallback(self, top1: float, top2: float) -> bool:
        """Whether a message with these two best confidences should fall back."""
        return top1 < self.threshold or (top1 - top2) < self.ambiguity_threshold


@dataclass(frozen=True)
class FallbackTuning:
    """The tuned policy and what it did on the validation data it was tuned on."""

    policy: FallbackPolicy
    in_scope_accuracy: float
    in_scope_accuracy_without_fallback: float
    out_of_scope_recall: float | None
    n_validation: int


def tune_fallback(
    proba: npt.NDArray[np.float32],
    targets: Sequence[str],
    classes: Sequence[str],
    *,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    target_out_of_scope_recall: float | None = None,
) -> FallbackTuning:
    """Choose the thresholds on held-out confidences; the target is stated by ``max_accuracy_drop``.

    Target: lose at most ``max_accuracy_drop`` (absolute) of in-scope accuracy to the fallback. Among
    the pairs (threshold, ambiguity) that meet it, take the one that catches the most out-of-scope
    validation messages, then the most wrong in-scope predictions. Without out-of-scope examples this
    is simply the strictest policy that keeps the stated accuracy.

    With ``target_out_of_scope_recall`` and out-of-scope validation examples, the aim changes: among
    the pairs within ``max_accuracy_drop``, take the one that reaches the recall target plus one
    standard error of its estimate (``sqrt(t(1-t)/n_oos)``) at the least in-scope cost (then the most
    recall); when none reaches it, fall back to the most recall as above.
    Catching more out-of-scope messages than needed costs in-scope accuracy on unseen data too.
    """
    labels = np.asarray(targets)
    order = np.sort(proba, axis=1)
    top1 = order[:, -1]
    top2 = order[:, -2] if proba.shape[1] > 1 else np.zeros_like(top1)
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    in_scope = labels != OUT_OF_SCOPE_INTENT
    correct = (predicted == labels) & in_scope
    caught_anyway = (~in_scope) & (predicted == OUT_OF_SCOPE_INTENT)
    n_in = max(int(in_scope.sum()), 1)
    n_oos = int((~in_scope).sum())
    just_above_oos = np.nextafter(top1[~in_scope], np.float32(1.0))  # thresholds that catch one more
    candidates = np.unique(
        np.concatenate([[0.0], np.quantile(top1[in_scope], np.linspace(0, 0.3, 61)), just_above_oos])
    )
    best_key: tuple[float, int, float] = (-1.0, -1, 0.0)
    best = FallbackPolicy(0.0, 0.0)
    target_key: tuple[float, float, int] | None = None
    target_best = best
    wants_target = target_out_of_scope_recall is not None and n_oos > 0
    required = 0.0
    if target_out_of_scope_recall is not None and n_oos:
        # Aim one standard error above the target: with few out-of-scope examples the recall measured
        # here is noisy, and a threshold that only just reaches it misses the target on unseen data.
        margin = float(np.sqrt(target_out_of_scope_recall * (1 - target_out_of_scope_recall) / n_oos))
        required = min(1.0, target_out_of_scope_recall + margin)
    for threshold in candidates:
        low = top1 < threshold
        for ambiguity in _AMBIGUITY_GRID:
            rejected = low | ((top1 - top2) < ambiguity)
            cost = float((correct & rejected).sum()) / n_in
            if cost > max_accuracy_drop:
                continue
            recall = float((caught_anyway | (rejected & ~in_scope)).sum()) / n_oos if n_oos else 0.0
            wrong_caught = int((rejected & in_scope & ~correct).sum())
            key = (recall, wrong_caught, -cost)
            if key > best_key:
                best_key, best = key, FallbackPolicy(float(threshold), float(ambiguity))
            if wants_target and recall >= required - 1e-9:
                reached = (-cost, recall, wrong_caught)
                if target_key is None or reached > target_key:
                    target_key, target_best = reached, FallbackPolicy(float(threshold), float(ambiguity))
    if target_key is not None:
        best = target_best
    rejected = (top1 < best.threshold) | ((top1 - top2) < best.ambiguity_threshold)
    return FallbackTuning(
        policy=best,
        in_scope_accuracy=float((correct & ~rejected).sum()) / n_in,
        in_scope_accuracy_without_fallback=float(correct.sum()) / n_in,
        out_of_scope_recall=(
            float((caught_anyway | (rejected & ~in_scope)).sum()) / n_oos if n_oos else None
        ),
        n_validation=len(labels),
    )
