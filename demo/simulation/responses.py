"""How simulated users react to a push: answer it, come back on their own, or stay away."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from demo.simulation.behaviour import INTENT_ACTIONS, TypeProfile

__all__ = ["natural_return_probability", "response_intent", "response_probability"]

MAX_RESPONSE = 0.9


def response_probability(profile: TypeProfile, targets: Collection[str]) -> float:
    """Probability of answering a push whose message is about `targets` (intents or kinds).

    Each type answers some pushes anyway; one about what they care about lands better, which
    is what a good follow-up chooser exploits.
    """
    base = profile.push_response
    if set(targets) & set(profile.interests()):
        base *= profile.push_match_boost
    return min(base, MAX_RESPONSE)


def natural_return_probability(profile: TypeProfile, days: float) -> float:
    """Probability of coming back unprompted within `days` days: the holdout's baseline."""
    if days <= 0:
        return 0.0
    return float(1.0 - (1.0 - profile.natural_return) ** days)


def response_intent(profile: TypeProfile, targets: Collection[str], rng: np.random.Generator) -> str:
    """What a returning user asks: a push target they care about, else one of their interests."""
    interests = profile.interests()
    matching = [t for t in targets if t in interests and t in INTENT_ACTIONS]
    pool = matching or list(interests) or ["greet"]
    return pool[int(rng.integers(len(pool)))]
