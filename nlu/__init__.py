"""Rapport's NLU: Rasa-format training data, an n-gram SVM + sentence-embedding engine, Rasa's API."""

from __future__ import annotations

from nlu.classifier import IntentClassifier
from nlu.default import DEFAULT_DATA_DIR, default_data_paths, load_or_train_default
from nlu.entities import EntityExtractor
from nlu.errors import (
    ModelLoadError,
    ModelVersionError,
    NLUError,
    NotFittedError,
    ParsePayloadError,
    TrainingDataError,
)
from nlu.evaluation import EvaluationReport, IntentScores, evaluate, score
from nlu.fallback import FallbackPolicy, tune_fallback
from nlu.featurizer import TextFeaturizer
from nlu.model import NLUModel
from nlu.reader import load_training_data, read, reads_csv, reads_yaml
from nlu.remote import RemoteRasaParser
from nlu.results import (
    FALLBACK_INTENT,
    OUT_OF_SCOPE_INTENT,
    Entity,
    IntentParser,
    IntentScore,
    ParseResult,
)
from nlu.storage import FORMAT_VERSION, load_model, read_metadata, save_model
from nlu.training import TrainingConfig, train
from nlu.training_data import TrainingData, validate

__all__ = [
    "DEFAULT_DATA_DIR",
    "FALLBACK_INTENT",
    "FORMAT_VERSION",
    "OUT_OF_SCOPE_INTENT",
    "Entity",
    "EntityExtractor",
    "EvaluationReport",
    "FallbackPolicy",
    "IntentClassifier",
    "IntentParser",
    "IntentScore",
    "IntentScores",
    "ModelLoadError",
    "ModelVersionError",
    "NLUError",
    "NLUModel",
    "NotFittedError",
    "ParsePayloadError",
    "ParseResult",
    "RemoteRasaParser",
    "TextFeaturizer",
    "TrainingConfig",
    "TrainingData",
    "TrainingDataError",
    "default_data_paths",
    "evaluate",
    "load_model",
    "load_or_train_default",
    "load_training_data",
    "read",
    "read_metadata",
    "reads_csv",
    "reads_yaml",
    "save_model",
    "score",
    "train",
    "tune_fallback",
    "validate",
]
