"""The hidden behavioural types of simulated users: what each asks, when, and how it reacts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nlu import default_data_paths, load_training_data

__all__ = [
    "ACTIONS",
    "GROUP_ONLY",
    "INTENT_ACTIONS",
    "NON_INTENT_ACTIONS",
    "TYPES",
    "TypeProfile",
    "action_index",
    "transition_matrix",
    "type_named",
]

# Every intent of the bundled NLU data, in file order (the fallback is given by the NLU, never asked).
INTENT_ACTIONS: tuple[str, ...] = tuple(dict.fromkeys(load_training_data(default_data_paths()).labels))
"""Actions that are a question or remark to the bot, named after the intent they express."""

NON_INTENT_ACTIONS: tuple[str, ...] = ("start", "join", "feedback", "reaction", "poll_answer", "chatter")
"""`/start`, joining the group, `/feedback` with a rating, a reaction, a poll vote, and group
chatter not addressed to the bot. `start` and `join` only open a user's life, never follow."""

GROUP_ONLY: frozenset[str] = frozenset({"join", "reaction", "poll_answer", "chatter"})

ACTIONS: tuple[str, ...] = INTENT_ACTIONS + NON_INTENT_ACTIONS
_INDEX = {name: i for i, name in enumerate(ACTIONS)}

# Habits: after the key, these actions are much more likely than the type's mix alone says.
_AFFINITY: dict[str, tuple[str, ...]] = {
    "greet": ("getting_started", "pricing", "models", "community_events"),
    "getting_started": ("api_keys", "docs", "pricing"),
    "api_keys": ("rate_limits", "docs", "bug_report"),
    "rate_limits": ("pricing", "service_status", "billing"),
    "pricing": ("billing", "models", "thanks"),
    "billing": ("account", "human_handoff", "thanks"),
    "account": ("data_privacy", "billing"),
    "models": ("fine_tuning", "pricing", "rate_limits"),
    "fine_tuning": ("docs", "models", "feature_request"),
    "bug_report": ("service_status", "human_handoff", "feedback"),
    "service_status": ("bug_report", "rate_limits"),
    "human_handoff": ("feedback", "thanks"),
    "docs": ("api_keys", "fine_tuning", "thanks"),
    "feature_request": ("feedback", "community_events"),
    "community_events": ("poll_answer", "reaction", "chatter"),
    "thanks": ("goodbye", "feedback"),
    "reaction": ("chatter", "poll_answer", "reaction"),
    "poll_answer": ("reaction", "chatter", "community_events"),
    "chatter": ("reaction", "chatter", "community_events"),
    "out_of_scope": ("greet", "out_of_scope"),
    "start": ("greet", "getting_started", "pricing"),
    "join": ("greet", "community_events", "chatter"),
}
AFFINITY_WEIGHT = 6.0
STICKINESS = 0.12


@dataclass(frozen=True)
class TypeProfile:
    """One hidden behavioural type.

    The analytics must rediscover these from the event log alone, so each type differs in
    several observable ways at once: intent mix, rhythm, volume, chat and lifetime.

    Attributes:
        name: The type's name (the ground-truth label of the adjusted Rand index).
        share: Its share of the population.
        mix: Relative weight of each action (missing actions weigh `floor`).
        floor: Weight of actions not in `mix`, so any action stays possible.
        zh_share: Share of Chinese speakers.
        daily_active: Probability of being active on a day of their active life.
        sessions: Mean sessions on an active day.
        session_length: Mean actions in one session.
        peak_hours: Local hours around which sessions start.
        group_share: Share of intent messages asked in the community group (addressing the bot).
        group_member: Probability of being a member of the community group.
        lifetime: `steady`, `newcomer` (joins during the window, fades), or `drifting` (stops).
        push_response: Probability of answering a push that is not about their interests.
        push_match_boost: Multiplier of that probability when the push is about their interests.
        natural_return: Daily probability of coming back unprompted once silent.
        ratings: Feedback ratings this type gives.
    """

    name: str
    share: float
    mix: dict[str, float]
    floor: float
    zh_share: float
    daily_active: float
    sessions: float
    session_length: float
    peak_hours: tuple[int, ...]
    group_share: float
    group_member: float
    lifetime: str
    push_response: float
    push_match_boost: float
    natural_return: float
    ratings: tuple[int, ...]

    def weights(self) -> NDArray[np.float64]:
        """The normalised action mix over `ACTIONS` (`start` and `join` only open a life)."""
        raw = np.array([self.mix.get(a, self.floor) for a in ACTIONS], dtype=np.float64)
        raw[_INDEX["start"]] = 0.0
        raw[_INDEX["join"]] = 0.0
        normalised: NDArray[np.float64] = raw / raw.sum()
        return normalised

    def hour_weights(self) -> NDArray[np.float64]:
        """The local-hour rhythm: a mixture of narrow bumps around the peak hours."""
        hours = np.arange(24, dtype=np.float64)
        weights = np.full(24, 0.02)
        for peak in self.peak_hours:
            distance = np.minimum(np.abs(hours - peak), 24 - np.abs(hours - peak))
            weights += np.exp(-0.5 * (distance / 1.5) ** 2)
        normalised: NDArray[np.float64] = weights / weights.sum()
        return normalised

    def interests(self, top: int = 6) -> tuple[str, ...]:
        """The intents this type asks about most: pushes about them land best."""
        ranked = sorted((a for a in INTENT_ACTIONS if a in self.mix), key=lambda a: self.mix[a], reverse=True)
        return tuple(ranked[:top])


