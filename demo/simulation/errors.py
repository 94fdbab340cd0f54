"""Errors of the community simulator.

Hierarchy::

    ValueError
    └── SimulationConfigError   a population or run asked for something impossible
"""

from __future__ import annotations

__all__ = ["SimulationConfigError"]


class SimulationConfigError(ValueError):
    """A simulation parameter is out of range (the message names the value)."""
