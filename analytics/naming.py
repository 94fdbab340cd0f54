"""Human names and one-line descriptions for segments, and stable names across runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.traits import AGE_PREFIX, CATEGORY_PREFIX, NUMERIC_PREFIX, is_trait_column, trait_of

logger = logging.getLogger(__name__)

PROFILE_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "active_days",
    "tenure_days",
    "activity_trend",
    "messages",
    "questions",
    "fallback_rate",
    "mean_rating",
    "community_actions",
    "community_share",
    "push_response_rate",
    "rfm_score",
)
MATCH_MIN_JACCARD = 0.5
NEW_DAYS = 14
"""A segment first seen this recently is new whatever the rest of the population."""
NEWISH_DAYS = 30
"""Up to this tenure a segment is new when it is also at most half the population's tenure."""
DECLINING_TREND = -0.5
"""An activity trend at or below this: the recent rate is at most a third of the earlier one."""
MOSTLY_SHARE = 0.6
"""A category sets a segment apart when at least this share of its members with the trait have it…"""
MOSTLY_LIFT = 0.2
"""…and that share is at least this much above the population's."""
RATIO_APART = 2.0
"""A trait number sets a segment apart when its median is this many times the population's (or 1/it)."""


@dataclass(frozen=True)
class SegmentProfile:
    """A segment's generated name, description, size and median feature profile."""

    label: int
    name: str
    description: str
    size: int
    profile: dict[str, float | None]


def profile_columns(columns: Sequence[object]) -> tuple[str, ...]:
    """The profile's columns among `columns`: `PROFILE_COLUMNS` present, then the trait columns."""
    present = [c for c in PROFILE_COLUMNS if c in columns]
    return (*present, *(str(c) for c in columns if is_trait_column(c)))


def _medians(frame: pd.DataFrame) -> dict[str, float | None]:
    """Medians of the profile columns; for a category column, the share of holders who have it.

    Trait columns skip users without the trait: "mostly plan=pro" is about those who have a plan.
    """
    result: dict[str, float | None] = {}
    for column in profile_columns(list(frame.columns)):
        values = frame[column].astype(float)
        value = values.mean() if column.startswith(CATEGORY_PREFIX) else values.median()
        result[column] = None if pd.isna(value) else round(float(value), 3)
    return result


def trait_note(p: Mapping[str, float | None], population: Mapping[str, float | None]) -> tuple[str, str]:
    """The trait that sets a segment apart most: (name suffix, description clause), or ("", "").

    A category wins over a number: "mostly plan=pro" when at least 60% of the members with a
    plan are on pro and that is 20 points above the population; else a number whose median is
    at least twice (or at most half) the population's ("spend 3.2× the median").
    """
    best: tuple[float, str, str] | None = None
    for column, value in p.items():
        if value is None or not column.startswith(CATEGORY_PREFIX):
            continue
        base = float(population.get(column) or 0.0)
        _prefix, name, category = trait_of(column)
        if value >= MOSTLY_SHARE and value - base >= MOSTLY_LIFT:
            text = f"mostly {name}={category}"
            if best is None or value - base > best[0]:
                best = (value - base, text, f"{value:.0%} {name}={category}")
    if best is not None:
        return best[1], best[2]
    ratios: list[tuple[float, str, str]] = []
    for column, value in p.items():
        if value is None or not column.startswith((NUMERIC_PREFIX, AGE_PREFIX)):
            continue
        usual = population.get(column)
        if usual is None or usual <= 0 or value <= 0:
            continue
        ratio = value / usual
        if ratio >= RATIO_APART or ratio <= 1 / RATIO_APART:
            _prefix, name, _category = trait_of(column)
            if column.startswith(AGE_PREFIX):  # an age: how long ago the date was
                suffix = f"{'early' if ratio > 1 else 'recent'} {name}"
                clause = f"{name} {ratio:.1f}× as long ago as usual"
            else:
                suffix, clause = f"{'high' if ratio > 1 else 'low'} {name}", f"{name} {ratio:.1f}× the median"
            ratios.append((abs(float(np.log(ratio))), suffix, clause))
    if ratios:
        _score, suffix, clause = max(ratios, key=lambda item: (item[0], item[1]))
        return suffix, clause
    return "", ""


