"""Evaluation: accuracy, macro F1, per-intent scores, out-of-scope recall and the most confused pairs."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from nlu.results import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, IntentParser
from nlu.training_data import TrainingData

_REJECTED = {FALLBACK_INTENT, OUT_OF_SCOPE_INTENT}


@dataclass(frozen=True)
class IntentScores:
    """Precision, recall and F1 of one intent, and how many test examples it had."""

    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    """How a parser did on labelled data.

    ``accuracy`` counts every example (``nlu_fallback`` is right for an ``out_of_scope`` example);
    ``in_scope_accuracy`` counts only in-scope examples (the paper's figure); ``out_of_scope_recall``
    is the share of ``out_of_scope`` examples answered with ``out_of_scope`` or ``nlu_fallback``.
    """

    n_examples: int
    accuracy: float
    in_scope_accuracy: float | None
    out_of_scope_recall: float | None
    fallback_rate: float
    macro_f1: float
    per_intent: tuple[IntentScores, ...]
    confused_pairs: tuple[tuple[str, str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``rapport nlu evaluate --json``)."""
        payload = asdict(self)
        payload["confused_pairs"] = [
            {"true": true, "predicted": predicted, "count": count}
            for true, predicted, count in self.confused_pairs
        ]
        return payload


def _normalise(true: str, predicted: str) -> str:
    """Fallback on an out-of-scope example is the right answer: count it as ``out_of_scope``."""
    if true == OUT_OF_SCOPE_INTENT and predicted in _REJECTED:
        return OUT_OF_SCOPE_INTENT
    return predicted


def score(true: list[str], predicted: list[str], *, top_confusions: int = 10) -> EvaluationReport:
    """Compute the report from parallel lists of true and predicted intents."""
    if len(true) != len(predicted):
        raise ValueError(f"got {len(true)} true labels and {len(predicted)} predictions")
    normalised = [_normalise(t, p) for t, p in zip(true, predicted, strict=True)]
    pairs = list(zip(true, normalised, strict=True))
    n = len(pairs)
    in_scope = [(t, p) for t, p in pairs if t != OUT_OF_SCOPE_INTENT]
    oos = [(t, p) for t, p in pairs if t == OUT_OF_SCOPE_INTENT]
    true_counts = Counter(true)
    predicted_counts = Counter(normalised)
    hits = Counter(t for t, p in pairs if t == p)
    per_intent = []
    for intent in sorted(true_counts):
        precision = hits[intent] / predicted_counts[intent] if predicted_counts[intent] else 0.0
        recall = hits[intent] / true_counts[intent]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent.append(IntentScores(intent, precision, recall, f1, true_counts[intent]))
    confusions = Counter((t, p) for t, p in pairs if t != p)
    return EvaluationReport(
        n_examples=n,
        accuracy=sum(hits.values()) / n if n else 0.0,
        in_scope_accuracy=sum(t == p for t, p in in_scope) / len(in_scope) if in_scope else None,
        out_of_scope_recall=sum(p == OUT_OF_SCOPE_INTENT for _, p in oos) / len(oos) if oos else None,
        fallback_rate=sum(p == FALLBACK_INTENT for p in predicted) / n if n else 0.0,
        macro_f1=sum(s.f1 for s in per_intent) / len(per_intent) if per_intent else 0.0,
        per_intent=tuple(per_intent),
        confused_pairs=tuple((t, p, c) for (t, p), c in confusions.most_common(top_confusions)),
    )


def evaluate(parser: IntentParser, data: TrainingData, *, top_confusions: int = 10) -> EvaluationReport:
    """Parse every example of ``data`` in one batch and score the intents."""
    results = parser.parse_batch(data.texts)
    return score(data.labels, [r.intent.name for r in results], top_confusions=top_confusions)
