"""Before-versus-after validation of a retraining: is the model with the added examples no worse?

The active model was trained on all of the old data, so scoring it on any of that data flatters it.
Instead both sides are trained the same way on the same held-out split of the *new* data: "before"
on the training part's old examples only, "after" on the whole training part, and both are scored
on the same held-out examples. The held-out part contains added examples too, which "before" has
never seen (that is the point of adding them); the figure on the old examples alone says whether the
additions hurt what the model already knew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from nlu.errors import TrainingDataError
from nlu.evaluation import score
from nlu.model import NLUModel
from nlu.training import TrainingConfig, split_validation, train
from nlu.training_data import Example, TrainingData

logger = logging.getLogger(__name__)

HELD_OUT_FRACTION = 0.2
MAX_KNOWN_ACCURACY_DROP = 0.01  # one point on what the old data covered: noise of a changed tuning
TrainFn = Callable[[TrainingData, TrainingConfig], NLUModel]


def default_train(data: TrainingData, config: TrainingConfig) -> NLUModel:
    """``nlu.training.train`` with ``config``."""
    return train(data, config=config)


@dataclass(frozen=True)
class Figures:
    """How one side scored on the held-out examples.

    ``known_accuracy`` counts only held-out examples that were already in the old data (None when
    there are none).
    """

    n: int
    accuracy: float
    macro_f1: float
    known_n: int
    known_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (stored with the model run)."""
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """The held-out figures of the model before and after the additions, and the verdict."""

    before: Figures
    after: Figures
    n_train_before: int
    n_train_after: int
    no_worse: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (stored with the model run)."""
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "n_train_before": self.n_train_before,
            "n_train_after": self.n_train_after,
            "no_worse": self.no_worse,
            "reason": self.reason,
        }


def _key(example: Example) -> tuple[str, str]:
    return example.text, example.intent


def _subset(data: TrainingData, examples: list[Example]) -> TrainingData:
    return TrainingData(tuple(examples), data.regexes, data.lookups, data.synonyms)


def _figures(model: NLUModel, held_out: list[Example], known: set[tuple[str, str]]) -> Figures:
    predicted = [r.intent.name for r in model.parse_batch([e.text for e in held_out])]
    report = score([e.intent for e in held_out], predicted)
    hits = [p == e.intent for p, e in zip(predicted, held_out, strict=True) if _key(e) in known]
    return Figures(
        n=len(held_out),
        accuracy=report.accuracy,
        macro_f1=report.macro_f1,
        known_n=len(hits),
        known_accuracy=sum(hits) / len(hits) if hits else None,
    )


def verdict(
    before: Figures, after: Figures, *, max_known_drop: float = MAX_KNOWN_ACCURACY_DROP
) -> tuple[bool, str]:
    """No worse: macro-F1 at least the old one's, and accuracy on the old examples down by at most
    ``max_known_drop``. The reason names the figures either way."""
    figures = f"held-out macro-F1 {after.macro_f1:.3f} vs {before.macro_f1:.3f}"
    if after.macro_f1 < before.macro_f1:
        return False, f"worse: {figures}"
    if (
        after.known_accuracy is not None
        and before.known_accuracy is not None
        and after.known_accuracy < before.known_accuracy - max_known_drop
    ):
        return False, (
            f"worse on what it knew: accuracy on the old examples {after.known_accuracy:.3f} vs "
            f"{before.known_accuracy:.3f} ({figures})"
        )
    return True, f"no worse: {figures}"


def compare(
    old: TrainingData,
    new: TrainingData,
    *,
    config: TrainingConfig | None = None,
    train_fn: TrainFn = default_train,
    fraction: float = HELD_OUT_FRACTION,
    random_state: int = 0,
    max_known_drop: float = MAX_KNOWN_ACCURACY_DROP,
) -> Comparison:
    """Train "before" and "after" on one stratified split of ``new`` and score both on its held-out part.

    Raises:
        TrainingDataError: nothing to hold out, or too few intents on either side.
    """
    config = config or TrainingConfig(random_state=random_state)
    fit_part, held_out = split_validation(new.examples, fraction=fraction, random_state=random_state)
    if not held_out:
        raise TrainingDataError("no intent has the 3 examples needed to hold some out for validation")
    known = {_key(e) for e in old.examples}
    fit_before = [e for e in fit_part if _key(e) in known]
    if len({e.intent for e in fit_before}) < 2:
        raise TrainingDataError("the old training data has fewer than 2 intents: nothing to compare with")
    before_model = train_fn(_subset(new, fit_before), config)
    after_model = train_fn(_subset(new, fit_part), config)
    before = _figures(before_model, held_out, known)
    after = _figures(after_model, held_out, known)
    no_worse, reason = verdict(before, after, max_known_drop=max_known_drop)
    logger.info("NLU retraining validation on %d held-out examples: %s", len(held_out), reason)
    return Comparison(before, after, len(fit_before), len(fit_part), no_worse, reason)