def _is_new(p: Mapping[str, float | None], population: Mapping[str, float | None]) -> bool:
    """First seen within two weeks, or within a month and much more recently than most users.

    The relative test matters when the log is short: in a 60-day log everyone's tenure is
    at most 60 days, and a group first seen three weeks ago is the new one.
    """
    tenure = p.get("tenure_days")
    if tenure is None:
        return False
    usual = population.get("tenure_days")
    return tenure <= NEW_DAYS or (usual is not None and tenure <= min(NEWISH_DAYS, 0.5 * usual))


def _base_name(p: Mapping[str, float | None], population: Mapping[str, float | None]) -> str:
    """A name from the profile's most telling trait, checked in order of what matters to a manager.

    Lifecycle first: new users, then users slipping away. "Drifting away" is a group
    whose activity fell (trend at most -0.5) and who have been silent for two weeks, or
    any long-silent group that barely asked; "Dormant askers" asked a fair amount but show
    no decline inside the window (their activity ended before it).
    """

    def get(name: str, source: Mapping[str, float | None] = p) -> float:
        value = source.get(name)
        return 0.0 if value is None else float(value)

    if _is_new(p, population):
        return "Newcomers"
    declining = get("activity_trend") <= DECLINING_TREND
    if get("recency_days") >= 21 or (declining and get("recency_days") >= 14):
        return "Drifting away" if declining or get("questions") < 3 else "Dormant askers"
    if get("community_share") >= 0.3:
        return "Community socialites"
    if get("active_days") >= max(8.0, 2 * get("active_days", population)):
        return "Power users"
    if get("fallback_rate") >= 0.3:
        return "Unanswered askers"
    if get("questions") >= 1:
        return "Casual askers"
    return "Quiet users"


def _description(p: Mapping[str, float | None], window_days: int = 30) -> str:
    """Two or three clauses with the profile's numbers, e.g. "asked 3+ questions, silent for 21+ days".

    `window_days` is the window active days were counted in (the run's feature window).
    """

    def get(name: str) -> float:
        value = p.get(name)
        return 0.0 if value is None else float(value)

    clauses: list[str] = []
    if get("tenure_days") <= NEWISH_DAYS:
        clauses.append(f"first seen {int(get('tenure_days'))} days ago")
    if get("questions") >= 1:
        clauses.append(f"asked {int(get('questions'))}+ questions")
    if get("community_actions") >= 1:
        clauses.append(f"{int(get('community_actions'))}+ community actions")
    if get("recency_days") >= 7:
        clauses.append(f"silent for {int(get('recency_days'))}+ days")
    else:
        clauses.append(f"active on {int(get('active_days'))} of the last {window_days} days")
    if get("fallback_rate") >= 0.15:
        clauses.append(f"{get('fallback_rate'):.0%} unanswered")
    rating = p.get("mean_rating")
    if rating is not None and (rating <= 2.5 or rating >= 4.5):
        clauses.append(f"rates us {rating:.1f}/5")
    return ", ".join(clauses[:3])


def _qualifier(p: Mapping[str, float | None]) -> str:
    """A trait that tells apart two segments with the same base name."""
    rating = p.get("mean_rating")
    if (p.get("push_response_rate") or 0.0) > 0:
        return "who answer pushes"
    if (p.get("fallback_rate") or 0.0) >= 0.3:
        return "often unanswered"
    if rating is not None and rating <= 2.5:
        return "unhappy"
    if (p.get("community_actions") or 0.0) >= 1:
        return "social"
    return ""


def describe_segments(
    frame: pd.DataFrame, labels: np.ndarray, *, window_days: int = 30
) -> list[SegmentProfile]:
    """Name and describe each label's users from their median profile; names are unique.

    `window_days` is the feature window (what "active on N of the last W days" refers to).

    Segments sharing a base name get a distinguishing trait ("Dormant askers who answer
    pushes"), and a number only when that is not enough.
    """
    population = _medians(frame)
    medians = []
    for label in sorted(set(labels.tolist())):
        members = frame[labels == label]
        medians.append((int(label), _medians(members), len(members)))
    return name_segments(medians, population, window_days=window_days)


