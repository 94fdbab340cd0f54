"""The simulator's hidden truth for message experiments and send times.

A push converts (the user comes back within the window) with the type's response probability,
times a per-variant multiplier the simulator knows and Rapport does not, times how awake the user
is at that local hour: a type's activity rhythm (`TypeProfile.hour_weights`) is also its
responsiveness, so a push at 03:00 local lands worse than one at the user's usual hour. That makes
both winner selection and send-time optimisation measurable against a known answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from demo.simulation.behaviour import TypeProfile
from demo.simulation.population import Persona
from demo.simulation.responses import MAX_RESPONSE, response_probability

__all__ = [
    "HOUR_FLOOR",
    "conversion_probability",
    "hour_factor",
    "local_hour",
    "zone_of",
]

HOUR_FLOOR = 0.3
"""Responsiveness at a user's least active hour, relative to their most active one."""


def zone_of(persona: Persona) -> ZoneInfo:
    """The fixed-offset zone of a simulated user (`Etc/GMT-8` is UTC+8: POSIX signs are inverted)."""
    offset = persona.utc_offset_h
    return ZoneInfo("Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}")


def local_hour(persona: Persona, when: datetime) -> int:
    """The user's local clock hour at an aware instant."""
    return when.astimezone(zone_of(persona)).hour


def hour_factor(profile: TypeProfile, hour: int) -> float:
    """Responsiveness at a local hour, from `HOUR_FLOOR` (least active hour) to 1 (most active)."""
    weights = profile.hour_weights()
    relative = (weights[hour % 24] - weights.min()) / (weights.max() - weights.min())
    return float(HOUR_FLOOR + (1.0 - HOUR_FLOOR) * relative)


def conversion_probability(
    persona: Persona,
    targets: Collection[str],
    *,
    when: datetime,
    variant: str | None = None,
    effects: Mapping[str, float] | None = None,
) -> float:
    """Probability that a push sent at `when` brings the user back.

    Args:
        targets: What the message is about (intents), as for `response_probability`.
        variant: The experiment arm the user got; `effects[variant]` multiplies the probability.
        effects: The hidden per-variant multipliers (1.0 for arms not named).
    """
    multiplier = 1.0 if variant is None or effects is None else effects.get(variant, 1.0)
    base = response_probability(persona.profile, targets)
    awake = hour_factor(persona.profile, local_hour(persona, when))
    return float(np.clip(base * multiplier * awake, 0.0, MAX_RESPONSE))