TYPES: tuple[TypeProfile, ...] = (
    TypeProfile(
        name="power_user",
        share=0.15,
        mix={
            "api_keys": 5, "rate_limits": 6, "models": 5, "fine_tuning": 5, "docs": 4,
            "bug_report": 3, "service_status": 3, "feature_request": 2, "billing": 1.5, "thanks": 1,
        },
        floor=0.15, zh_share=0.3, daily_active=0.55, sessions=1.8, session_length=3.2,
        peak_hours=(10, 15, 22), group_share=0.25, group_member=0.7, lifetime="steady",
        push_response=0.12, push_match_boost=3.0, natural_return=0.10, ratings=(4, 5, 3),
    ),
    TypeProfile(
        name="casual_asker",
        share=0.30,
        mix={
            "pricing": 5, "getting_started": 4, "account": 3, "billing": 3, "greet": 3,
            "thanks": 3, "goodbye": 2, "docs": 2, "data_privacy": 1.5, "out_of_scope": 1.5,
        },
        floor=0.1, zh_share=0.45, daily_active=0.12, sessions=1.1, session_length=2.2,
        peak_hours=(12, 20), group_share=0.05, group_member=0.2, lifetime="steady",
        push_response=0.10, push_match_boost=2.5, natural_return=0.06, ratings=(3, 4),
    ),
    TypeProfile(
        name="socialite",
        share=0.20,
        mix={
            "reaction": 8, "chatter": 7, "poll_answer": 5, "community_events": 5, "greet": 2,
            "thanks": 2, "feature_request": 1.5, "out_of_scope": 1.5,
        },
        floor=0.08, zh_share=0.35, daily_active=0.40, sessions=1.6, session_length=3.0,
        peak_hours=(19, 21), group_share=0.8, group_member=1.0, lifetime="steady",
        push_response=0.22, push_match_boost=2.0, natural_return=0.12, ratings=(5, 4),
    ),
    TypeProfile(
        name="newcomer",
        share=0.20,
        mix={
            "greet": 5, "getting_started": 7, "api_keys": 4, "pricing": 3, "docs": 3,
            "account": 2, "models": 1.5, "thanks": 2,
        },
        floor=0.1, zh_share=0.5, daily_active=0.45, sessions=1.3, session_length=2.6,
        peak_hours=(9, 14), group_share=0.1, group_member=0.4, lifetime="newcomer",
        push_response=0.30, push_match_boost=1.8, natural_return=0.05, ratings=(4, 3),
    ),
    TypeProfile(
        name="drifting",
        share=0.15,
        mix={
            "bug_report": 6, "service_status": 5, "human_handoff": 4, "billing": 3,
            "feedback": 3, "rate_limits": 2, "out_of_scope": 2, "goodbye": 2,
        },
        floor=0.1, zh_share=0.4, daily_active=0.30, sessions=1.2, session_length=2.4,
        peak_hours=(8, 17), group_share=0.15, group_member=0.3, lifetime="drifting",
        push_response=0.08, push_match_boost=2.0, natural_return=0.02, ratings=(1, 2, 3),
    ),
)  # fmt: skip


def type_named(name: str) -> TypeProfile:
    """The type called `name`.

    Raises:
        KeyError: naming the unknown type.
    """
    for profile in TYPES:
        if profile.name == name:
            return profile
    raise KeyError(f"unknown user type {name!r}; known: {[t.name for t in TYPES]}")


def action_index(name: str) -> int:
    """The position of an action in `ACTIONS`.

    Raises:
        KeyError: naming the unknown action.
    """
    try:
        return _INDEX[name]
    except KeyError:
        raise KeyError(f"unknown action {name!r}") from None


def transition_matrix(profile: TypeProfile) -> NDArray[np.float64]:
    """The type's Markov habits: next-action probabilities given the current action.

    Each row is the type's mix re-weighted towards the actions that habitually follow the
    current one, plus a little stickiness; so a first-order model learns real structure and
    a model that also sees the user's longer history can infer the type on top.
    """
    base = profile.weights()
    size = len(ACTIONS)
    matrix = np.empty((size, size), dtype=np.float64)
    for i, action in enumerate(ACTIONS):
        boost = np.ones(size)
        for follower in _AFFINITY.get(action, ()):
            boost[_INDEX[follower]] += AFFINITY_WEIGHT
        row = base * boost
        row /= row.sum()
        if action not in ("start", "join"):
            row = (1.0 - STICKINESS) * row
            row[i] += STICKINESS * (base[i] > 0)
        matrix[i] = row / row.sum()
    return matrix
