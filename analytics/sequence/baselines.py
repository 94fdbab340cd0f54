"""Baseline next-event models: global popularity and a first-order Markov chain."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from analytics.errors import ModelFormatError
from analytics.sequence.base import (
    BaseSequenceModel,
    build_vocabulary,
    check_sequences,
    construct,
    read_metadata,
)

logger = logging.getLogger(__name__)


def _check_positive(name: str, value: float, *, strict: bool = True) -> None:
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}, got {value!r}")


class PopularityModel(BaseSequenceModel):
    """Predicts the same distribution for everyone: how often each token occurs in training.

    The floor every sequence model must beat; it also serves as the prior for ties and back-off.

    Args:
        min_count: tokens seen fewer times are not predicted.
        alpha: additive smoothing, so tokens at `min_count` keep some mass.
    """

    model_type = "popularity"

    def __init__(self, min_count: int = 1, alpha: float = 1.0) -> None:
        self.min_count = min_count
        self.alpha = alpha

    def fit(
        self,
        sequences: Iterable[Sequence[str]],
        validation_sequences: Iterable[Sequence[str]] | None = None,
    ) -> PopularityModel:
        """Count tokens; `validation_sequences` is accepted for interface parity and ignored."""
        _check_positive("min_count", self.min_count)
        _check_positive("alpha", self.alpha, strict=False)
        data = check_sequences(sequences)
        vocabulary, counts = build_vocabulary(data, self.min_count)
        self.classes_ = np.array(vocabulary, dtype=np.str_)
        raw = np.array([counts[token] for token in vocabulary], dtype=np.float64) + self.alpha
        self.prior_ = raw / raw.sum()
        self.metrics_: dict[str, float] = {"n_sequences": float(len(data))}
        logger.info("popularity model fitted on %d sequences, %d tokens", len(data), len(vocabulary))
        return self

    def _predict_batch(self, prefixes: list[list[str]]) -> NDArray[np.float64]:
        return np.tile(self.prior_, (len(prefixes), 1))

    def save(self, directory: str | Path) -> None:
        """Write `metadata.json` (the prior is the whole model)."""
        self._write_metadata(Path(directory), {})

    @classmethod
    def load(cls, directory: str | Path) -> PopularityModel:
        """Load a model written by `save`.

        Raises:
            ModelFormatError: if the directory holds another format or model type.
        """
        metadata = read_metadata(directory, expected_type=cls.model_type)
        model = construct(cls, metadata, directory)
        model.classes_ = np.array(metadata["vocabulary"], dtype=np.str_)
        model.prior_ = np.array(metadata["prior"], dtype=np.float64)
        model.metrics_ = dict(metadata["metrics"])
        return model


class MarkovModel(BaseSequenceModel):
    """First-order Markov chain: the next token depends only on the last one.

    Transition counts get additive smoothing `alpha`; a prefix that is empty or ends in a token
    never seen as a predecessor backs off to popularity. Strong on short-memory data, blind to
    anything two steps back, which is what the LSTM must add.
    """

    model_type = "markov"

    def __init__(self, alpha: float = 0.1, min_count: int = 1) -> None:
        self.alpha = alpha
        self.min_count = min_count

    def fit(
        self,
        sequences: Iterable[Sequence[str]],
        validation_sequences: Iterable[Sequence[str]] | None = None,
    ) -> MarkovModel:
        """Count transitions; `validation_sequences` is accepted for interface parity and ignored."""
        _check_positive("min_count", self.min_count)
        _check_positive("alpha", self.alpha, strict=False)
        data = check_sequences(sequences)
        vocabulary, counts = build_vocabulary(data, self.min_count)
        index = {token: position for position, token in enumerate(vocabulary)}
        size = len(vocabulary)
        transitions = np.zeros((size, size), dtype=np.float64)
        for sequence in data:
            for previous, following in itertools.pairwise(sequence):
                row, column = index.get(previous), index.get(following)
                if row is not None and column is not None:
                    transitions[row, column] += 1.0
        self.classes_ = np.array(vocabulary, dtype=np.str_)
        raw = np.array([counts[token] for token in vocabulary], dtype=np.float64) + 1.0
        self.prior_ = raw / raw.sum()
        self.transition_counts_ = transitions
        self.metrics_: dict[str, float] = {"n_transitions": float(transitions.sum())}
        logger.info("markov model fitted: %d tokens, %d transitions", size, int(transitions.sum()))
        return self

    def _predict_batch(self, prefixes: list[list[str]]) -> NDArray[np.float64]:
        index = self._index()
        smoothed = self.transition_counts_ + self.alpha
        totals = smoothed.sum(axis=1, keepdims=True)
        rows = np.tile(self.prior_, (len(prefixes), 1))
        for position, prefix in enumerate(prefixes):
            previous = index.get(prefix[-1]) if prefix else None
            if previous is not None and self.transition_counts_[previous].sum() > 0:
                rows[position] = smoothed[previous] / totals[previous]
        return rows

    def save(self, directory: str | Path) -> None:
        """Write `metadata.json` with the transition counts."""
        self._write_metadata(Path(directory), {"transition_counts": self.transition_counts_.tolist()})

    @classmethod
    def load(cls, directory: str | Path) -> MarkovModel:
        """Load a model written by `save`.

        Raises:
            ModelFormatError: if the directory holds another format, type, or a count matrix whose
                shape does not match the vocabulary.
        """
        metadata = read_metadata(directory, expected_type=cls.model_type)
        model = construct(cls, metadata, directory)
        vocabulary = metadata["vocabulary"]
        counts = np.array(metadata["state"].get("transition_counts", []), dtype=np.float64)
        if counts.shape != (len(vocabulary), len(vocabulary)):
            raise ModelFormatError(
                f"{directory}: transition counts of shape {counts.shape} "
                f"do not match a vocabulary of {len(vocabulary)}"
            )
        model.classes_ = np.array(vocabulary, dtype=np.str_)
        model.prior_ = np.array(metadata["prior"], dtype=np.float64)
        model.transition_counts_ = counts
        model.metrics_ = dict(metadata["metrics"])
        return model
