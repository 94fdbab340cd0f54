"""Who may be pushed when: the holdout, quiet hours in the user's zone, and segment thresholds.

Pure functions (no database, no clock), so the rules are unit-tested directly.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

HOLDOUT_SALT = "rapport-holdout-v1"
_BAD_ZONES: set[str] = set()


def holdout_bucket(user_id: int, *, salt: str = HOLDOUT_SALT) -> float:
    """A stable number in [0, 1) for the user: the same on every run, machine and Python."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(user_id: int, share: float, *, salt: str = HOLDOUT_SALT) -> bool:
    """Whether the user belongs to the global holdout, which never gets automated pushes."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"holdout share must lie in [0, 1], got {share}")
    return holdout_bucket(user_id, salt=salt) < share


def zone(name: str | None, default: str) -> ZoneInfo:
    """The user's zone; the default for unknown or invalid names (logged once per name)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            if name not in _BAD_ZONES:
                _BAD_ZONES.add(name)
                logger.warning("unknown time zone %r: using %s", name, default)
    return ZoneInfo(default)


def parse_hhmm(text: str) -> time:
    """`"10:00"` → 10:00; a clear error for anything else."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"expected a time as HH:MM, got {text!r}") from exc


@dataclass(frozen=True)
class QuietHours:
    """No automated pushes from `start` to `end` o'clock in the user's local time.

    `start > end` wraps midnight (22 → 8); `start == end` means no quiet hours.
    """

    start: int = 22
    end: int = 8
    default_timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not (0 <= self.start <= 23 and 0 <= self.end <= 23):
            raise ValueError(f"quiet hours must be hours 0-23, got {self.start}-{self.end}")
        zone(None, self.default_timezone)

    def _quiet_hour(self, hour: int) -> bool:
        if self.start == self.end:
            return False
        if self.start > self.end:
            return hour >= self.start or hour < self.end
        return self.start <= hour < self.end

    def allowed_hours(self) -> list[int]:
        """The local clock hours (0-23) in which pushes may be sent."""
        return [hour for hour in range(24) if not self._quiet_hour(hour)]

    def is_quiet(self, now: datetime, time_zone: str | None) -> bool:
        """Whether `now` falls in the user's quiet hours."""
        return self._quiet_hour(now.astimezone(zone(time_zone, self.default_timezone)).hour)

    def next_allowed(self, now: datetime, time_zone: str | None) -> datetime:
        """`now` if pushes are allowed; else the end of the quiet hours, in UTC.

        The end is built as a local wall time and converted, so a DST change in between is
        respected (08:00 stays 08:00 local on both sides of it).
        """
        tz = zone(time_zone, self.default_timezone)
        local = now.astimezone(tz)
        if not self._quiet_hour(local.hour):
            return now
        day = local.date()
        if self.start > self.end and local.hour >= self.start:
            day += timedelta(days=1)
        end = datetime(day.year, day.month, day.day, self.end, tzinfo=tz).astimezone(UTC)
        return max(end, now)


@dataclass(frozen=True)
class InactivityRule:
    """Days without activity after which a user is due re-engagement, per segment."""

    default_days: int = 7
    by_segment: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = {k: v for k, v in {"default": self.default_days, **self.by_segment}.items() if v < 1}
        if bad:
            raise ValueError(f"inactivity days must be >= 1, got {bad}")

    def days_for(self, segment: str | None) -> int:
        """The threshold of the user's segment (the default when unsegmented or not configured)."""
        return self.by_segment.get(segment, self.default_days) if segment else self.default_days

    @property
    def shortest(self) -> int:
        """The smallest threshold: users inactive for less can be ignored up front."""
        return min([self.default_days, *self.by_segment.values()])


def parse_segment_days(text: str) -> dict[str, int]:
    """`"power users=3, newcomers=14"` → {"power users": 3, "newcomers": 14}."""
    result: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, days = part.rpartition("=")
        if not sep or not name.strip() or not days.strip().isdigit():
            raise ValueError(f"expected 'segment=days', got {part.strip()!r}")
        result[name.strip()] = int(days)
    return result
