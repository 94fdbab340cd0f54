"""Errors raised by the analytics package.

AnalyticsError(Exception)
├── ModelFormatError(ValueError)   a saved model is of another format version or inconsistent
└── CatalogueError(ValueError)     a follow-up catalogue file is invalid (names the file and message id)
    └── UnknownTargetError          a message targets a token no event kind or NLU intent matches
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base of the analytics errors; catch this at the CLI or scheduler boundary."""


class ModelFormatError(AnalyticsError, ValueError):
    """A saved sequence model cannot be loaded; the message names the directory and the mismatch."""


class CatalogueError(AnalyticsError, ValueError):
    """A follow-up catalogue is invalid; the message names the file and the message id."""


class UnknownTargetError(CatalogueError):
    """A catalogue message targets a token that is neither an event kind nor an intent of the NLU model."""


# --- Segmentation, rules and reports (features/segmentation/rules helper) ---


class BasketFileError(AnalyticsError, ValueError):
    """A basket file cannot be read or holds no baskets; the message names the file."""


class RuleMiningError(AnalyticsError, ValueError):
    """Rule-mining parameters are invalid; the message names the bad value."""


class UnknownSegmentError(AnalyticsError, KeyError):
    """No segment of the current run has this name or id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown segment"
