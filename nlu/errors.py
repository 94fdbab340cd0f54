"""Errors raised by the NLU package.

Hierarchy::

    NLUError (Exception)
    ├── TrainingDataError (ValueError)      bad training data; the message names file and line
    ├── ModelLoadError (RuntimeError)       a model directory that is missing, damaged or unsafe
    │   └── ModelVersionError               a model written by another format version
    ├── NotFittedError (RuntimeError)       an estimator used before ``fit``
    └── ParsePayloadError (ValueError)      a ``/model/parse`` payload that is not Rasa's shape
"""

from __future__ import annotations


class NLUError(Exception):
    """Base class of every error this package raises on purpose."""


class TrainingDataError(NLUError, ValueError):
    """Training data that cannot be read; the message points at the file and line."""


class ModelLoadError(NLUError, RuntimeError):
    """A model directory that cannot be loaded (missing, damaged, or files outside it)."""


class ModelVersionError(ModelLoadError):
    """A model directory written by a format version this code cannot read."""


class NotFittedError(NLUError, RuntimeError):
    """An estimator was asked to predict before it was fitted."""


class ParsePayloadError(NLUError, ValueError):
    """A ``/model/parse`` JSON payload that does not have Rasa's documented shape."""
