"""The numbers a report shows a manager, computed apart from the charts so they can be tested.

A report is read by community managers, not data scientists, so every figure here comes with
what keeps it from misleading: group sizes and an interval with the uplift, a colour scale an
outlier cannot flatten, a mark on cohorts too small to read, the partial buckets of a
time series, rules that only restate how segments were made, and a sentence per metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.experiments import newcombe_interval, wilson_interval

SMALL_COHORT = 20
"""Cohorts with fewer users than this are marked, not coloured like a big one."""
CLIP_PERCENTILE = 95.0
"""Colour scales stop at this percentile of the cells, so one busy hour cannot wash out the week."""
SEGMENT_PREFIX = "segment:"

GLOSSARY: dict[str, str] = {
    "HR@1": "how often the model's single best guess of a user's next action was right.",
    "HR@5": "how often the user's next action was among the model's top 5 guesses.",
    "HR@10": "how often the user's next action was among the model's top 10 guesses "
    "(0.60 means 6 times out of 10); higher is better.",
    "MRR": "how high the right answer sat in the model's list on average: 1.0 means always "
    "first, 0.5 means typically second.",
    "NDCG": "like MRR, but gives partial credit to right answers further down the list.",
    "ARI": "how well the segments found match the simulated user types: 1 is a perfect match, "
    "0 is no better than chance.",
    "silhouette": "how clearly users sit in their own segment rather than a neighbouring one, "
    "from −1 to 1; above 0.25 the segments are reasonably distinct.",
    "Calinski–Harabasz": "how far apart segments are compared with how spread out each one is; "
    "only useful to compare segmentings of the same users (higher is better).",
    "Davies–Bouldin": "how much segments overlap with their closest neighbour; lower is better.",
    "PCA": "a flat picture of users described by many numbers: users close together behave "
    "alike; the axes themselves have no business meaning.",
    "support": "the share of all users for whom the whole rule holds.",
    "confidence": "of the users who match the 'if' part, the share who also match the 'then' part.",
    "lift": "how many times more likely the 'then' part is for users matching the 'if' part than "
    "for users in general; 1 means no link.",
    "leverage": "how many more users (as a share of all) match both parts than if the parts were unrelated.",
    "conviction": "how much more often the rule would be wrong if the parts were unrelated; "
    "∞ means it is never wrong in this data.",
    "DAU/WAU/MAU": "distinct users active in a day, a week and a 30-day month.",
}


def glossary_sentence(term: str) -> str:
    """`term: what it means`, one sentence for the manager (KeyError for an unknown term)."""
    return f"{term}: {GLOSSARY[term]}"


@dataclass(frozen=True)
class Uplift:
    """Pushed vs holdout return rates, their difference and its 95% interval, in points."""

    pushed: int
    pushed_returned: int
    holdout: int
    holdout_returned: int
    low: float | None  # difference interval bounds as proportions; None when a group is empty
    high: float | None

    @property
    def pushed_rate(self) -> float | None:
        """Share of pushed users who returned."""
        return self.pushed_returned / self.pushed if self.pushed else None

    @property
    def holdout_rate(self) -> float | None:
        """Share of held-out users who returned on their own."""
        return self.holdout_returned / self.holdout if self.holdout else None

    @property
    def difference(self) -> float | None:
        """Pushed rate minus holdout rate (None when a group is empty)."""
        if self.pushed_rate is None or self.holdout_rate is None:
            return None
        return self.pushed_rate - self.holdout_rate

    @property
    def significant(self) -> bool:
        """True when the 95% interval of the difference lies entirely above or below zero."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def sentence(self) -> str:
        """The comparison in words, with sizes, interval and whether it is significant."""
        if self.difference is None or self.low is None or self.high is None:
            return (
                f"Pushed vs holdout cannot be compared: {self.pushed} pushed and {self.holdout} "
                "held-out users (both groups need users)."
            )
        assert self.pushed_rate is not None and self.holdout_rate is not None
        head = (
            f"Returned: pushed {self.pushed_rate:.0%} ({self.pushed_returned} of {self.pushed}) vs "
            f"holdout {self.holdout_rate:.0%} ({self.holdout_returned} of {self.holdout}); "
            f"difference {points(self.difference)} points, 95% interval "
            f"{points(self.low)} to {points(self.high)} points."
        )
        if self.significant:
            direction = "more" if self.difference > 0 else "fewer"
            return f"{head} Significant: pushed users returned {direction} often than the holdout."
        return (
            f"{head} Not significant: the interval includes zero, so with groups this small the "
            "push may have helped, done nothing or hurt; more users are needed to tell."
        )


def points(share: float) -> str:
    """A difference of proportions in percentage points, signed, with a true minus: `−8`, `+31`.

    Under one point it keeps a decimal (`+0.3`), so an interval that only just excludes zero
    does not print as "0 to +38" beside the word "Significant".
    """
    value = 100 * share
    text = f"{abs(value):.1f}" if 0 < abs(value) < 0.95 else f"{round(abs(value))}"
    if text in ("0", "0.0"):
        return "0"
    return f"+{text}" if value > 0 else f"−{text}"


