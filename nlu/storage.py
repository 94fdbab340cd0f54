"""Saving and loading models as JSON plus ``.npz`` arrays: no pickle, checksums checked before use."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from nlu.classifier import IntentClassifier
from nlu.encoder import SentenceEncoder, get_encoder
from nlu.entities import EntityExtractor
from nlu.errors import ModelLoadError, ModelVersionError
from nlu.fallback import FallbackPolicy
from nlu.featurizer import TextFeaturizer
from nlu.model import NLUModel

logger = logging.getLogger(__name__)

# 2: optional sentence-embedding head (dense_coef, dense_intercept) and its encoder.
# 3: a class of generated nonsense named ``nlu_fallback`` (``nlu.nonsense``): ``classes`` lists the
#    classifier's columns, ``labels`` the intents only.
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # a version-2 model loads unchanged: it simply has no nonsense class
METADATA_FILE = "metadata.json"
_VOCABULARY_FILE = "vocabulary.json"
_ARRAYS_FILE = "arrays.npz"
_ENTITIES_FILE = "entities.json"
_MODEL_KIND = "rapport-nlu/tfidf-svm+sentence-embedding-head"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, payload: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(payload)
    os.replace(temporary, path)


def save_model(model: NLUModel, model_dir: Path) -> Path:
    """Write ``model`` into ``model_dir`` (created if needed); ``metadata.json`` is written last.

    Returns:
        The path of the metadata file.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    featurizer, classifier = model.featurizer, model.classifier
    vocabulary = json.dumps({"terms": featurizer.terms()}, ensure_ascii=False).encode("utf-8")
    _write_atomic(model_dir / _VOCABULARY_FILE, vocabulary)
    temporary = model_dir / (_ARRAYS_FILE + ".tmp.npz")
    arrays = {"idf": featurizer.idf_, "coef": classifier.coef_, "intercept": classifier.intercept_}
    if model.encoder is not None and classifier.dense_coef_ is not None:
        assert classifier.dense_intercept_ is not None
        arrays.update(dense_coef=classifier.dense_coef_, dense_intercept=classifier.dense_intercept_)
    np.savez(temporary, allow_pickle=False, **arrays)
    os.replace(temporary, model_dir / _ARRAYS_FILE)
    entities = json.dumps(model.extractor.to_dict(), ensure_ascii=False).encode("utf-8")
    _write_atomic(model_dir / _ENTITIES_FILE, entities)
    files = {name: _sha256(model_dir / name) for name in (_VOCABULARY_FILE, _ARRAYS_FILE, _ENTITIES_FILE)}
    metadata: dict[str, Any] = {
        **model.metadata,
        "format_version": FORMAT_VERSION,
        "kind": _MODEL_KIND,
        "labels": model.labels,
        "classes": classifier.classes_,
        "thresholds": {
            "threshold": model.policy.threshold,
            "ambiguity_threshold": model.policy.ambiguity_threshold,
        },
        "featurizer": {**featurizer.get_config(), "n_word_features": featurizer.n_word_features_},
        "classifier": {
            "C": classifier.C,
            "temperature": classifier.temperature,
            "class_weight": classifier.class_weight,
            "random_state": classifier.random_state,
            "dense_C": classifier.dense_C,
            "dense_weight": classifier.dense_weight if model.encoder is not None else 0.0,
            "sparse_temperature": classifier.sparse_temperature,
            "skip_confidence": classifier.skip_confidence,
        },
        "encoder": (
            {"name": model.encoder.name, "fingerprint": model.encoder.fingerprint()}
            if model.encoder is not None
            else None
        ),
        "files": files,
    }
    payload = json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    _write_atomic(model_dir / METADATA_FILE, payload)
    logger.info("saved NLU model with %d intents to %s", len(classifier.classes_), model_dir)
    return model_dir / METADATA_FILE


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """The metadata of the model in ``model_dir``, with its format version checked.

    Raises:
        ModelLoadError: no such directory, no metadata, or unreadable metadata.
        ModelVersionError: the model was written by another format version.
    """
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {str(model_dir)!r} does not exist")
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ModelLoadError(f"{str(model_dir)!r} is not a Rapport NLU model: it has no {METADATA_FILE}")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{path} must hold a JSON object")
    version = metadata.get("format_version")
    if version not in READABLE_VERSIONS or metadata.get("kind") != _MODEL_KIND:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise ModelVersionError(
            f"model in {str(model_dir)!r} has format version {version!r} (kind {metadata.get('kind')!r}); "
            f"this Rapport reads versions {readable} ({_MODEL_KIND}); retrain with `rapport nlu train`"
        )
    return metadata


