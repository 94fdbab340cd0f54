"""What simulated users do, day by day: sessions of Markov-chained actions, generated in bulk.

Generation is vectorised with numpy over a chunk of users at a time, so the same code
feeds the 300-user demo (played through the real bot) and the million-user benchmark
(written straight into the store).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from demo.simulation.behaviour import ACTIONS, GROUP_ONLY, TYPES, action_index, transition_matrix
from demo.simulation.errors import SimulationConfigError
from demo.simulation.population import Population

__all__ = ["DEFAULT_CHUNK_USERS", "ActionBatch", "activity_matrix", "iter_actions"]

DEFAULT_CHUNK_USERS = 10_000
MAX_SESSION_LENGTH = 15
_DAY = 86_400
_START = action_index("start")
_JOIN = action_index("join")
_FEEDBACK = action_index("feedback")
_GROUP_ONLY_MASK = np.array([a in GROUP_ONLY for a in ACTIONS])
_TOP_INTEREST = np.array([action_index(t.interests(top=1)[0]) for t in TYPES])
_NEWCOMER_FADE_DAYS = 20.0
_DRIFT_FADE_DAYS = 4.0


@dataclass(frozen=True)
class ActionBatch:
    """Actions of a chunk of users, sorted by user then time.

    Attributes:
        row: The user's row in the `Population`.
        ts: Unix time in seconds.
        action: Index into `ACTIONS`.
        in_group: Whether the action happens in the community group (else in private).
        rating: The feedback rating for `feedback` actions, else 0.
    """

    row: NDArray[np.int64]
    ts: NDArray[np.int64]
    action: NDArray[np.int8]
    in_group: NDArray[np.bool_]
    rating: NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.row.shape[0])

    def select(self, mask: NDArray[np.bool_]) -> ActionBatch:
        """The actions where `mask` is true, in the same order."""
        return ActionBatch(
            self.row[mask], self.ts[mask], self.action[mask], self.in_group[mask], self.rating[mask]
        )


def activity_matrix(population: Population, rows: slice, rng: np.random.Generator) -> NDArray[np.float64]:
    """Probability that each user of `rows` is active on each day of the window.

    Steady users keep their type's rate (times a personal factor, so volumes spread within
    a type); newcomers start on their join day and fade; drifting users stop at churn. The
    population's `activity` scales every day's probability but the join day's: everyone is
    active on the day they first use the bot, however quiet the population.
    """
    types = population.type_index[rows].astype(np.int64)
    n = types.shape[0]
    days = np.arange(population.days, dtype=np.float64)[None, :]
    base = np.array([t.daily_active for t in TYPES])[types] * rng.lognormal(0.0, 0.35, size=n)
    prob = np.repeat(base[:, None], population.days, axis=1)
    join = population.join_day[rows].astype(np.float64)[:, None]
    since_join = days - join
    newcomer = np.array([t.lifetime == "newcomer" for t in TYPES])[types][:, None]
    fade = np.exp(-np.clip(since_join, 0, None) / _NEWCOMER_FADE_DAYS)
    prob = np.where(newcomer, np.maximum(prob * fade, 0.03), prob)
    prob = np.where(since_join < 0, 0.0, prob)
    churn = population.churn_day[rows].astype(np.float64)[:, None]
    drifting = churn >= 0
    returning = np.array([t.natural_return for t in TYPES])[types][:, None]
    drift = np.maximum(prob * np.exp(-np.clip(days - churn, 0, None) / _DRIFT_FADE_DAYS), returning)
    prob = np.where(drifting & (days >= churn), drift, prob)
    prob = np.clip(prob * population.activity, 0.0, 1.0)
    return np.where(since_join == 0, 1.0, prob)


def _chunk(population: Population, rows: slice, start_ts: int, rng: np.random.Generator) -> ActionBatch:
    first = rows.start
    types_all = population.type_index[rows].astype(np.int64)
    n = types_all.shape[0]
    active = rng.random((n, population.days)) < activity_matrix(population, rows, rng)
    user_local, day = np.nonzero(active)
    session_mean = np.array([t.sessions for t in TYPES])[types_all[user_local]]
    per_day = 1 + rng.poisson(np.maximum(session_mean - 1.0, 0.0))
    s_user = np.repeat(user_local, per_day)
    s_day = np.repeat(day, per_day)
    s_type = types_all[s_user]
    n_sessions = s_user.shape[0]
    hour_cdf = np.cumsum(np.stack([t.hour_weights() for t in TYPES]), axis=1)
    local_hour = (hour_cdf[s_type] < rng.random(n_sessions)[:, None]).sum(axis=1)
    # Sessions of one user and day in time order (sessions are already grouped by user, day).
    second = local_hour * 3600 + rng.integers(0, 3600, n_sessions)
    second = second[np.lexsort((second, s_day, s_user))]
    offset = population.utc_offset_h[rows].astype(np.int64)[s_user]
    end_ts = start_ts + population.days * _DAY
    s_ts = np.clip(start_ts + s_day * _DAY + second - offset * 3600, start_ts, end_ts - 3600)
    length_mean = np.array([t.session_length for t in TYPES])[s_type]
    length = np.minimum(1 + rng.poisson(length_mean - 1.0), MAX_SESSION_LENGTH)
    # The first session on a newcomer's join day opens with /start (and a group join).
    join_day = population.join_day[rows].astype(np.int64)[s_user]
    newcomer = np.array([t.lifetime == "newcomer" for t in TYPES])[s_type]
    first_of_day = np.r_[True, (s_user[1:] != s_user[:-1]) | (s_day[1:] != s_day[:-1])]
    debut = first_of_day & (s_day == join_day)
    opening = newcomer & debut
    cum = np.cumsum(np.stack([transition_matrix(t) for t in TYPES]), axis=2)
    mix_cdf = np.cumsum(np.stack([t.weights() for t in TYPES]), axis=1)
    steps = np.zeros((n_sessions, MAX_SESSION_LENGTH + 1), dtype=np.int64)
    first_action = (mix_cdf[s_type] < rng.random(n_sessions)[:, None]).sum(axis=1)
    steps[:, 0] = np.where(opening, _START, first_action)
    # Everyone's first session starts with something they can do, so every user is in the
    # log: a group-only first action of a non-member becomes their type's top interest.
    shut_out = debut & ~population.in_group[rows][s_user] & _GROUP_ONLY_MASK[steps[:, 0]]
    steps[:, 0] = np.where(shut_out, _TOP_INTEREST[s_type], steps[:, 0])
    length = length + opening
    for k in range(1, MAX_SESSION_LENGTH + 1):
        rows_cdf = cum[s_type, steps[:, k - 1]]
        steps[:, k] = (rows_cdf < rng.random(n_sessions)[:, None]).sum(axis=1)
    steps = np.minimum(steps, len(ACTIONS) - 1)
    gaps = 20 + rng.exponential(90.0, size=steps.shape).astype(np.int64)
    gaps[:, 0] = 0
    offsets = np.cumsum(gaps, axis=1)
    keep = np.arange(MAX_SESSION_LENGTH + 1)[None, :] < length[:, None]
    e_session = np.nonzero(keep)[0]
    e_action = steps[keep]
    e_ts = s_ts[e_session] + offsets[keep]
    e_user = s_user[e_session]
    in_group_user = population.in_group[rows][e_user]
    group_share = np.array([t.group_share for t in TYPES])[types_all[e_user]]
    in_group = _GROUP_ONLY_MASK[e_action] | (
        in_group_user
        & (e_action != _START)
        & (e_action != _FEEDBACK)
        & (rng.random(e_ts.shape[0]) < group_share)
    )
    # Newcomers who are group members join it right after /start.
    joins = opening[e_session] & (e_action == _START) & in_group_user
    valid = (in_group_user | ~_GROUP_ONLY_MASK[e_action]) & (e_action != _JOIN)
    valid &= e_ts < end_ts
    user = np.concatenate([e_user[valid], e_user[joins & valid]])
    ts = np.concatenate([e_ts[valid], e_ts[joins & valid] + 5])
    action = np.concatenate([e_action[valid], np.full(int((joins & valid).sum()), _JOIN)])
    group = np.concatenate([in_group[valid], np.ones(int((joins & valid).sum()), dtype=bool)])
    ratings_by_type = [np.array(t.ratings) for t in TYPES]
    rating = np.zeros(user.shape[0], dtype=np.int8)
    fb = np.nonzero(action == _FEEDBACK)[0]
    for k, choices in enumerate(ratings_by_type):
        of_type = fb[types_all[user[fb]] == k]
        rating[of_type] = rng.choice(choices, size=of_type.shape[0])
    order = np.lexsort((ts, user))
    return ActionBatch(
        row=(user[order] + first).astype(np.int64),
        ts=ts[order].astype(np.int64),
        action=action[order].astype(np.int8),
        in_group=group[order],
        rating=rating[order],
    )


def iter_actions(
    population: Population, *, start: datetime, chunk_users: int = DEFAULT_CHUNK_USERS
) -> Iterator[ActionBatch]:
    """Yield every user's actions over the window `[start, start + population.days)`.

    Chunks are independent given the population's seed and `chunk_users`, so the stream is
    deterministic and never holds more than one chunk's events in memory.

    Raises:
        SimulationConfigError: if `start` is naive or `chunk_users` is not positive.
    """
    if start.tzinfo is None:
        raise SimulationConfigError(f"start must be timezone-aware, got {start!r}")
    if chunk_users <= 0:
        raise SimulationConfigError(f"chunk_users must be positive, got {chunk_users}")
    start_ts = int(start.timestamp())
    for number, first in enumerate(range(0, len(population), chunk_users)):
        rng = np.random.default_rng([population.seed, 2, number])
        yield _chunk(population, slice(first, min(first + chunk_users, len(population))), start_ts, rng)
