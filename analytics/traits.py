"""Product traits as segmentation features: numbers, one-hot categories, dates as ages in days.

Only users linked to a product account have traits. The frame built here holds NaN for every
user without a value, and `analytics.features.cluster_matrix` fills NaN with the column's mean
over the users who have one: an unlinked user sits at the centre of every trait axis (zero
after scaling) and is segmented by behaviour alone. Filling with 0 instead would put every
unlinked user at "spend 0, plan none", a point of its own that k-means would happily call a
segment.

Column names carry the encoding, so both engines and the naming read it from the name alone:
`num:<trait>` (the number), `age:<trait>` (days from the date to the run's `as_of`) and
`cat:<trait>=<value>` (1.0 or 0.0), with `cat:<trait>=(other)` collecting the categories past
the cap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from store.analytics_queries import Table, linked_traits
from store.db import read_snapshot

logger = logging.getLogger(__name__)

NUMERIC_PREFIX = "num:"
AGE_PREFIX = "age:"
CATEGORY_PREFIX = "cat:"
TRAIT_PREFIXES = (NUMERIC_PREFIX, AGE_PREFIX, CATEGORY_PREFIX)
OTHER_CATEGORY = "(other)"
MAX_TRAITS = 8
"""At most this many traits enter the features (the best covered), so traits never drown behaviour."""
MAX_CATEGORIES = 5
"""Categories of one trait with their own column; the rest share `=(other)`."""
MIN_COVERAGE = 0.2
"""A trait is selected automatically when at least this share of linked users has it."""
MONETARY_TRAITS = ("spend", "total_spend", "lifetime_value", "ltv", "revenue", "mrr", "arr")
"""Numeric traits that are money the user brought in: RFM's monetary value, first found wins."""
_TYPE_ORDER = ("numeric", "date", "categorical")


def is_trait_column(column: object) -> bool:
    """Whether a feature column is a trait column (`num:`, `age:` or `cat:`)."""
    return isinstance(column, str) and column.startswith(TRAIT_PREFIXES)


def trait_of(column: str) -> tuple[str, str, str | None]:
    """(prefix, trait name, category or None) of a trait column."""
    for prefix in TRAIT_PREFIXES:
        if column.startswith(prefix):
            rest = column.removeprefix(prefix)
            if prefix == CATEGORY_PREFIX:
                name, _, category = rest.partition("=")
                return prefix, name, category
            return prefix, rest, None
    raise ValueError(f"{column!r} is not a trait column")


