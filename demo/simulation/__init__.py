"""The community simulator: users with hidden types who chat, react, vote and drift away.

Pure and telegram-free (benchmarks import it); `demo.simulation.driver` plays the same
users against the local Bot API server and is imported on its own.
"""

from __future__ import annotations

from demo.simulation.activity import ActionBatch, iter_actions
from demo.simulation.behaviour import ACTIONS, INTENT_ACTIONS, TYPES, TypeProfile, type_named
from demo.simulation.bulk import GROUP_CHAT_ID, BulkReport, batch_rows, write_history
from demo.simulation.errors import SimulationConfigError
from demo.simulation.population import Persona, Population, make_population
from demo.simulation.responses import (
    natural_return_probability,
    response_intent,
    response_probability,
)
from demo.simulation.texts import render

__all__ = [
    "ACTIONS",
    "GROUP_CHAT_ID",
    "INTENT_ACTIONS",
    "TYPES",
    "ActionBatch",
    "BulkReport",
    "Persona",
    "Population",
    "SimulationConfigError",
    "TypeProfile",
    "batch_rows",
    "iter_actions",
    "make_population",
    "natural_return_probability",
    "render",
    "response_intent",
    "response_probability",
    "type_named",
    "write_history",
]
