"""The bundled default model: trained from ``nlu/data`` on first use and retrained when the data changes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from nlu.errors import ModelLoadError
from nlu.model import NLUModel
from nlu.reader import load_training_data
from nlu.storage import FORMAT_VERSION, load_model, read_metadata, save_model
from nlu.training import train

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).parent / "data"


def default_data_paths() -> list[Path]:
    """The bundled Rasa YAML files (English and Chinese)."""
    return sorted(DEFAULT_DATA_DIR.glob("*.yml"))


def load_or_train_default(model_dir: Path, data_paths: Sequence[Path] | None = None) -> NLUModel:
    """Load the model in ``model_dir``, or train one from ``data_paths`` (default: bundled data) and save it.

    A model whose recorded training-data hash differs from the data's, that an older format version
    wrote (it lacks what training adds since, such as the nonsense class behind the fallback), or that
    cannot be read (missing, damaged, unknown version), is retrained and replaced; the reason is logged.

    Raises:
        TrainingDataError: the training data itself is bad.
    """
    paths = list(data_paths) if data_paths is not None else default_data_paths()
    data = load_training_data(paths)
    fingerprint = data.fingerprint()
    try:
        metadata = read_metadata(model_dir)
        if metadata.get("format_version") != FORMAT_VERSION:
            logger.info(
                "the model in %s has format version %s, older than %s: retraining",
                model_dir, metadata.get("format_version"), FORMAT_VERSION,
            )  # fmt: skip
        elif metadata.get("data_hash") == fingerprint:
            return load_model(model_dir)
        else:
            logger.info("training data changed since the model in %s was trained: retraining", model_dir)
    except ModelLoadError as exc:
        logger.info("no usable NLU model (%s): training one", exc)
    model = train(data)
    save_model(model, model_dir)
    return model