@dataclass(frozen=True)
class TraitFeatures:
    """Trait columns per linked user (NaN where a user lacks the trait) and what was decided.

    `notes` say what was left out and why (mixed types, identifiers, too few holders), for the
    run's message. `monetary` is the numeric trait RFM's monetary score uses, if any.
    """

    frame: pd.DataFrame
    traits: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    monetary: str | None = None
    monetary_values: pd.Series | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The trait columns, in order."""
        return tuple(str(c) for c in self.frame.columns)


def _empty() -> TraitFeatures:
    return TraitFeatures(frame=pd.DataFrame(index=pd.Index([], dtype="int64", name="user_id")))


def _majority_type(types: pd.Series) -> str:
    counts = types.value_counts()
    best = int(counts.max())
    return next(t for t in _TYPE_ORDER if int(counts.get(t, 0)) == best)


def encode_traits(
    table: Table,
    *,
    as_of: datetime,
    include: Sequence[str] | None = None,
    max_traits: int = MAX_TRAITS,
    max_categories: int = MAX_CATEGORIES,
    min_coverage: float = MIN_COVERAGE,
) -> TraitFeatures:
    """Encode linked users' traits (`store.analytics_queries.linked_traits`) as feature columns.

    A trait stored with different types across accounts (`plan` a string for most, a number for
    a few) keeps its most common type; the other values are left out and said in `notes`. A
    categorical trait with more distinct values than `max_categories` and than half its
    holders identifies people (an e-mail, a name): it is not a segment trait and is left out.

    Args:
        table: (user_id, name, value_type, number, category, date) rows.
        as_of: Dates become their age in days at this moment.
        include: Trait names to use; default: every trait held by at least `min_coverage` of
            linked users, the best covered first, at most `max_traits`.
    """
    if max_traits < 0 or max_categories < 1:
        raise ValueError(f"max_traits={max_traits} must be >= 0 and max_categories={max_categories} >= 1")
    raw = pd.DataFrame.from_records(table.rows, columns=list(table.columns))
    if raw.empty:
        missing = tuple(f"trait {name!r} is not held by any linked user" for name in include or ())
        return TraitFeatures(frame=_empty().frame, notes=missing)
    raw["user_id"] = raw["user_id"].astype("int64")
    linked = int(raw["user_id"].nunique())
    notes: list[str] = []
    kept: dict[str, pd.DataFrame] = {}
    for name, rows in raw.groupby("name", sort=True):
        chosen = _majority_type(rows["value_type"])
        others = rows[rows["value_type"] != chosen]
        if len(others):
            mix = ", ".join(f"{t} {n}" for t, n in others["value_type"].value_counts().sort_index().items())
            notes.append(
                f"trait {name!r} has values of several types: {len(others)} not {chosen} ({mix}) left out"
            )
        kept[str(name)] = rows[rows["value_type"] == chosen]
    monetary = next(
        (m for m in MONETARY_TRAITS if m in kept and (kept[m]["value_type"] == "numeric").all()), None
    )
    coverage = {name: rows["user_id"].nunique() / linked for name, rows in kept.items()}
    if include is not None:
        wanted = list(dict.fromkeys(include))
        for name in wanted:
            if name not in kept:
                notes.append(f"trait {name!r} is not held by any linked user")
        candidates = [name for name in wanted if name in kept]
    else:
        candidates = sorted(
            (n for n, c in coverage.items() if c >= min_coverage), key=lambda n: (-coverage[n], n)
        )
    selected: list[str] = []
    for name in candidates:
        rows = kept[name]
        if rows["value_type"].iloc[0] == "categorical":
            distinct = rows["category"].nunique()
            if distinct > max_categories and distinct > 0.5 * len(rows):
                notes.append(f"trait {name!r} left out: {distinct} distinct values look like identifiers")
                continue
        selected.append(name)
    if len(selected) > max_traits:
        notes.append(
            f"only the {max_traits} best covered traits are used: {', '.join(selected[max_traits:])} not"
        )
        selected = selected[:max_traits]
    index = pd.Index(sorted(raw["user_id"].unique()), dtype="int64", name="user_id")
    columns: dict[str, pd.Series] = {}
    for name in selected:
        rows = kept[name].set_index("user_id")
        value_type = rows["value_type"].iloc[0]
        if value_type == "numeric":
            columns[f"{NUMERIC_PREFIX}{name}"] = rows["number"].astype(float).reindex(index)
        elif value_type == "date":
            dates = pd.to_datetime(rows["date"], utc=True)
            age = (pd.Timestamp(as_of) - dates).dt.total_seconds() / 86400.0
            columns[f"{AGE_PREFIX}{name}"] = age.astype(float).reindex(index)
        else:
            values = rows["category"].astype(str)
            counts = values.value_counts()
            order = sorted(counts.index, key=lambda v: (-int(counts[v]), v))
            top = order[:max_categories]
            held = values.reindex(index)
            for category in top:
                columns[f"{CATEGORY_PREFIX}{name}={category}"] = (
                    (held == category).astype(float).where(held.notna())
                )
            if len(order) > len(top):
                columns[f"{CATEGORY_PREFIX}{name}={OTHER_CATEGORY}"] = (
                    (~held.isin(top)).astype(float).where(held.notna())
                )
    frame = pd.DataFrame(columns, index=index)
    frame = frame.loc[frame.notna().any(axis=1)] if len(frame.columns) else frame.iloc[:0]
    money = None
    if monetary is not None:
        money = kept[monetary].set_index("user_id")["number"].astype(float)
    logger.info("traits: %d of %d trait names selected for %d linked users", len(selected), len(kept), linked)
    return TraitFeatures(
        frame=frame, traits=tuple(selected), notes=tuple(notes), monetary=monetary, monetary_values=money
    )


def load_traits(
    engine: Engine,
    *,
    as_of: datetime,
    exclude_users: Sequence[int] = (),
    include: Sequence[str] | None = None,
) -> TraitFeatures:
    """`encode_traits` on the store's linked traits (the same for both analytics engines)."""
    with read_snapshot(engine) as session:
        table = linked_traits(session, exclude_users=exclude_users)
    return encode_traits(table, as_of=as_of, include=include)


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x)·log(1 + |x|): heavy-tailed spend and ages compressed, sign kept, 0 stays 0."""
    return np.asarray(np.sign(values) * np.log1p(np.abs(values)), dtype=np.float64)