def uplift(pushed_returned: int, pushed: int, holdout_returned: int, holdout: int) -> Uplift:
    """Pushed vs holdout returns with the Newcombe interval of the difference.

    Raises:
        ValueError: for counts outside 0 <= returned <= group size.
    """
    for returned, n in ((pushed_returned, pushed), (holdout_returned, holdout)):
        if n < 0 or not 0 <= returned <= n:
            raise ValueError(f"need 0 <= returned <= group size, got {returned}/{n}")
    if pushed == 0 or holdout == 0:
        return Uplift(pushed, pushed_returned, holdout, holdout_returned, None, None)
    low, high = newcombe_interval(pushed_returned, pushed, holdout_returned, holdout)
    return Uplift(pushed, pushed_returned, holdout, holdout_returned, low, high)


def rate_error(returned: int, n: int) -> tuple[float, float]:
    """(below, above) the rate to its Wilson 95% bounds, for error bars; (0, 0) for an empty group."""
    if n == 0:
        return 0.0, 0.0
    low, high = wilson_interval(returned, n)
    rate = returned / n
    return max(0.0, rate - low), max(0.0, high - rate)


@dataclass(frozen=True)
class ClippedScale:
    """A colour scale's top and how many cells lie above it (drawn in the top colour)."""

    vmax: float
    clipped: int
    percentile: float

    def caption(self) -> str:
        """What the reader must know about the scale."""
        if not self.clipped:
            return "Colour scale: zero to the busiest cell."
        return (
            f"Colour scale stops at the {self.percentile:g}th percentile ({self.vmax:.0f}); "
            f"{self.clipped} busier cell(s) show in the top colour with their count written in, "
            "so one outlier does not wash out the rest of the week."
        )


def clipped_scale(values: np.ndarray, *, percentile: float = CLIP_PERCENTILE) -> ClippedScale:
    """The colour scale's top at `percentile` of the finite cells (at least 1)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ClippedScale(1.0, 0, percentile)
    vmax = max(float(np.percentile(finite, percentile)), 1.0)
    if vmax >= float(finite.max()):
        return ClippedScale(float(max(finite.max(), 1.0)), 0, percentile)
    return ClippedScale(vmax, int((finite > vmax).sum()), percentile)


def small_cohorts(sizes: pd.Series, *, minimum: int = SMALL_COHORT) -> list[str]:
    """Labels of cohorts with fewer than `minimum` users, whose shares are too noisy to read."""
    return [str(label) for label, n in sizes.items() if int(n) < minimum]


def cohort_label(label: str, size: int, *, minimum: int = SMALL_COHORT) -> str:
    """`2026-11-02 (n=34)`, with a warning when the cohort is too small to read."""
    text = f"{label} (n={size})"
    return f"{text} too few" if size < minimum else text


def complete_buckets(
    frame: pd.DataFrame, *, period_days: int, first: datetime, until: datetime
) -> tuple[pd.DataFrame, int]:
    """Drop buckets not wholly inside (first day with data, until): the series' artefacts.

    A weekly bucket that starts before the first event, or a day that ends after `until`, counts
    only part of its users, so the line would ramp up at the start and dip at the end. The first
    recorded day itself goes too: it is when logging began, and every member active around then
    shows up on it at once (the demo's history starts everyone on that day).
    `frame` has a `start` column (bucket start, UTC midnight). Returns the kept rows and how
    many were dropped.
    """
    if frame.empty:
        return frame, 0
    start = pd.to_datetime(frame["start"], utc=True)
    first_day = pd.Timestamp(first).tz_convert("UTC").floor("D")
    end = start + pd.Timedelta(days=period_days)
    keep = (start > first_day) & (end <= pd.Timestamp(until).tz_convert("UTC"))
    return frame.loc[keep.to_numpy()].reset_index(drop=True), int((~keep).sum())


def membership_rules(rules: pd.DataFrame) -> pd.Series:
    """True for rules that only restate segment membership.

    Segments are made from the same behaviour the baskets hold, so a rule ending in a segment
    ("users who … also are in 'Drifting away'"), or one from a segment to what defines it
    at 100% confidence, tells a manager nothing new. Columns: antecedents, consequents
    (comma-joined item names) and confidence.
    """
    if rules.empty:
        return pd.Series([], dtype=bool)

    def items(text: str) -> list[str]:
        return [i.strip() for i in str(text).split(",") if i.strip()]

    then_segment = rules["consequents"].map(
        lambda text: bool(items(text)) and all(i.startswith(SEGMENT_PREFIX) for i in items(text))
    )
    from_segment = rules["antecedents"].map(
        lambda text: any(i.startswith(SEGMENT_PREFIX) for i in items(text))
    )
    certain = rules["confidence"].astype(float) >= 0.999
    return (then_segment | (from_segment & certain)).astype(bool)


def conviction_text(conviction: float | None, confidence: float) -> str:
    """Conviction for a table: ∞ when the rule never fails (confidence 1), never NaN."""
    if conviction is None or not math.isfinite(conviction):
        return "∞" if confidence >= 0.999 or conviction == math.inf else "–"
    return f"{conviction:.2f}"


def integer_columns(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """The frame with `names` (those present) as nullable integers, so counts print as 12, not 12.0."""
    out = frame.copy()
    for name in names:
        if name in out.columns:
            out[name] = pd.to_numeric(out[name], errors="coerce").round().astype("Int64")
    return out


def window_start(days: Sequence[pd.Timestamp], fallback: datetime) -> datetime:
    """The first day with data in a DAU series (the fallback when it is empty)."""
    if len(days) == 0:
        return fallback
    first: datetime = pd.Timestamp(min(days)).to_pydatetime()
    return first
