"""The simulator's hidden truth for message experiments and send times.

A push converts (the user comes back within the window) with the type's response probability,
times a per-variant multiplier the simulator knows and Rapport does not, times how awake the user
is at that local hour: a type's activity rhythm (`TypeProfile.hour_weights`) is also its
responsiveness, so a push at 03:00 local lands worse than one at the user's usual hour. That makes
both winner selection and send-time optimisation measurable against a known answer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from analytics.experiments import assign_arm
from demo.simulation.behaviour import TYPES, TypeProfile
from demo.simulation.population import Persona, Population
from demo.simulation.responses import MAX_RESPONSE, response_probability

__all__ = [
    "HOUR_FLOOR",
    "VariantTest",
    "conversion_probability",
    "hour_factor",
    "local_hour",
    "plain_conversion_probabilities",
    "run_variant_test",
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


def plain_conversion_probabilities(population: Population, when: datetime) -> NDArray[np.float64]:
    """Each user's probability of converting on a plain push at `when`, before any variant effect.

    Vectorised over the population: the formula of `conversion_probability` for a message without
    targets, so 100 runs of tens of thousands of users take seconds.
    """
    hours = (when.astimezone(ZoneInfo("UTC")).hour + population.utc_offset_h.astype(np.int64)) % 24
    table = np.array([[hour_factor(t, h) * t.push_response for h in range(24)] for t in TYPES])
    return np.asarray(table[population.type_index.astype(np.int64), hours], dtype=np.float64)


@dataclass(frozen=True)
class VariantTest:
    """One simulated message test: each user's arm, whether they converted, and the hidden truth."""

    arms: list[str]
    converted: NDArray[np.bool_]
    probabilities: NDArray[np.float64]
    """Each user's true conversion probability under the arm they got."""

    def counts(self, variants: Collection[str]) -> tuple[dict[str, int], dict[str, int]]:
        """(conversions, sends) per variant."""
        sends = dict.fromkeys(variants, 0)
        conversions = dict.fromkeys(variants, 0)
        for arm, hit in zip(self.arms, self.converted.tolist(), strict=True):
            sends[arm] += 1
            conversions[arm] += int(hit)
        return conversions, sends

    def true_rates(self, variants: Collection[str]) -> dict[str, float]:
        """The mean true conversion probability of each arm's users: what the test estimates."""
        arms = np.array(self.arms)
        return {
            v: float(self.probabilities[arms == v].mean()) if (arms == v).any() else 0.0 for v in variants
        }


def run_variant_test(
    population: Population,
    *,
    key: str,
    effects: Mapping[str, float],
    when: datetime,
    rng: np.random.Generator,
) -> VariantTest:
    """Send one message test to every user: arms by Rapport's stable hash (`assign_arm`, equal
    weights over `effects`' variants), conversions drawn from the simulator's hidden truth."""
    variants = list(effects)
    arms = [
        assign_arm(key, int(user_id), dict.fromkeys(variants, 1.0)) for user_id in population.ids.tolist()
    ]
    multiplier = np.array([effects[arm] for arm in arms], dtype=np.float64)
    probabilities = np.clip(plain_conversion_probabilities(population, when) * multiplier, 0.0, MAX_RESPONSE)
    converted = rng.random(len(arms)) < probabilities
    return VariantTest(arms, converted, probabilities)
