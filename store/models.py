"""SQLAlchemy 2 typed models: the schema of everything Rapport stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Rapport stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of all Rapport tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    """A Telegram user the bot has seen (or an imported user id)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)


class Chat(Base):
    """A private chat, group, supergroup or channel the bot has seen."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(256))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Event(Base):
    """One interaction, append-only: a user's events in time order are their sequence."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_ts", "user_id", "ts"),
        Index("ix_events_ts_user", "ts", "user_id"),  # covers the dashboard overview's window scans
        Index("ix_events_kind_ts", "kind", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The Telegram `update_id` an event came from (None for pushes, imports, product events):
    # it orders one user's events that share a timestamp but were written by different replicas.
    update_id: Mapped[int | None] = mapped_column(BigInteger)


class FollowupMessage(Base):
    """A follow-up message the re-engagement job may choose."""

    __tablename__ = "followup_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_en: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text)
    targets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    segments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cooldown_days: Mapped[int] = mapped_column(Integer, default=14)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnalyticsRun(Base):
    """One analytics run: features, segmentation and rules, stored with a version."""

    __tablename__ = "analytics_runs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="running")
    message: Mapped[str | None] = mapped_column(Text)
    algorithm: Mapped[str | None] = mapped_column(String(32))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    n_users: Mapped[int] = mapped_column(Integer, default=0)
    n_events: Mapped[int] = mapped_column(BigInteger, default=0)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)


class Segment(Base):
    """A segment found by one analytics run, with its human name and profile."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("run_id", "label", name="uq_segments_run_label"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id", ondelete="CASCADE"))
    label: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)


class SegmentMembership(Base):
    """Which segment a user belonged to in one run.

    A distributed engine's executors write a running run's rows here directly (the run's
    segments are stored first); readers never see them, as every reader takes the current
    run, which a run becomes only when it completes (`store.analytics_results`).
    """

    __tablename__ = "segment_memberships"
    __table_args__ = (Index("ix_segment_memberships_user", "user_id", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))


class Rule(Base):
    """An association rule mined in one analytics run."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analytics_runs.id", ondelete="CASCADE"))
    antecedents: Mapped[list[Any]] = mapped_column(JSON)
    consequents: Mapped[list[Any]] = mapped_column(JSON)
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    leverage: Mapped[float] = mapped_column(Float)
    conviction: Mapped[float | None] = mapped_column(Float)
    sentence: Mapped[str] = mapped_column(Text, default="")


class Campaign(Base):
    """A re-engagement run or a manager's broadcast: the unit deliveries belong to."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # reengagement | broadcast
    name: Mapped[str] = mapped_column(String(128))
    segment: Mapped[str] = mapped_column(String(128))
    text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Delivery(Base):
    """One message of a campaign to one user: pending → sending → sent/failed/blocked/skipped."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id", name="uq_deliveries_campaign_user"),
        Index("ix_deliveries_status_due", "status", "due_at"),
        Index("ix_deliveries_user_sent", "user_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    followup_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    choice_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Whether the user was active within 48 h of the push (or, for holdout rows, of `due_at`);
    # None until measured.
    responded: Mapped[bool | None] = mapped_column(Boolean)
    # The experiment arm this row belongs to (a variant key such as "A", or "control"); None
    # outside experiments.
    variant: Mapped[str | None] = mapped_column(String(16))
    # The experiment phase that planned the row: "test" (all variants to the test share) or
    # "winner" (the chosen variant to everyone else); None outside phased experiments.
    phase: Mapped[str | None] = mapped_column(String(8))


class ModelRun(Base):
    """A trained model (follow-up LSTM, NLU): where it lives, how good it is, whether active."""

    __tablename__ = "model_runs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    artefact_path: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    decision: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A named lease so that only one process runs the scheduler against a database."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImportBatch(Base):
    """An imported event file, remembered by content hash so the same file is not imported twice."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Dashboard (login links, audit log, lookup indexes) -----------------------------


class LoginToken(Base):
    """A one-time dashboard login link: redeemed at most once, before `expires_at`."""

    __tablename__ = "login_tokens"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRecord(Base):
    """One manager action taken in the dashboard: who, what, on what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# User lookup by username and a segment's member list are dashboard pages: index them.
Index("ix_users_username", User.username)
Index("ix_segment_memberships_segment", SegmentMembership.segment_id, SegmentMembership.user_id)


# --- Product data (issue 16): account links, traits, product events ---------------------------


class AccountLink(Base):
    """A product account linked to one Telegram user (each side at most once)."""

    __tablename__ = "account_links"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(16))  # deep_link | import