def _checked_file(model_dir: Path, name: str, expected: Any) -> Path:
    """A file of the model, only if it lies inside ``model_dir`` and matches its recorded SHA-256."""
    path = (model_dir / name).resolve()
    if path.parent != model_dir.resolve() or not path.is_file():
        raise ModelLoadError(f"model file {name!r} is missing from {str(model_dir)!r}")
    if _sha256(path) != expected:
        raise ModelLoadError(f"model file {str(path)!r} does not match its checksum: the model is damaged")
    return path


def _encoder_for(model_dir: Path, recorded: Any) -> SentenceEncoder | None:
    """The sentence encoder the model was trained with, if it used one; refuse any other weights."""
    if recorded is None:
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("name"), str):
        raise ModelLoadError(f"model in {str(model_dir)!r} is damaged: bad 'encoder' entry {recorded!r}")
    encoder = get_encoder(recorded["name"])
    if encoder.fingerprint() != recorded.get("fingerprint"):
        raise ModelVersionError(
            f"model in {str(model_dir)!r} was trained with sentence encoder {recorded.get('fingerprint')!r},"
            f" but this install has {encoder.fingerprint()!r}; retrain with `rapport nlu train`"
        )
    return encoder


def load_model(model_dir: Path) -> NLUModel:
    """Load a model saved by :func:`save_model`.

    Raises:
        ModelLoadError: missing directory or files, checksum mismatch, or damaged content.
        ModelVersionError: the model was written by another format version.
    """
    metadata = read_metadata(model_dir)
    try:
        files = metadata["files"]
        vocabulary_path = _checked_file(model_dir, _VOCABULARY_FILE, files[_VOCABULARY_FILE])
        arrays_path = _checked_file(model_dir, _ARRAYS_FILE, files[_ARRAYS_FILE])
        entities_path = _checked_file(model_dir, _ENTITIES_FILE, files[_ENTITIES_FILE])
        terms = json.loads(vocabulary_path.read_text(encoding="utf-8"))["terms"]
        encoder = _encoder_for(model_dir, metadata.get("encoder"))
        with np.load(arrays_path, allow_pickle=False) as arrays:
            idf, coef, intercept = arrays["idf"], arrays["coef"], arrays["intercept"]
            dense = (arrays["dense_coef"], arrays["dense_intercept"]) if encoder is not None else None
        featurizer = TextFeaturizer.from_state(
            metadata["featurizer"], terms, idf, int(metadata["featurizer"]["n_word_features"])
        )
        params = metadata["classifier"]
        classifier = IntentClassifier.from_fitted(
            classes=metadata.get("classes", metadata["labels"]),  # version 2: the labels are the classes
            coef=coef,
            intercept=intercept,
            dense_coef=dense[0] if dense is not None else None,
            dense_intercept=dense[1] if dense is not None else None,
            C=float(params["C"]),
            temperature=float(params["temperature"]),
            class_weight=params["class_weight"],
            random_state=int(params["random_state"]),
            dense_C=float(params["dense_C"]),
            dense_weight=float(params["dense_weight"]),
            sparse_temperature=float(params["sparse_temperature"]),
            skip_confidence=float(params["skip_confidence"]),
        )
        extractor = EntityExtractor.from_dict(json.loads(entities_path.read_text(encoding="utf-8")))
        thresholds = metadata["thresholds"]
        policy = FallbackPolicy(float(thresholds["threshold"]), float(thresholds["ambiguity_threshold"]))
    except ModelLoadError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ModelLoadError(f"model in {str(model_dir)!r} is damaged: {exc!r}") from exc
    n_features, n_classes = classifier.coef_.shape
    shapes_ok = n_features == len(terms) and n_classes == len(classifier.classes_) and len(idf) == len(terms)
    if encoder is not None and dense is not None:
        shapes_ok = (
            shapes_ok and dense[0].shape == (encoder.dimension, n_classes) and dense[1].shape == (n_classes,)
        )
    if not shapes_ok:
        raise ModelLoadError(
            f"model in {str(model_dir)!r} is damaged: array shapes do not match the vocabulary"
        )
    if classifier.uses_embeddings != (encoder is not None):
        raise ModelLoadError(f"model in {str(model_dir)!r} is damaged: encoder and head disagree")
    return NLUModel(featurizer, classifier, extractor, policy, metadata, encoder=encoder)
