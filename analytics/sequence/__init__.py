"""Next-event models over users' interaction token sequences: LSTM, Markov and popularity."""

from __future__ import annotations

from pathlib import Path

from analytics.errors import ModelFormatError
from analytics.sequence.base import FORMAT_VERSION, BaseSequenceModel, SequenceModel, read_metadata
from analytics.sequence.baselines import MarkovModel, PopularityModel
from analytics.sequence.lstm import NextEventModel
from analytics.sequence.tokens import (
    EVENT_KINDS,
    PRODUCT_TOKEN_PREFIX,
    TokenVocabulary,
    event_token,
    is_product_token,
    stored_token,
)

__all__ = [
    "EVENT_KINDS",
    "FORMAT_VERSION",
    "PRODUCT_TOKEN_PREFIX",
    "BaseSequenceModel",
    "MarkovModel",
    "NextEventModel",
    "PopularityModel",
    "SequenceModel",
    "TokenVocabulary",
    "event_token",
    "is_product_token",
    "load_model",
    "stored_token",
]

_MODEL_TYPES: dict[str, type[NextEventModel] | type[MarkovModel] | type[PopularityModel]] = {
    NextEventModel.model_type: NextEventModel,
    MarkovModel.model_type: MarkovModel,
    PopularityModel.model_type: PopularityModel,
}


def load_model(directory: str | Path) -> NextEventModel | MarkovModel | PopularityModel:
    """Load whichever next-event model `directory` holds, by the `model_type` in its metadata.

    Raises:
        ModelFormatError: if the metadata is missing, of another version, or names no known type.
    """
    model_type = read_metadata(directory)["model_type"]
    try:
        cls = _MODEL_TYPES[model_type]
    except KeyError as exc:
        raise ModelFormatError(f"{directory}: unknown model_type {model_type!r}") from exc
    return cls.load(directory)
