"""Send-time optimisation: each user's best hour of the week, shrunk toward their segment and the community.

A user with three events has no reliable "best hour": the raw argmax of their histogram is mostly
noise. So each user's activity by hour of the week (in their own time zone, DST included) is
smoothed over neighbouring hours and combined with a prior, as a Dirichlet posterior mean:

    p_user = (counts_user + strength · p_segment) / (n_user + strength)
    p_segment = (counts_segment + strength · p_community) / (n_segment + strength)

`strength` is the prior's weight in pseudo-events: a user with many more events than that is
scheduled by their own rhythm, a newcomer by their segment's. Pure functions: the scheduler reads the
timestamps, this module decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "HOURS_PER_WEEK",
    "HourProfile",
    "best_send_time",
    "build_profiles",
    "hour_of_week",
    "hourly_counts",
]

HOURS_PER_WEEK = 168
DEFAULT_STRENGTH = 10.0
"""Pseudo-events of the prior: a user needs about this many events before their own rhythm dominates."""
_KERNEL = np.array([0.25, 0.5, 1.0, 0.5, 0.25])
"""Neighbouring hours share evidence: someone active at 19:00 is likely reachable at 18:00 and 20:00."""

FloatArray = NDArray[np.float64]


def hour_of_week(ts: datetime, zone: ZoneInfo) -> int:
    """0 = Monday 00:00–00:59 local time … 167 = Sunday 23:00–23:59 (DST applied by the zone).

    Raises:
        ValueError: for a naive timestamp (its instant is unknown).
    """
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no time zone")
    local = ts.astimezone(zone)
    return local.weekday() * 24 + local.hour


def hourly_counts(timestamps: Iterable[datetime], zone: ZoneInfo) -> FloatArray:
    """A user's events by local hour of the week."""
    counts = np.zeros(HOURS_PER_WEEK)
    for ts in timestamps:
        counts[hour_of_week(ts, zone)] += 1.0
    return counts


def _smooth(counts: FloatArray) -> FloatArray:
    """Circular smoothing over neighbouring hours; keeps the total number of events."""
    half = len(_KERNEL) // 2
    padded = np.concatenate([counts[-half:], counts, counts[:half]])
    smoothed = np.convolve(padded, _KERNEL / _KERNEL.sum(), mode="valid")
    return np.asarray(smoothed, dtype=np.float64)


def _posterior(counts: FloatArray, prior: FloatArray, strength: float) -> FloatArray:
    total = float(counts.sum())
    return np.asarray((_smooth(counts) + strength * prior) / (total + strength), dtype=np.float64)


@dataclass(frozen=True)
class HourProfile:
    """A user's estimated probability of being active in each local hour of the week."""

    user_id: int
    zone: str
    probabilities: FloatArray
    events: int

    @property
    def best_hour(self) -> int:
        """The hour of the week with the highest estimate."""
        return int(np.argmax(self.probabilities))


def build_profiles(
    counts: Mapping[int, FloatArray],
    zones: Mapping[int, str],
    segments: Mapping[int, str | None],
    *,
    strength: float = DEFAULT_STRENGTH,
    segment_counts: Mapping[str, FloatArray] | None = None,
    community_counts: FloatArray | None = None,
) -> dict[int, HourProfile]:
    """Every user's profile, shrunk toward their segment's, which is shrunk toward the community's.

    Args:
        counts: Each user's `hourly_counts` in their own zone.
        zones: Each user's IANA zone name (used by `best_send_time`; the counts are already local).
        segments: Each user's segment (None: shrunk toward the community directly).
        strength: Pseudo-events of each prior.
        segment_counts: Each segment's local hourly counts over all its members, when the caller
            profiles only some users (a broadcast's recipients) against everyone's priors; by
            default the segments' totals over `counts`.
        community_counts: The community's local hourly counts; by default the total of `counts`.

    Raises:
        ValueError: for a negative strength or a histogram of the wrong length.
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    for user_id, row in counts.items():
        if row.shape != (HOURS_PER_WEEK,):
            raise ValueError(f"user {user_id}: expected {HOURS_PER_WEEK} hourly counts, got {row.shape}")
    uniform = np.full(HOURS_PER_WEEK, 1.0 / HOURS_PER_WEEK)
    if community_counts is None:
        community_counts = sum(counts.values(), np.zeros(HOURS_PER_WEEK))
    community = _posterior(np.asarray(community_counts, dtype=np.float64), uniform, strength)
    by_segment: dict[str, FloatArray] = {}
    if segment_counts is not None:
        by_segment = {name: np.asarray(row, dtype=np.float64) for name, row in segment_counts.items()}
    else:
        for user_id, row in counts.items():
            segment = segments.get(user_id)
            if segment is not None:
                by_segment[segment] = by_segment.get(segment, np.zeros(HOURS_PER_WEEK)) + row
    segment_priors = {name: _posterior(total, community, strength) for name, total in by_segment.items()}
    profiles = {}
    for user_id, row in counts.items():
        segment = segments.get(user_id)
        prior = segment_priors.get(segment, community) if segment is not None else community
        profiles[user_id] = HourProfile(
            user_id, zones.get(user_id, "UTC"), _posterior(row, prior, strength), int(row.sum())
        )
    return profiles


def best_send_time(
    profile: HourProfile,
    now: datetime,
    *,
    within: timedelta = timedelta(hours=24),
    allowed_hours: Sequence[int] | None = None,
) -> datetime:
    """The start of the most promising local hour within `within` of `now`, as an aware UTC time.

    Candidates are the whole hours starting after `now` (the current hour counts as `now` itself),
    in the user's zone, so a DST change inside the window is handled by the zone. `allowed_hours`
    (local clock hours 0–23) removes quiet hours; when it removes every candidate, `now` is returned
    and the caller's own quiet-hour rule decides.
    """
    if now.tzinfo is None:
        raise ValueError(f"now {now.isoformat()} has no time zone")
    zone = ZoneInfo(profile.zone)
    allowed = set(range(24) if allowed_hours is None else allowed_hours)
    start = now.astimezone(UTC)
    candidates = [start]
    top_of_hour = start.replace(minute=0, second=0, microsecond=0)
    step = top_of_hour + timedelta(hours=1)
    while step < start + within:
        candidates.append(step)
        step += timedelta(hours=1)
    scored = [
        (profile.probabilities[hour_of_week(moment, zone)], -index, moment)
        for index, moment in enumerate(candidates)
        if moment.astimezone(zone).hour in allowed
    ]
    if not scored:
        return start
    return max(scored)[2]
