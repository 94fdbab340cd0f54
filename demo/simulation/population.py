"""A seeded population of simulated users with hidden behavioural types, stored by column."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from demo.simulation.behaviour import TYPES, TypeProfile
from demo.simulation.errors import SimulationConfigError

__all__ = ["FIRST_USER_ID", "Persona", "Population", "make_population"]

FIRST_USER_ID = 700_000_001
_UTC_OFFSETS_EN = np.array([-8, -5, -5, 0, 0, 1, 1, 2, 5, 10])
_UTC_OFFSETS_ZH = np.array([8, 8, 8, 8, 9])
_NAMES_EN = ("Ana", "Ben", "Chloe", "Dev", "Ella", "Finn", "Gia", "Hugo", "Ivy", "Jay", "Kai", "Lena")
_NAMES_ZH = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "婷")


@dataclass(frozen=True)
class Persona:
    """One simulated user, as the driver and tests see them.

    Attributes:
        id: Telegram user id.
        type: The hidden type's name (never shown to the bot).
        language: `en` or `zh` (also the Telegram `language_code`).
        utc_offset_h: Offset of their local time from UTC, in hours.
        first_name: Display name.
        username: Telegram username.
        join_day: First day (from the window start) they use the bot.
        churn_day: Day from which a drifting user fades out, else None.
        in_group: Whether they are a member of the community group.
    """

    id: int
    type: str
    language: str
    utc_offset_h: int
    first_name: str
    username: str
    join_day: int
    churn_day: int | None
    in_group: bool

    @property
    def profile(self) -> TypeProfile:
        """The hidden type's parameters."""
        return next(t for t in TYPES if t.name == self.type)


@dataclass(frozen=True)
class Population:
    """Users by column, so a million of them fit in a few tens of megabytes.

    Row `i` is one user; `type_index` points into `TYPES`. `churn_day` is -1 for users who
    do not drift away. `activity` scales every user's daily probability of being active
    (except on the day they first use the bot), so one population can log fewer or more
    events per user without changing who its users are.
    """

    ids: NDArray[np.int64]
    type_index: NDArray[np.int8]
    is_zh: NDArray[np.bool_]
    utc_offset_h: NDArray[np.int8]
    join_day: NDArray[np.int16]
    churn_day: NDArray[np.int16]
    in_group: NDArray[np.bool_]
    days: int
    seed: int
    activity: float = 1.0

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def persona(self, row: int) -> Persona:
        """The user at `row` as a `Persona`."""
        user_id = int(self.ids[row])
        zh = bool(self.is_zh[row])
        names = _NAMES_ZH if zh else _NAMES_EN
        churn = int(self.churn_day[row])
        return Persona(
            id=user_id,
            type=TYPES[int(self.type_index[row])].name,
            language="zh" if zh else "en",
            utc_offset_h=int(self.utc_offset_h[row]),
            first_name=names[user_id % len(names)],
            username=f"sim{user_id}",
            join_day=int(self.join_day[row]),
            churn_day=churn if churn >= 0 else None,
            in_group=bool(self.in_group[row]),
        )

    def personas(self) -> list[Persona]:
        """Every user as a `Persona` (for demo-sized populations)."""
        return [self.persona(i) for i in range(len(self))]

    def true_types(self) -> dict[int, str]:
        """User id → hidden type name: the ground truth segments are scored against."""
        names = [t.name for t in TYPES]
        return {int(u): names[int(k)] for u, k in zip(self.ids, self.type_index, strict=True)}

    def type_counts(self) -> dict[str, int]:
        """How many users of each type."""
        counts = np.bincount(self.type_index.astype(np.int64), minlength=len(TYPES))
        return {t.name: int(c) for t, c in zip(TYPES, counts, strict=True)}


def make_population(
    n_users: int,
    *,
    days: int = 60,
    seed: int = 0,
    first_user_id: int = FIRST_USER_ID,
    activity: float = 1.0,
) -> Population:
    """Draw `n_users` users with hidden types for a window of `days` days.

    Types are drawn by their shares; newcomers join during the window (mostly in its second
    half, so some are still new at the end), everyone else was already around; drifting users
    fade out from a day in the first two thirds of the window. `activity` scales how often
    they are active (1.0: the types' own rates) and changes nothing else that is drawn.

    Raises:
        SimulationConfigError: if `n_users` or `days` is not positive, or `activity` is
            negative or not finite.
    """
    if n_users <= 0:
        raise SimulationConfigError(f"n_users must be positive, got {n_users}")
    if days <= 0:
        raise SimulationConfigError(f"days must be positive, got {days}")
    if not math.isfinite(activity) or activity < 0:
        raise SimulationConfigError(f"activity must be a finite number >= 0, got {activity}")
    rng = np.random.default_rng([seed, 1])
    shares = np.array([t.share for t in TYPES])
    type_index = rng.choice(len(TYPES), size=n_users, p=shares / shares.sum()).astype(np.int8)
    zh_share = np.array([t.zh_share for t in TYPES])[type_index]
    is_zh = rng.random(n_users) < zh_share
    offsets = np.where(
        is_zh,
        rng.choice(_UTC_OFFSETS_ZH, size=n_users),
        rng.choice(_UTC_OFFSETS_EN, size=n_users),
    ).astype(np.int8)
    lifetimes = np.array([t.lifetime for t in TYPES])[type_index]
    newcomer = lifetimes == "newcomer"
    drifting = lifetimes == "drifting"
    join_day = np.zeros(n_users, dtype=np.int16)
    late = np.clip(rng.beta(2.0, 1.2, size=n_users) * days, 0, days - 1)
    join_day[newcomer] = late[newcomer].astype(np.int16)
    churn_day = np.full(n_users, -1, dtype=np.int16)
    churn = rng.uniform(0.15, 0.65, size=n_users) * days
    churn_day[drifting] = churn[drifting].astype(np.int16)
    in_group = rng.random(n_users) < np.array([t.group_member for t in TYPES])[type_index]
    return Population(
        ids=np.arange(first_user_id, first_user_id + n_users, dtype=np.int64),
        type_index=type_index,
        is_zh=is_zh,
        utc_offset_h=offsets,
        join_day=join_day,
        churn_day=churn_day,
        in_group=in_group,
        days=days,
        seed=seed,
        activity=activity,
    )
