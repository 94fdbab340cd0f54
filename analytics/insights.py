"""What the bot, the scheduler and the report ask: segments, rules, activity and retention."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics.errors import UnknownSegmentError
from store.analytics_queries import (
    active_users_by,
    activity_heatmap,
    distinct_users_between,
    intents_by_segment,
    period_counts,
    retention_cohorts,
    unanswered_texts,
)
from store.analytics_results import (
    RuleInfo,
    RunInfo,
    SegmentInfo,
    get_run,
    previous_done_run,
    rename_segment,
    run_rules,
    run_segments,
    segment_member_ids,
    segment_of_user,
    segment_overlap,
)
from store.db import read_snapshot

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class ActivityStats:
    """Headline activity of a period, for /stats and the report."""

    since: datetime
    until: datetime
    dau: int  # distinct users on the last day of the period
    wau: int  # distinct users in the last 7 days of the period
    mau: int  # distinct users in the last 30 days of the period
    active_users: int  # distinct users in the whole period
    new_users: int
    messages: int
    unanswered: int
    fallback_rate: float
    top_intents: tuple[tuple[str, int], ...]


def current_run(engine: Engine) -> RunInfo | None:
    """The current completed analytics run, if any."""
    return get_run(engine)


def current_segments(engine: Engine) -> list[SegmentInfo]:
    """The current run's segments, largest first; empty before the first completed run."""
    run = get_run(engine)
    return [] if run is None else run_segments(engine, run.id)


def find_segment(engine: Engine, name_or_id: str | int) -> SegmentInfo:
    """A segment of the current run by id or (case-insensitive) name.

    Raises:
        UnknownSegmentError: No current run, or no segment with that name or id in it.
    """
    segments = current_segments(engine)
    if not segments:
        raise UnknownSegmentError("no analytics run yet: run `rapport analytics run` first")
    wanted = str(name_or_id).strip()
    for segment in segments:
        if wanted.isdigit() and segment.id == int(wanted):
            return segment
    for segment in segments:
        if segment.name.casefold() == wanted.casefold():
            return segment
    names = ", ".join(f"{s.id}={s.name!r}" for s in segments)
    raise UnknownSegmentError(f"no segment {wanted!r} in the current run (segments: {names})")


def segment_members(engine: Engine, name_or_id: str | int, *, limit: int | None = None) -> list[int]:
    """User ids of a current segment (by name or id), for targeting broadcasts."""
    return segment_member_ids(engine, find_segment(engine, name_or_id).id, limit=limit)


def user_segment(engine: Engine, user_id: int) -> SegmentInfo | None:
    """The segment a user is in according to the current run (None if not segmented)."""
    run = get_run(engine)
    return None if run is None else segment_of_user(engine, user_id, run.id)


def pin_segment(engine: Engine, segment_id: int, name: str) -> SegmentInfo:
    """Rename a segment and pin the name so later runs keep it for the matching segment."""
    name = name.strip()
    if not name:
        raise UnknownSegmentError("a pinned segment name cannot be empty")
    segment = rename_segment(engine, segment_id, name)
    if segment is None:
        raise UnknownSegmentError(f"no segment with id {segment_id}")
    return segment


def top_rule_records(engine: Engine, n: int = 10) -> list[RuleInfo]:
    """The current run's strongest rules by lift."""
    run = get_run(engine)
    return [] if run is None else run_rules(engine, run.id, limit=n)


def top_rules(engine: Engine, n: int = 10) -> list[str]:
    """The current run's strongest rules as manager sentences."""
    return [rule.sentence for rule in top_rule_records(engine, n)]


def run_staff(run: RunInfo | None) -> tuple[int, ...]:
    """The staff accounts a run left out (its `exclude_users`), so its report leaves them out too."""
    if run is None:
        return ()
    return tuple(int(u) for u in run.params.get("exclude_users") or ())


def activity_stats(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    *,
    exclude_users: Sequence[int] = (),
) -> ActivityStats:
    """DAU/WAU/MAU at the end of the period, new users, messages, fallback rate, top intents.

    `exclude_users` (the managers' ids) keeps staff out of every count.
    """
    until = until or datetime.now(UTC)
    if since >= until:
        raise ValueError(f"since={since.isoformat()} must be before until={until.isoformat()}")
    with read_snapshot(engine) as session:  # one snapshot: DAU <= WAU <= MAU even under writes
        counts = period_counts(session, since=since, until=until, exclude_users=exclude_users)
        dau, wau, mau = (
            distinct_users_between(
                session, since=until - timedelta(days=days), until=until, exclude_users=exclude_users
            )
            for days in (1, 7, 30)
        )
        active_users = distinct_users_between(session, since=since, until=until, exclude_users=exclude_users)
    return ActivityStats(
        since=since,
        until=until,
        dau=dau,
        wau=wau,
        mau=mau,
        active_users=active_users,
        new_users=counts.new_users,
        messages=counts.messages,
        unanswered=counts.unanswered,
        fallback_rate=counts.unanswered / counts.messages if counts.messages else 0.0,
        top_intents=counts.top_intents,
    )


