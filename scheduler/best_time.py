"""Best-time sends: each delivery due at its user's most promising hour within the next 24 hours.

The store counts each user's activity by local hour of the week (`store.send_times`),
`analytics.send_time` shrinks it toward the user's segment and the community (so a newcomer
with one event is scheduled by their segment, not by that event), and this module turns the
estimate into a `due_at`: a whole local hour outside quiet hours, not before the frequency cap
allows, within `within` of the planned time. The delivery engine needs nothing new: it sends a
row when its `due_at` passes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select
from sqlalchemy.orm import Session

from analytics.experiments import assign_arm
from analytics.send_time import DEFAULT_STRENGTH, HourProfile, best_send_time, build_profiles
from scheduler.policy import QuietHours, zone
from store import Settings
from store.analytics_results import current_segment_names
from store.send_times import group_hour_counts, user_hour_counts

__all__ = [
    "BEST_TIME",
    "FIXED",
    "SEND_AT_BEST",
    "SEND_AT_SPLIT",
    "SendTimeConfig",
    "best_due_at",
    "read_send_profiles",
    "send_time_arm",
]

logger = logging.getLogger(__name__)

BEST_TIME, FIXED = "best_time", "fixed"
"""The two arms of a send-time comparison, as written to `deliveries.variant`."""
SEND_AT_BEST, SEND_AT_SPLIT = "best_time", "best_time_vs_fixed"
"""Values of a campaign's `send_at` attribute (absent: every row at the planned time)."""
_ID_CHUNK = 5000


@dataclass(frozen=True)
class SendTimeConfig:
    """How best times are estimated and chosen.

    Attributes:
        quiet_hours: No send time falls inside them (in the user's zone).
        within: The window after the planned time in which the best hour is chosen.
        history_days: How much of the event log the estimate reads.
        strength: Pseudo-events of each prior (see `analytics.send_time`).
    """

    quiet_hours: QuietHours = field(default_factory=QuietHours)
    within: timedelta = timedelta(hours=24)
    history_days: int = 56
    strength: float = DEFAULT_STRENGTH

    def __post_init__(self) -> None:
        if self.within <= timedelta(0) or self.history_days < 1 or self.strength < 0:
            raise ValueError(f"need within > 0, history_days >= 1 and strength >= 0, got {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> SendTimeConfig:
        """Quiet hours and the default zone as the settings give them."""
        return cls(
            quiet_hours=QuietHours(
                settings.quiet_hours_start, settings.quiet_hours_end, settings.default_timezone
            )
        )


def read_send_profiles(
    session: Session,
    users: Select[Any] | Collection[int],
    zones: Mapping[int, str | None],
    *,
    now: datetime,
    config: SendTimeConfig,
    segments: Mapping[int, str] | None = None,
) -> dict[int, HourProfile]:
    """The hour profile of every user in `zones`, shrunk toward their segment's and everyone's.

    Three aggregated queries inside the caller's snapshot, whatever the number of users: the
    users' own counts (`users` as a subquery, or ids sent in chunks), the community's and
    segments' counts, and the current segment of each user. Users without recent activity get
    their segment's (or the community's) profile.

    Args:
        users: Whose counts to read: a subquery of ids, or the ids themselves.
        zones: Each user to profile, with their stored time zone (None or invalid: the default).
        segments: Each user's current segment, when the caller has read it already.
    """
    default = config.quiet_hours.default_timezone
    since = now - timedelta(days=config.history_days)
    if isinstance(users, Select):
        counts = user_hour_counts(session, users, since=since, default_timezone=default)
    else:
        ids = sorted(set(users))
        counts = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            counts.update(user_hour_counts(session, chunk, since=since, default_timezone=default))
    groups = group_hour_counts(session, since=since, default_timezone=default)
    if segments is None:
        segments = current_segment_names(session)
    empty = np.zeros(168)
    arrays = {user: np.asarray(counts[user], dtype=np.float64) if user in counts else empty for user in zones}
    return build_profiles(
        arrays,
        {user: zone(name, default).key for user, name in zones.items()},
        {user: segments.get(user) for user in zones},
        strength=config.strength,
        segment_counts={name: np.asarray(row, dtype=np.float64) for name, row in groups.by_segment.items()},
        community_counts=np.asarray(groups.community, dtype=np.float64),
    )


def best_due_at(
    profile: HourProfile | None,
    now: datetime,
    time_zone: str | None,
    config: SendTimeConfig,
    *,
    not_before: datetime | None = None,
) -> datetime:
    """When to send: the user's best allowed hour in (`now`, `now` + `within`], as UTC.

    Quiet hours (in the user's zone) and `not_before` (the end of a frequency cap) always hold:
    when the window leaves no allowed hour after `not_before`, the first allowed moment after it
    is used. Without a profile, the first allowed moment.
    """
    quiet = config.quiet_hours
    start = now if not_before is None else max(now, not_before)
    remaining = config.within - (start - now)
    if profile is None or remaining <= timedelta(0):
        return quiet.next_allowed(start, time_zone)
    when = best_send_time(profile, start, within=remaining, allowed_hours=quiet.allowed_hours())
    return quiet.next_allowed(when, time_zone)


def send_time_arm(campaign_key: str, user_id: int) -> str:
    """`best_time` or `fixed` for a user of a send-time comparison: half each, by stable hash."""
    return assign_arm(f"send-time:{campaign_key}", user_id, {BEST_TIME: 1.0, FIXED: 1.0})