def name_segments(
    medians: Sequence[tuple[int, dict[str, float | None], int]],
    population: Mapping[str, float | None],
    *,
    window_days: int = 30,
) -> list[SegmentProfile]:
    """`describe_segments` from (label, median profile, size) per segment and the population's medians.

    For engines that aggregate the medians where the users are (Spark): medians of
    `PROFILE_COLUMNS`, rounded to 3 decimals, None where a segment has no value.
    """
    drafts: list[tuple[int, str, dict[str, float | None], int]] = []
    clauses: dict[int, str] = {}
    for label, profile, size in medians:
        name = "Outliers" if label == -1 else _base_name(profile, population)
        suffix, clauses[int(label)] = trait_note(profile, population)
        if suffix and label != -1:
            name = f"{name}, {suffix}"
        drafts.append((int(label), name, profile, size))
    counts: dict[str, int] = {}
    for _label, name, _profile, _size in drafts:
        counts[name] = counts.get(name, 0) + 1
    profiles: list[SegmentProfile] = []
    used: set[str] = set()
    for label, base, profile, size in drafts:
        name = base
        if counts[base] > 1:
            qualifier = _qualifier(profile)
            name = f"{base} {qualifier}" if qualifier else base
        candidate, number = name, 2
        while candidate in used:
            candidate = f"{name} {number}"
            number += 1
        used.add(candidate)
        description = _description(profile, window_days)
        if clauses.get(label):
            description = f"{description}, {clauses[label]}"
        profiles.append(SegmentProfile(label, candidate, description, size, profile))
    return profiles


@dataclass(frozen=True)
class PreviousSegment:
    """A segment of the previous run, for carrying names over."""

    id: int
    name: str
    pinned: bool
    size: int


def carry_names(
    profiles: Sequence[SegmentProfile],
    previous: Sequence[PreviousSegment],
    overlap: Mapping[tuple[int, int], int],
) -> tuple[list[SegmentProfile], dict[int, bool], dict[int, int]]:
    """Give each new segment its matched predecessor's pinned name, greedily by Jaccard overlap.

    `overlap[(previous id, new label)]` is the number of users in both. A pair matches when
    its Jaccard index is at least 0.5, each segment at most once, so names never shuffle
    between groups that merely look alike.

    Returns:
        The profiles with carried names, which labels are pinned, and label → previous id.
    """
    sizes = {p.label: p.size for p in profiles}
    pairs = []
    for prev in previous:
        for label, size in sizes.items():
            both = overlap.get((prev.id, label), 0)
            union = prev.size + size - both
            if both and union:
                pairs.append((both / union, prev, label))
    pairs.sort(key=lambda item: (-item[0], item[1].id, item[2]))
    matched: dict[int, PreviousSegment] = {}
    taken: set[int] = set()
    for jaccard, prev, label in pairs:
        if jaccard < MATCH_MIN_JACCARD or label in matched or prev.id in taken:
            continue
        matched[label] = prev
        taken.add(prev.id)
    pinned_names = {matched[label].name for label in matched if matched[label].pinned}
    result: list[SegmentProfile] = []
    pinned: dict[int, bool] = {}
    for profile in profiles:
        prev_match = matched.get(profile.label)
        if prev_match is not None and prev_match.pinned:
            result.append(
                SegmentProfile(
                    profile.label, prev_match.name, profile.description, profile.size, profile.profile
                )
            )
            pinned[profile.label] = True
            continue
        name = profile.name
        suffix = 2
        while name in pinned_names:
            name = f"{profile.name} {suffix}"
            suffix += 1
        result.append(SegmentProfile(profile.label, name, profile.description, profile.size, profile.profile))
        pinned[profile.label] = False
    return result, pinned, {label: prev.id for label, prev in matched.items()}