def _day(number: int) -> pd.Timestamp:
    return pd.Timestamp(EPOCH + timedelta(days=number))


def active_users_series(
    engine: Engine, since: datetime, until: datetime, *, exclude_users: Sequence[int] = ()
) -> dict[str, pd.DataFrame]:
    """DAU per day, WAU per 7-day bucket and MAU per 30-day bucket over time."""
    series: dict[str, pd.DataFrame] = {}
    with read_snapshot(engine) as session:
        tables = {
            name: active_users_by(
                session, period_days=days, since=since, until=until, exclude_users=exclude_users
            )
            for name, days in (("dau", 1), ("wau", 7), ("mau", 30))
        }
    for name, table in tables.items():
        series[name] = pd.DataFrame(
            {"start": [_day(d) for d, _n in table.rows], "users": [n for _d, n in table.rows]}
        )
    return series


def retention(engine: Engine, until: datetime, *, exclude_users: Sequence[int] = ()) -> pd.DataFrame:
    """Weekly retention cohorts: share of each first-week cohort active N weeks later.

    `retention_sizes` gives the users behind each row (a share of 3 users is not a trend).
    """
    with read_snapshot(engine) as session:
        table = retention_cohorts(session, until=until, exclude_users=exclude_users)
    if not table.rows:
        return pd.DataFrame()
    frame = pd.DataFrame(table.rows, columns=list(table.columns))
    counts = frame.pivot(index="cohort_week", columns="week_offset", values="users").fillna(0)
    shares = counts.div(counts[0], axis=0)
    # Weeks after the last observed one are unknown, not zero: the triangle stays a triangle.
    last_week = int((frame["cohort_week"] + frame["week_offset"]).max())
    for cohort in shares.index:
        shares.loc[cohort, [o for o in shares.columns if cohort + o > last_week]] = np.nan
    shares.index = [_day(int(w) * 7).date().isoformat() for w in shares.index]
    return shares


def retention_sizes(engine: Engine, until: datetime, *, exclude_users: Sequence[int] = ()) -> pd.Series:
    """Users in each weekly cohort (index: the cohort's first day, as `retention` labels it)."""
    with read_snapshot(engine) as session:
        table = retention_cohorts(session, until=until, exclude_users=exclude_users)
    sizes = {_day(c * 7).date().isoformat(): n for c, o, n in table.rows if o == 0}
    return pd.Series(sizes, dtype="int64")


def activity_by_hour(
    engine: Engine, since: datetime, until: datetime, *, exclude_users: Sequence[int] = ()
) -> pd.DataFrame:
    """Events per weekday (rows, Sun…Sat) and UTC hour (columns 0-23)."""
    with read_snapshot(engine) as session:
        table = activity_heatmap(session, since=since, until=until, exclude_users=exclude_users)
    grid = pd.DataFrame(0, index=list(WEEKDAYS), columns=list(range(24)))
    for weekday, hour, n in table.rows:
        grid.iloc[weekday, hour] = n
    return grid


def unanswered_questions(
    engine: Engine,
    since: datetime,
    until: datetime,
    limit: int = 20,
    *,
    exclude_users: Sequence[int] = (),
) -> pd.DataFrame:
    """The unanswered texts, grouped, most frequent first (empty when text storage is off)."""
    with read_snapshot(engine) as session:
        table = unanswered_texts(session, since=since, until=until, limit=limit, exclude_users=exclude_users)
    return pd.DataFrame(table.rows, columns=list(table.columns))


def top_intents_per_segment(engine: Engine, *, limit: int = 5) -> pd.DataFrame:
    """The current run's most used intents per segment (segment name, intent, messages)."""
    run = get_run(engine)
    if run is None:
        return pd.DataFrame(columns=["segment", "intent", "messages"])
    as_of = datetime.fromisoformat(run.params["as_of"]) if "as_of" in run.params else datetime.now(UTC)
    names = {s.id: s.name for s in run_segments(engine, run.id)}
    with read_snapshot(engine) as session:
        table = intents_by_segment(session, run_id=run.id, as_of=as_of, limit=limit)
    return pd.DataFrame(
        [(names.get(s, str(s)), i, n) for s, i, n in table.rows], columns=["segment", "intent", "messages"]
    )


def segment_migration(engine: Engine) -> pd.DataFrame:
    """Users moving from each segment of the previous run to each of the current run."""
    run = get_run(engine)
    previous = None if run is None else previous_done_run(engine, run.id)
    if run is None or previous is None:
        return pd.DataFrame(columns=["from", "to", "users"])
    old_names = {s.id: s.name for s in run_segments(engine, previous.id)}
    new_names = {s.id: s.name for s in run_segments(engine, run.id)}
    rows = [
        (old_names.get(a, str(a)), new_names.get(b, str(b)), n)
        for a, b, n in segment_overlap(engine, previous.id, run.id)
    ]
    return pd.DataFrame(rows, columns=["from", "to", "users"]).sort_values("users", ascending=False)
