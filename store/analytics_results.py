"""Analytics runs, segments, memberships and rules: written atomically, read by id or name."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Engine, Table, and_, delete, exists, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from store.analytics_queries import intents_by_segment
from store.models import AnalyticsRun, Rule, Segment, SegmentMembership, User, utcnow

logger = logging.getLogger(__name__)

MEMBERSHIP_CHUNK = 50_000
SEGMENT_INTENTS = "segment_intents"
"""The run metrics' key for each segment's top intents, stored when the run completes."""
TOP_INTENTS = 8
"""How many intents per segment a run keeps (the most the segment page shows)."""
MEMBERSHIPS_TABLE = SegmentMembership.__tablename__
"""Where a distributed engine's executors write a running run's memberships (`complete_run_written`)."""


class RunStatus(StrEnum):
    """Where an analytics run is (`analytics_runs.status`); only a `done` run can become current."""

    RUNNING = "running"
    DONE = "done"
    EMPTY = "empty"
    """Closed without segments: there were no events to analyse."""
    FAILED = "failed"


@dataclass(frozen=True)
class RunInfo:
    """One stored analytics run."""

    id: int
    created_at: datetime
    finished_at: datetime | None
    status: str
    message: str | None
    algorithm: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    n_users: int
    n_events: int
    is_current: bool


@dataclass(frozen=True)
class SegmentInfo:
    """A stored segment: its run, label, human name, size and profile."""

    id: int
    run_id: int
    label: int
    name: str
    description: str
    size: int
    profile: dict[str, Any] = field(default_factory=dict)
    pinned: bool = False


@dataclass(frozen=True)
class RuleInfo:
    """A stored association rule and its manager-readable sentence."""

    id: int
    run_id: int
    antecedents: tuple[str, ...]
    consequents: tuple[str, ...]
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float | None
    sentence: str


class MinedRule(Protocol):
    """A rule to store: what the store reads of analytics' `AssociationRule` (any object with these).

    A protocol rather than a dict or a copy of the dataclass: the store cannot import analytics,
    and the rule's own fields cross the boundary as they are.
    """

    @property
    def antecedents(self) -> Sequence[str]: ...
    @property
    def consequents(self) -> Sequence[str]: ...
    @property
    def support(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def lift(self) -> float: ...
    @property
    def leverage(self) -> float: ...
    @property
    def conviction(self) -> float | None: ...
    @property
    def sentence(self) -> str: ...


def _rule_row(run_id: int, rule: MinedRule) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "antecedents": list(rule.antecedents),
        "consequents": list(rule.consequents),
        "support": rule.support,
        "confidence": rule.confidence,
        "lift": rule.lift,
        "leverage": rule.leverage,
        "conviction": rule.conviction,
        "sentence": rule.sentence,
    }


@dataclass(frozen=True)
class NewSegment:
    """A segment to store; `label` links it to the membership labels."""

    label: int
    name: str
    description: str
    size: int
    profile: dict[str, Any]
    pinned: bool = False


def _run(row: AnalyticsRun) -> RunInfo:
    return RunInfo(
        id=row.id,
        created_at=row.created_at,
        finished_at=row.finished_at,
        status=row.status,
        message=row.message,
        algorithm=row.algorithm,
        params=dict(row.params or {}),
        metrics=dict(row.metrics or {}),
        n_users=row.n_users,
        n_events=row.n_events,
        is_current=row.is_current,
    )


def _segment(row: Segment) -> SegmentInfo:
    return SegmentInfo(
        id=row.id,
        run_id=row.run_id,
        label=row.label,
        name=row.name,
        description=row.description,
        size=row.size,
        profile=dict(row.profile or {}),
        pinned=row.pinned,
    )


def _rule(row: Rule) -> RuleInfo:
    return RuleInfo(
        id=row.id,
        run_id=row.run_id,
        antecedents=tuple(row.antecedents),
        consequents=tuple(row.consequents),
        support=row.support,
        confidence=row.confidence,
        lift=row.lift,
        leverage=row.leverage,
        conviction=row.conviction,
        sentence=row.sentence,
    )


def start_run(engine: Engine, *, algorithm: str, params: dict[str, Any]) -> int:
    """Record a run as `running` before any work, so a crash leaves a visible trace."""
    with engine.begin() as connection:
        result = connection.execute(
            insert(AnalyticsRun).values(
                created_at=utcnow(), status=RunStatus.RUNNING, algorithm=algorithm, params=params
            )
        )
        run_id = result.inserted_primary_key
        assert run_id is not None
        return int(run_id[0])


def end_run(
    engine: Engine,
    run_id: int,
    *,
    status: str,
    message: str,
    metrics: dict[str, Any] | None = None,
    n_users: int = 0,
    n_events: int = 0,
) -> None:
    """Close a run that stores no segments (empty log, failure): its message says why."""
    with engine.begin() as connection:
        connection.execute(
            update(AnalyticsRun)
            .where(AnalyticsRun.id == run_id)
            .values(
                status=status,
                message=message,
                metrics=metrics or {},
                n_users=n_users,
                n_events=n_events,
                finished_at=utcnow(),
            )
        )


def _insert_segments(connection: Connection, run_id: int, segments: Sequence[NewSegment]) -> dict[int, int]:
    label_to_id: dict[int, int] = {}
    for seg in segments:
        result = connection.execute(
            insert(Segment).values(
                run_id=run_id,
                label=seg.label,
                name=seg.name,
                description=seg.description,
                size=seg.size,
                profile=seg.profile,
                pinned=seg.pinned,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        label_to_id[seg.label] = int(key[0])
    return label_to_id


def _finish(
    connection: Connection,
    run_id: int,
    *,
    message: str,
    metrics: dict[str, Any],
    n_events: int,
    n_users: int,
    dropped: int,
    label_to_id: dict[int, int],
    rules: Sequence[MinedRule],
    recount: bool = True,
) -> None:
    """Recount sizes when users were dropped, store the rules and make the run current.

    `recount=False`: the caller has already corrected the sizes (without a scan of the run).
    Metrics that already hold `SEGMENT_INTENTS` (computed by the engine) are kept as they are.
    """
    members = SegmentMembership.__table__
    assert isinstance(members, Table)
    if dropped and recount:
        sizes: dict[int, int] = dict(
            connection.execute(
                select(members.c.segment_id, func.count())
                .where(members.c.run_id == run_id)
                .group_by(members.c.segment_id)
            ).all()
        )
        for segment_id in label_to_id.values():
            connection.execute(
                update(Segment).where(Segment.id == segment_id).values(size=int(sizes.get(segment_id, 0)))
            )
    if dropped:
        message = f"{message}; {dropped} user(s) deleted during the run were left out"
    if rules:
        connection.execute(insert(Rule), [_rule_row(run_id, rule) for rule in rules])
    if SEGMENT_INTENTS not in metrics:
        metrics = {**metrics, **_segment_intents(connection, run_id)}
    connection.execute(update(AnalyticsRun).where(AnalyticsRun.is_current).values(is_current=False))
    connection.execute(
        update(AnalyticsRun)
        .where(AnalyticsRun.id == run_id)
        .values(
            status=RunStatus.DONE,
            message=message,
            metrics=metrics,
            n_users=n_users,
            n_events=n_events,
            finished_at=utcnow(),
            is_current=True,
        )
    )


def complete_run(
    engine: Engine,
    run_id: int,
    *,
    message: str,
    metrics: dict[str, Any],
    n_events: int,
    segments: Sequence[NewSegment],
    user_ids: Sequence[int],
    labels: Sequence[int],
    rules: Sequence[MinedRule],
) -> int:
    """Store segments, memberships and rules and make the run current, in one transaction.

    Users deleted while the run computed are dropped from the memberships inside the same
    transaction (their data must not come back), and the segment sizes recounted; returns
    how many were dropped.
    """
    if len(user_ids) != len(labels):
        raise ValueError(f"{len(user_ids)} user ids but {len(labels)} labels")
    with engine.begin() as connection:
        label_to_id = _insert_segments(connection, run_id, segments)
        members = SegmentMembership.__table__
        assert isinstance(members, Table)
        for start in range(0, len(user_ids), MEMBERSHIP_CHUNK):
            chunk = [
                {"run_id": run_id, "user_id": int(user), "segment_id": label_to_id[int(label)]}
                for user, label in zip(
                    user_ids[start : start + MEMBERSHIP_CHUNK],
                    labels[start : start + MEMBERSHIP_CHUNK],
                    strict=True,
                )
            ]
            connection.execute(insert(members), chunk)
        # NOT EXISTS, not NOT IN: PostgreSQL runs NOT IN (subquery) as a hashed subplan only when
        # the users fit in work_mem (4 MB by default, ~100k ids); beyond that it rescans them for
        # every membership, quadratic (a 1M-user run spent over 10 minutes here). NOT EXISTS is
        # an anti-join at any size; user_id is never NULL, so the two mean the same.
        users = User.__table__
        dropped = int(
            connection.execute(
                delete(members).where(
                    members.c.run_id == run_id,
                    ~exists().where(users.c.id == members.c.user_id),
                )
            ).rowcount  # type: ignore[attr-defined]
        )
        _finish(
            connection,
            run_id,
            message=message,
            metrics=metrics,
            n_events=n_events,
            n_users=len(user_ids) - dropped,
            dropped=dropped,
            label_to_id=label_to_id,
            rules=rules,
        )
    return dropped


def _segment_intents(connection: Connection, run_id: int) -> dict[str, Any]:
    """The run's top intents per segment, counted once now over the memberships just written.

    The same figures `intents_by_segment` gives (messages before the run's `as_of`), kept in
    the run's metrics so the segment pages read them instead of scanning the event log.
    Nothing when the run has no `as_of` (the pipelines always record one).
    """
    params = connection.execute(select(AnalyticsRun.params).where(AnalyticsRun.id == run_id)).scalar()
    as_of = (params or {}).get("as_of")
    if not isinstance(as_of, str):
        return {}
    with Session(bind=connection) as session:
        table = intents_by_segment(
            session, run_id=run_id, as_of=datetime.fromisoformat(as_of), limit=TOP_INTENTS
        )
    found: dict[str, list[list[Any]]] = {}
    for segment_id, intent, n in table.rows:
        found.setdefault(str(segment_id), []).append([str(intent), int(n)])
    return {SEGMENT_INTENTS: found}


def segment_top_intents(run: RunInfo) -> dict[int, list[tuple[str, int]]] | None:
    """Each segment's top intents as the run stored them (most messages first); None for a run
    stored before runs kept them."""
    stored = run.metrics.get(SEGMENT_INTENTS)
    if not isinstance(stored, dict):
        return None
    return {int(segment): [(str(i), int(n)) for i, n in rows] for segment, rows in stored.items()}


def insert_run_segments(engine: Engine, run_id: int, segments: Sequence[NewSegment]) -> dict[int, int]:
    """Store a running run's segments before its memberships; label -> segment id.

    For an engine whose executors write the memberships themselves (Spark): they need the
    segment ids. Nothing is visible yet: every reader takes the current run's segments, and
    this run becomes current only in `complete_run_written`; `discard_run` removes them if
    it fails. Names and profiles may still change at completion (matched to the previous run).
    """
    with engine.begin() as connection:
        return _insert_segments(connection, run_id, segments)


def discard_run(engine: Engine, run_id: int) -> int:
    """Delete what a failed run wrote before completing (memberships, segments); memberships deleted.

    Invisible either way (the run is not current); this only reclaims the space.
    """
    members = SegmentMembership.__table__
    assert isinstance(members, Table)
    with engine.begin() as connection:
        deleted = int(
            connection.execute(delete(members).where(members.c.run_id == run_id)).rowcount  # type: ignore[attr-defined]
        )
        connection.execute(delete(Segment).where(Segment.run_id == run_id))
    return deleted


def written_overlap(
    engine: Engine, run_id: int, previous_run: int, label_to_id: dict[int, int]
) -> dict[tuple[int, int], int]:
    """(previous run's segment id, this run's label) -> users in both, over memberships already written.

    What `carry_names` needs to match segments across runs: one grouped join in SQL, no user
    list in Python.
    """
    labels = {segment_id: label for label, segment_id in label_to_id.items()}
    overlap = segment_overlap(engine, previous_run, run_id)
    return {(old, labels[new]): n for old, new, n in overlap if new in labels}


def complete_run_written(
    engine: Engine,
    run_id: int,
    *,
    message: str,
    metrics: dict[str, Any],
    n_events: int,
    n_written: int,
    segments: Sequence[NewSegment],
    label_to_id: dict[int, int],
    rules: Sequence[MinedRule],
) -> tuple[int, int]:
    """`complete_run` for memberships the engine has already written; returns (users, dropped).

    The executors wrote one row per labelled user (`n_written`) into `segment_memberships`
    under this run, invisible until now; the segments were stored by `insert_run_segments`.
    (Spark's write fails the job, and so the run, if any task fails: no partition is lost
    silently.) One transaction: users deleted while the run computed are left out: a forget
    after the write removed their rows already (the count says how many), a row that arrived
    after its user's forget is found by one anti-join and deleted. The segments get their
    final names, profiles and sizes (corrected from the deleted rows, or recounted when a
    forget removed rows), the rules are stored and the run made current. Nothing moves or
    copies the memberships, so completion costs a count and an anti-join.
    """
    members = SegmentMembership.__table__
    users = User.__table__
    assert isinstance(members, Table)
    with engine.begin() as connection:
        stored = int(
            connection.execute(
                select(func.count()).select_from(members).where(members.c.run_id == run_id)
            ).scalar_one()
        )
        # NOT EXISTS, as in `complete_run`: an anti-join at any size. RETURNING gives each
        # dropped row's segment, so the sizes are corrected without a scan of the run.
        gone = connection.execute(
            delete(members)
            .where(members.c.run_id == run_id, ~exists().where(users.c.id == members.c.user_id))
            .returning(members.c.segment_id)
        ).all()
        lost = Counter(int(segment_id) for (segment_id,) in gone)
        for seg in segments:
            segment_id = label_to_id[seg.label]
            connection.execute(
                update(Segment)
                .where(Segment.id == segment_id)
                .values(
                    name=seg.name,
                    description=seg.description,
                    size=seg.size - lost.get(segment_id, 0),
                    profile=seg.profile,
                    pinned=seg.pinned,
                )
            )
        kept = stored - len(gone)
        dropped = n_written - kept
        _finish(
            connection,
            run_id,
            message=message,
            metrics=metrics,
            n_events=n_events,
            n_users=kept,
            dropped=dropped,
            label_to_id=label_to_id,
            rules=rules,
            recount=stored != n_written,
        )
    logger.info("run %d: %d memberships written by the engine, %d left out", run_id, n_written, dropped)
    return kept, dropped


def get_run(engine: Engine, run_id: int | None = None) -> RunInfo | None:
    """A run by id, or the current one (the newest completed run)."""
    query = select(AnalyticsRun)
    query = (
        query.where(AnalyticsRun.id == run_id) if run_id is not None else query.where(AnalyticsRun.is_current)
    )
    with Session(engine) as session:
        row = session.scalars(query.order_by(AnalyticsRun.id.desc()).limit(1)).first()
        return None if row is None else _run(row)


def list_runs(engine: Engine, *, limit: int = 20) -> list[RunInfo]:
    """The newest runs first, whatever their status."""
    with Session(engine) as session:
        rows = session.scalars(select(AnalyticsRun).order_by(AnalyticsRun.id.desc()).limit(limit))
        return [_run(row) for row in rows]


def previous_done_run(engine: Engine, before_run: int) -> RunInfo | None:
    """The newest completed run older than `before_run` (for name matching and migration)."""
    with Session(engine) as session:
        row = session.scalars(
            select(AnalyticsRun)
            .where(AnalyticsRun.status == RunStatus.DONE, AnalyticsRun.id < before_run)
            .order_by(AnalyticsRun.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _run(row)


def run_segments(engine: Engine, run_id: int) -> list[SegmentInfo]:
    """A run's segments, largest first."""
    with Session(engine) as session:
        rows = session.scalars(
            select(Segment).where(Segment.run_id == run_id).order_by(Segment.size.desc(), Segment.label)
        )
        return [_segment(row) for row in rows]


def get_segment(engine: Engine, segment_id: int) -> SegmentInfo | None:
    """One segment by id, of any run."""
    with Session(engine) as session:
        row = session.get(Segment, segment_id)
        return None if row is None else _segment(row)


def segment_member_ids(engine: Engine, segment_id: int, *, limit: int | None = None) -> list[int]:
    """The user ids in a segment, ascending."""
    m = SegmentMembership.__table__
    query = select(m.c.user_id).where(m.c.segment_id == segment_id).order_by(m.c.user_id)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as connection:
        return [int(user) for (user,) in connection.execute(query)]


def segment_of_user(engine: Engine, user_id: int, run_id: int) -> SegmentInfo | None:
    """The segment a user belongs to in one run, if any."""
    m = SegmentMembership.__table__
    with Session(engine) as session:
        row = session.scalars(
            select(Segment)
            .join(m, m.c.segment_id == Segment.id)
            .where(m.c.run_id == run_id, m.c.user_id == user_id)
        ).first()
        return None if row is None else _segment(row)


def rename_segment(engine: Engine, segment_id: int, name: str, *, pinned: bool = True) -> SegmentInfo | None:
    """Give a segment a manager's name; pinned names carry over to matching segments of later runs."""
    with engine.begin() as connection:
        connection.execute(update(Segment).where(Segment.id == segment_id).values(name=name, pinned=pinned))
    return get_segment(engine, segment_id)


def run_rules(engine: Engine, run_id: int, *, limit: int | None = None) -> list[RuleInfo]:
    """A run's rules, strongest lift first."""
    query = select(Rule).where(Rule.run_id == run_id).order_by(Rule.lift.desc(), Rule.confidence.desc())
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        return [_rule(row) for row in session.scalars(query)]


def segment_overlap(engine: Engine, old_run: int, new_run: int) -> list[tuple[int, int, int]]:
    """(old segment id, new segment id, users in both) across two runs, grouped in SQL."""
    old = SegmentMembership.__table__.alias("old")
    new = SegmentMembership.__table__.alias("new")
    query = (
        select(old.c.segment_id, new.c.segment_id, func.count())
        .join_from(old, new, and_(old.c.user_id == new.c.user_id, new.c.run_id == new_run))
        .where(old.c.run_id == old_run)
        .group_by(old.c.segment_id, new.c.segment_id)
    )
    with engine.connect() as connection:
        return [(int(a), int(b), int(n)) for a, b, n in connection.execute(query)]


def run_memberships(engine: Engine, run_id: int) -> tuple[list[int], list[int]]:
    """(user ids, segment ids) of one run, for matching the next run's segments by overlap."""
    m = SegmentMembership.__table__
    users: list[int] = []
    segments: list[int] = []
    with engine.connect() as connection:
        for user, segment in connection.execute(
            select(m.c.user_id, m.c.segment_id).where(m.c.run_id == run_id)
        ):
            users.append(int(user))
            segments.append(int(segment))
    return users, segments


def current_segment_names(session: Session) -> dict[int, str]:
    """user id → name of their segment in the current run (empty before the first run), in one query."""
    m = SegmentMembership.__table__
    current = (
        select(AnalyticsRun.id)
        .where(AnalyticsRun.is_current)
        .order_by(AnalyticsRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(m.c.user_id, Segment.name)
        .join(Segment, Segment.id == m.c.segment_id)
        .where(m.c.run_id == current)
    )
    return {int(user): str(name) for user, name in session.execute(query)}