class UsedLinkToken(Base):
    """A redeemed deep-link payload (by its MAC), kept until it expires so it cannot be reused."""

    __tablename__ = "used_link_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Trait(Base):
    """The latest value of one trait of a product account, typed, with its update time."""

    __tablename__ = "traits"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_type: Mapped[str] = mapped_column(String(16))  # numeric | categorical | date
    number: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(256))
    date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IngestedMessage(Base):
    """A Segment `messageId` already taken from one write key: a retry is acknowledged, not stored."""

    __tablename__ = "ingested_messages"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingProductEvent(Base):
    """A product event of an account not linked yet; moved into `events` when the link appears."""

    __tablename__ = "pending_product_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(128))
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Experiments (issue 17): message variants, a control arm, a winner phase --------------------


class Experiment(Base):
    """A message experiment on one campaign: its arms' shares, its goal, and the winner decision."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # broadcast | followup
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="running")
    goal: Mapped[str] = mapped_column(String(128), default="return")  # return | click | product:<event>
    window_hours: Mapped[float] = mapped_column(Float, default=48.0)
    control_share: Mapped[float] = mapped_column(Float, default=0.0)
    test_share: Mapped[float | None] = mapped_column(Float)
    pick_winner_after_s: Mapped[int | None] = mapped_column(Integer)
    decide_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    winner: Mapped[str | None] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExperimentVariant(Base):
    """One arm of an experiment that gets a message: its text, its buttons, whether it is the default."""

    __tablename__ = "experiment_variants"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[Any] | None] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


# --- Replicas (issue 19): a webhook update taken by one replica is not handled again by another -----


class ProcessedUpdate(Base):
    """A Telegram `update_id` claimed by one replica; `done_at` is set once it has been handled.

    `reply` is the Bot API call (a JSON body with `method`) the update was answered with in
    the webhook response, stored with `done_at` so a retry of the update gets it again.
    """

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    replica: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply: Mapped[str | None] = mapped_column(Text)


class UserDay(Base):
    """Events per (user, UTC day): the rollup the dashboard's active-user figures read, not the log.

    `day` is the day number since 1970-01-01 (UTC), so buckets of 7 days are an integer division
    on both backends. Maintained by `store.rollups.refresh_rollups` from the events past its watermark.
    """

    __tablename__ = "user_days"
    __table_args__ = (Index("ix_user_days_day_user", "day", "user_id"),)

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    events: Mapped[int] = mapped_column(Integer, default=0)


class EventHour(Base):
    """Events per (UTC hour, kind, intent): the messages, unanswered, intents and heat-map rollup.

    `hour` is the hour number since the epoch; `intent` is '' for none (a key cannot be null);
    `user_events` counts the events that have a user (the heat map's), `events` all of them
    (channel posts too, which the message counts include).
    """

    __tablename__ = "event_hours"

    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    intent: Mapped[str] = mapped_column(String(128), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    user_events: Mapped[int] = mapped_column(Integer, default=0)


class CohortCount(Base):
    """Users per (first-activity week, weeks since) with activity that week: the retention triangle."""

    __tablename__ = "cohort_counts"

    cohort: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    week_offset: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    users: Mapped[int] = mapped_column(Integer, default=0)


class RollupState(Base):
    """How far the rollups have read the event log: the highest event id folded in."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PeriodUsers(Base):
    """Distinct active users per whole bucket of `period_days` UTC days (1: per day, 7: per week)."""

    __tablename__ = "period_users"

    period_days: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    users: Mapped[int] = mapped_column(Integer, default=0)


class UserLastEvent(Base):
    """Each user's last event time: the rolling DAU/WAU/MAU are one range count on it, not their days."""

    __tablename__ = "user_last_events"
    __table_args__ = (Index("ix_user_last_events_ts", "last_ts"),)

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_ts: Mapped[datetime] = mapped_column(UTCDateTime)


class FloodCounter(Base):
    """Messages counted in one fixed window of one flood limit, shared by every webhook replica.

    `scope` names the limit (`user`: a user's messages to the bot; `group`: the bot's replies in a
    group), `key` the user or chat id, `bucket` the window number (`floor(unix time / window)`).
    `warned` says whether the one "slow down" reply of that window has gone out. Rows older than
    the previous window are pruned by `store.flood.prune_flood_counters`.
    """

    __tablename__ = "flood_counters"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    warned: Mapped[bool] = mapped_column(Boolean, default=False)
