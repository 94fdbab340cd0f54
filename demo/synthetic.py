"""The simulator's population written straight into the store, sized by events per user.

Tests and benchmarks need a seeded history with known user types and a chosen volume; the
demo plays the same users through the bot. Both draw from `demo.simulation`: one set of
types (`TypeProfile`), one population (`make_population`), one generator (`iter_actions`)
and one row shape (`batch_rows`, via `write_history`). This module only picks the window
and the population's activity that give about `events_per_user` event rows a user.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from demo.simulation import Population, iter_actions, make_population, write_history
from demo.simulation.bulk import row_count

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_END",
    "SyntheticHistory",
    "activity_for",
    "populate",
    "synthetic_population",
]

logger = logging.getLogger(__name__)

DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
"""Where the synthetic window ends (analytics run `as_of` it)."""
DEFAULT_DAYS = 30
"""The window's length: the analytics' default feature window, so its frequency and trend
features see the whole life of every user, newcomers arriving and drifting users fading."""
_PILOT_USERS = 2_000
_PILOT_SEED = 1_000_003
_CLIP_WARNING = 1.5


@dataclass(frozen=True)
class SyntheticHistory:
    """What `populate` wrote: each user's true type (user id → type name) and the event count."""

    types: dict[int, str]
    n_events: int


@functools.cache
def _volume_line(days: int) -> tuple[float, float]:
    """Mean event rows a user at activity 0, and the rows one unit of activity adds.

    Below the clip at probability 1 the expected volume is linear in the activity (the
    join day is fixed, every other day scales), so two pilot runs of the real generator
    measure it once per window length.
    """
    start = DEFAULT_END - timedelta(days=days)
    means = []
    for activity in (0.0, 1.0):
        pilot = make_population(_PILOT_USERS, days=days, seed=_PILOT_SEED, activity=activity)
        rows = sum(row_count(batch) for batch in iter_actions(pilot, start=start))
        means.append(rows / _PILOT_USERS)
    return means[0], means[1] - means[0]


def activity_for(events_per_user: float | None, *, days: int = DEFAULT_DAYS) -> float:
    """The population activity at which users log about `events_per_user` event rows each.

    None means the types' own rates (activity 1: about 36 rows a user over 30 days). The
    floor is the one active day every user has (the day they first use the bot): a lower
    target gets activity 0 and a warning, not fewer users. Far above the types' own rates
    (activity beyond about 1.5) the busiest users are active every day and volumes fall
    short of the target.

    Raises:
        ValueError: if `events_per_user` is not a positive number.
    """
    if events_per_user is None:
        return 1.0
    if not events_per_user > 0:
        raise ValueError(f"events_per_user must be positive, got {events_per_user}")
    floor, slope = _volume_line(days)
    if events_per_user < floor:
        logger.warning("%.1f events a user is below one active day's %.1f", events_per_user, floor)
        return 0.0
    activity = (events_per_user - floor) / slope
    if activity > _CLIP_WARNING:
        logger.warning("%.1f events a user over %d days saturates the busiest users", events_per_user, days)
    return float(activity)


def synthetic_population(
    n_users: int,
    *,
    events_per_user: float | None = 20.0,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    first_user_id: int = 1,
) -> Population:
    """The simulator's population with ids from `first_user_id`, as active as the volume needs.

    Cheap (no events are drawn): `true_types()` of it is the ground truth of the history
    `populate` writes with the same arguments.
    """
    return make_population(
        n_users,
        days=days,
        seed=seed,
        first_user_id=first_user_id,
        activity=activity_for(events_per_user, days=days),
    )


def populate(
    engine: Engine,
    n_users: int,
    *,
    events_per_user: float | None = 20.0,
    end: datetime = DEFAULT_END,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    first_user_id: int = 1,
    progress: Callable[[int], None] | None = None,
) -> SyntheticHistory:
    """Write `days` days of a synthetic population's events, ending at `end`, into the store.

    Users log about `events_per_user` rows each (None: the types' own rates), every user
    is active on their first day. No profiles (language, time zone) are stored, so a
    million users take minutes, not hours. `progress` gets the users done after each chunk.
    """
    population = synthetic_population(
        n_users, events_per_user=events_per_user, days=days, seed=seed, first_user_id=first_user_id
    )
    report = write_history(
        engine, population, start=end - timedelta(days=days), profiles=False, progress=progress
    )
    types = population.true_types()
    logger.info(
        "synthetic history: %d users, %d events (%.1f a user)",
        n_users,
        report.events,
        report.events / n_users,
    )
    return SyntheticHistory(types=types, n_events=report.events)
