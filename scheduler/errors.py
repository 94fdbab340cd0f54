"""Errors raised by the scheduler.

SchedulerError(Exception)
├── UnknownJobError(KeyError)          `rapport jobs run NAME` with a name no job has
├── CampaignNotFoundError(KeyError)    a campaign id that does not exist
├── CampaignStateError(ValueError)     pause/resume/cancel from a status that does not allow it
├── BroadcastError(ValueError)         a broadcast request with a bad segment, text or time
│   └── ExperimentError                a broadcast experiment with bad variants, shares or goal
├── ExperimentNotFoundError(KeyError)  an experiment id that does not exist
└── LeaseLostError                     this process no longer holds the scheduler lease
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Base of the scheduler's errors."""


class UnknownJobError(SchedulerError, KeyError):
    """No job has this name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown job"


class CampaignNotFoundError(SchedulerError, KeyError):
    """No campaign has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "campaign not found"


class CampaignStateError(SchedulerError, ValueError):
    """The campaign's status does not allow the requested change."""


class BroadcastError(SchedulerError, ValueError):
    """A broadcast request is invalid (segment, text or time)."""


class LeaseLostError(SchedulerError):
    """Another process took the scheduler lease: this one must stop sending at once."""


class ExperimentError(BroadcastError):
    """A broadcast experiment is invalid (variants, shares, goal, default or timing)."""


class ExperimentNotFoundError(SchedulerError, KeyError):
    """No experiment has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "experiment not found"
