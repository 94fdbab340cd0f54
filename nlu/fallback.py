"""Rasa-style fallback: ``nlu_fallback`` when the top intent is unsure, tuned on validation data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nlu.results import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT

DEFAULT_MAX_ACCURACY_DROP = 0.01
DEFAULT_TARGET_OUT_OF_SCOPE_RECALL = 0.55
DEFAULT_MIN_NONSENSE_RECALL = 0.9
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
    nonsense_recall: float | None = None


def _top_two(
    proba: npt.NDArray[np.float32], classes: Sequence[str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.str_]]:
    """Best and second-best confidence among the real intents, and the predicted class of each row.

    A column named ``nlu_fallback`` (the generated-nonsense class, see ``nlu.nonsense``) is left out
    of the two confidences, as the parser leaves it out of the ranking; predicting it is a fallback.
    """
    names = np.asarray(classes)
    real = proba[:, names != FALLBACK_INTENT]
    order = np.sort(real, axis=1)
    top1 = order[:, -1] if real.shape[1] else np.zeros(len(proba), dtype=np.float32)
    top2 = order[:, -2] if real.shape[1] > 1 else np.zeros_like(top1)
    return top1, top2, names[proba.argmax(axis=1)]


def tune_fallback(
    proba: npt.NDArray[np.float32],
    targets: Sequence[str],
    classes: Sequence[str],
    *,
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
    target_out_of_scope_recall: float | None = None,
    nonsense_proba: npt.NDArray[np.float32] | None = None,
    min_nonsense_recall: float = DEFAULT_MIN_NONSENSE_RECALL,
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

    ``nonsense_proba`` holds the confidences of generated nonsense (``nlu.nonsense``), kept apart
    from the out-of-scope examples so that its easy catches do not inflate their recall: a policy
    must fall back on at least ``min_nonsense_recall`` of it. Policies that do are preferred to any
    that do not; when none within the accuracy cap does, those that catch the most nonsense win.
    Predicting the ``nlu_fallback`` class (trained on other generated nonsense) counts as falling back.
    """
    labels = np.asarray(targets)
    top1, top2, predicted = _top_two(proba, classes)
    in_scope = labels != OUT_OF_SCOPE_INTENT
    correct = (predicted == labels) & in_scope
    caught_anyway = (~in_scope) & np.isin(predicted, [OUT_OF_SCOPE_INTENT, FALLBACK_INTENT])
    nonsense = _NonsenseCheck(nonsense_proba, classes, min_nonsense_recall)
    n_in = max(int(in_scope.sum()), 1)
    n_oos = int((~in_scope).sum())
    just_above_oos = np.nextafter(top1[~in_scope], np.float32(1.0))  # thresholds that catch one more
    candidates = np.unique(
        np.concatenate(
            [
                [0.0],
                np.quantile(top1[in_scope], np.linspace(0, 0.3, 61)),
                just_above_oos,
                nonsense.thresholds(),
            ]
        )
    )
    best_key: tuple[float, float, int, float] = (-1.0, -1.0, -1, 0.0)
    best = FallbackPolicy(0.0, 0.0)
    target_key: tuple[float, float, float, int] | None = None
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
            nonsense_score = nonsense.score(float(threshold), float(ambiguity))
            key = (nonsense_score, recall, wrong_caught, -cost)
            if key > best_key:
                best_key, best = key, FallbackPolicy(float(threshold), float(ambiguity))
            if wants_target and recall >= required - 1e-9:
                reached = (nonsense_score, -cost, recall, wrong_caught)
                if target_key is None or reached > target_key:
                    target_key, target_best = reached, FallbackPolicy(float(threshold), float(ambiguity))
    if target_key is not None and target_key[0] >= best_key[0]:  # never trade the nonsense check away
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
        nonsense_recall=nonsense.recall(best.threshold, best.ambiguity_threshold),
    )


class _NonsenseCheck:
    """How much of the generated nonsense a policy falls back on."""

    def __init__(
        self, proba: npt.NDArray[np.float32] | None, classes: Sequence[str], min_recall: float
    ) -> None:
        self._min_recall = min_recall
        self._rows = 0 if proba is None else len(proba)
        if proba is None or not len(proba):
            return
        self._top1, self._top2, predicted = _top_two(proba, classes)
        self._as_fallback = predicted == FALLBACK_INTENT

    def thresholds(self) -> npt.NDArray[np.float32]:
        """Thresholds that each catch one more nonsense string."""
        if not self._rows:
            return np.empty(0, dtype=np.float32)
        return np.nextafter(self._top1, np.float32(1.0))

    def recall(self, threshold: float, ambiguity: float) -> float | None:
        """The share of the nonsense that falls back under this policy (None: no nonsense given)."""
        if not self._rows:
            return None
        rejected = self._as_fallback | (self._top1 < threshold) | ((self._top1 - self._top2) < ambiguity)
        return float(rejected.mean())

    def score(self, threshold: float, ambiguity: float) -> float:
        """1 when the policy meets the minimum (or there is no nonsense), else its nonsense recall."""
        recall = self.recall(threshold, ambiguity)
        return 1.0 if recall is None or recall >= self._min_recall - 1e-9 else recall
