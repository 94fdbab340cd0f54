"""Shared pieces of the next-event models: the protocol, vocabulary, ranking and metadata files."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from analytics.errors import ModelFormatError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
PAD_ID = 0
OOV_ID = 1
N_RESERVED = 2


@runtime_checkable
class SequenceModel(Protocol):
    """What the follow-up chooser and the metrics need from a next-event model."""

    classes_: NDArray[np.str_]

    def predict_proba(self, prefixes: Sequence[Sequence[str]]) -> NDArray[np.float64]:
        """Probabilities of each class being the next token, one row per prefix."""
        ...

    def rank(self, prefixes: Sequence[Sequence[str]], k: int = 10) -> list[list[str]]:
        """The `k` most likely next tokens of each prefix, best first."""
        ...


def check_sequences(sequences: Iterable[Sequence[str]], *, name: str = "sequences") -> list[list[str]]:
    """Materialise sequences of string tokens, rejecting a bare string (a common slip).

    Raises:
        TypeError: if `sequences` or one of its items is a string, or a token is not a string.
    """
    if isinstance(sequences, str):
        raise TypeError(f"{name} must be a sequence of token sequences, got the string {sequences!r}")
    result: list[list[str]] = []
    for index, sequence in enumerate(sequences):
        if isinstance(sequence, str):
            raise TypeError(f"{name}[{index}] must be a sequence of tokens, got the string {sequence!r}")
        tokens = list(sequence)
        for token in tokens:
            if not isinstance(token, str):
                raise TypeError(f"{name}[{index}] holds a non-string token {token!r}")
        result.append(tokens)
    return result


def build_vocabulary(sequences: Sequence[Sequence[str]], min_count: int) -> tuple[list[str], Counter[str]]:
    """Return the sorted tokens seen at least `min_count` times, and all token counts.

    Raises:
        ValueError: if no token reaches `min_count` (nothing could be predicted).
    """
    counts: Counter[str] = Counter(token for sequence in sequences for token in sequence)
    vocabulary = sorted(token for token, count in counts.items() if count >= min_count)
    if not vocabulary:
        raise ValueError(
            f"no token occurs at least min_count={min_count} times in {len(sequences)} sequences"
        )
    return vocabulary, counts


class BaseSequenceModel(BaseEstimator):  # type: ignore[misc]
    """Ranking, batching and the metadata file shared by all next-event models.

    Subclasses set `classes_` (sorted known tokens), `prior_` (popularity of each class, used to
    break ties in `rank`) and implement `_predict_batch`.
    """

    model_type: str = ""
    classes_: NDArray[np.str_]
    prior_: NDArray[np.float64]
    metrics_: dict[str, float]

    def _predict_batch(self, prefixes: list[list[str]]) -> NDArray[np.float64]:
        raise TypeError(f"{type(self).__name__} must implement _predict_batch")

    def _index(self) -> dict[str, int]:
        return {token: index for index, token in enumerate(self.classes_.tolist())}

    def iter_predict_proba(
        self, prefixes: Iterable[Sequence[str]], *, batch_size: int = 1024
    ) -> Iterator[NDArray[np.float64]]:
        """Yield probability rows for `prefixes` in batches, so memory stays bounded for any number."""
        check_is_fitted(self)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        batch: list[list[str]] = []
        for prefix in prefixes:
            batch.append(check_sequences([prefix], name="prefixes")[0])
            if len(batch) == batch_size:
                yield self._predict_batch(batch)
                batch = []
        if batch:
            yield self._predict_batch(batch)

    def predict_proba(self, prefixes: Sequence[Sequence[str]]) -> NDArray[np.float64]:
        """Return an `(n, len(classes_))` array: the probability of each known token coming next."""
        check_is_fitted(self)
        rows = list(self.iter_predict_proba(check_sequences(prefixes, name="prefixes")))
        if not rows:
            return np.zeros((0, len(self.classes_)), dtype=np.float64)
        return np.concatenate(rows, axis=0)

    def rank(self, prefixes: Sequence[Sequence[str]], k: int = 10) -> list[list[str]]:
        """Return the `k` most likely next tokens of each prefix, best first; ties go to the popular."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        proba = self.predict_proba(prefixes)
        k = min(k, len(self.classes_))
        prior = np.broadcast_to(self.prior_, proba.shape)
        order = np.lexsort((-prior, -proba), axis=-1)[:, :k]
        classes = self.classes_
        return [classes[row].tolist() for row in order]

    def _write_metadata(self, directory: Path, state: dict[str, Any]) -> None:
        check_is_fitted(self)
        directory.mkdir(parents=True, exist_ok=True)
        metadata = {
            "format_version": FORMAT_VERSION,
            "model_type": self.model_type,
            "vocabulary": self.classes_.tolist(),
            "prior": self.prior_.tolist(),
            "parameters": self.get_params(),
            "metrics": getattr(self, "metrics_", {}),
            "state": state,
        }
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=1), encoding="utf-8")
        logger.info("saved %s model with %d tokens to %s", self.model_type, len(self.classes_), directory)


def read_metadata(directory: str | Path, *, expected_type: str | None = None) -> dict[str, Any]:
    """Read and check a model's `metadata.json`.

    Raises:
        ModelFormatError: if the file is missing, unreadable, of another format version or model
            type, or its vocabulary and prior disagree.
    """
    path = Path(directory) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{path}: no model metadata file") from exc
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: unreadable model metadata: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path}: metadata must be a JSON object")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format_version {version!r} is not the supported {FORMAT_VERSION}")
    model_type = metadata.get("model_type")
    if expected_type is not None and model_type != expected_type:
        raise ModelFormatError(f"{path}: model_type {model_type!r}, expected {expected_type!r}")
    vocabulary = metadata.get("vocabulary")
    if (
        not isinstance(vocabulary, list)
        or not vocabulary
        or not all(isinstance(token, str) for token in vocabulary)
        or vocabulary != sorted(set(vocabulary))
    ):
        raise ModelFormatError(f"{path}: vocabulary must be a non-empty sorted list of distinct strings")
    prior = metadata.get("prior")
    if not isinstance(prior, list) or len(prior) != len(vocabulary):
        raise ModelFormatError(
            f"{path}: prior has {len(prior) if isinstance(prior, list) else 'no'} entries "
            f"for a vocabulary of {len(vocabulary)}"
        )
    if not isinstance(metadata.get("parameters"), dict) or not isinstance(metadata.get("state"), dict):
        raise ModelFormatError(f"{path}: parameters and state must be JSON objects")
    return metadata


ModelT = TypeVar("ModelT", bound=BaseSequenceModel)


def construct(cls: type[ModelT], metadata: dict[str, Any], directory: str | Path) -> ModelT:
    """Rebuild an estimator from saved parameters, refusing ones this version does not know.

    Raises:
        ModelFormatError: if the parameters do not fit the constructor.
    """
    try:
        return cls(**metadata["parameters"])
    except TypeError as exc:
        raise ModelFormatError(f"{directory}: parameters do not fit {cls.__name__}: {exc}") from exc
