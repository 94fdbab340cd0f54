"""A seeded synthetic population with known behavioural types, for tests and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from store import EventRecord, append_events

logger = logging.getLogger(__name__)

DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class UserType:
    """How one behavioural type acts: volume, active span, event kinds, intents, hours."""

    name: str
    share: float
    volume: float  # events relative to the population's mean events per user
    span: tuple[float, float]  # active between `end - span[0]` and `end - span[1]` days
    kinds: dict[str, float]
    intents: tuple[str, ...]
    ratings: tuple[int, ...]
    peak_hour: int
    group_share: float


TYPES: tuple[UserType, ...] = (
    UserType(
        "power",
        0.10,
        3.0,
        (90.0, 0.0),
        {
            "message": 0.70,
            "command": 0.10,
            "feedback": 0.08,
            "fallback": 0.02,
            "reaction": 0.05,
            "edited": 0.05,
        },
        ("api_keys", "rate_limits", "models", "fine_tuning", "billing", "docs"),
        (4, 5),
        20,
        0.1,
    ),
    UserType(
        "casual_asker",
        0.30,
        0.6,
        (60.0, 1.0),
        {"message": 0.80, "fallback": 0.10, "feedback": 0.05, "command": 0.05},
        ("pricing", "getting_started", "docs", "account", "thanks"),
        (3, 4),
        13,
        0.0,
    ),
    UserType(
        "socialite",
        0.15,
        1.2,
        (90.0, 0.0),
        {"reaction": 0.40, "poll_answer": 0.20, "message": 0.35, "command": 0.05},
        ("community_events", "greet", "thanks", "feature_request"),
        (4, 5),
        18,
        0.9,
    ),
    UserType(
        "newcomer",
        0.20,
        0.35,
        (5.0, 0.0),
        {"join": 0.15, "message": 0.70, "command": 0.15},
        ("greet", "getting_started", "pricing"),
        (4,),
        10,
        0.0,
    ),
    UserType(
        "drifting",
        0.25,
        0.8,
        (90.0, 35.0),
        {"message": 0.55, "fallback": 0.20, "feedback": 0.10, "push_received": 0.15},
        ("bug_report", "service_status", "billing", "human_handoff"),
        (1, 2),
        9,
        0.0,
    ),
)


@dataclass(frozen=True)
class Population:
    """The generated users' true types (user id → type name)."""

    types: dict[int, str]
    n_events: int


def _user_rows(
    user_id: int, kind: UserType, n: int, end: datetime, rng: np.random.Generator
) -> list[EventRecord]:
    start_day = kind.span[0] * (0.6 + 0.4 * rng.random())
    stop_day = kind.span[1] + (rng.random() * 5.0 if kind.span[1] > 0 else 0.0)
    days = np.sort(rng.uniform(stop_day, max(start_day, stop_day + 0.5), size=n))[::-1]
    hours = (kind.peak_hour + rng.normal(0.0, 2.0, size=n)).astype(int) % 24
    kinds = rng.choice(list(kind.kinds), size=n, p=np.array(list(kind.kinds.values())))
    intents = rng.choice(kind.intents, size=n)
    group = rng.random(size=n) < kind.group_share
    rows: list[EventRecord] = []
    for i in range(n):
        day = end - timedelta(days=float(days[i]))
        ts = day.replace(hour=int(hours[i]), minute=int(rng.integers(60)))
        if ts >= end:
            ts = end - timedelta(minutes=1)
        event_kind = str(kinds[i])
        chat_id = -1000 - user_id % 7 if group[i] else user_id
        row: dict[str, Any] = {"user_id": user_id, "chat_id": chat_id, "ts": ts, "kind": event_kind}
        if event_kind == "message":
            row["intent"] = str(intents[i])
            row["confidence"] = 0.9
            row["text"] = f"about {intents[i]}"
            if group[i]:
                row["attributes"] = {"chat_type": "supergroup", "reply": True}
        elif event_kind == "fallback":
            row["intent"] = "nlu_fallback"
            row["text"] = f"unknown thing {int(rng.integers(5))}"
        elif event_kind == "feedback":
            row["attributes"] = {"rating": int(rng.choice(kind.ratings))}
        elif event_kind == "push_received":
            row["attributes"] = {"campaign_id": 1, "followup_id": "nudge"}
        rows.append(EventRecord(**row))
        if event_kind == "push_received" and rng.random() < 0.3:
            rows.append(
                EventRecord(
                    **{**row, "kind": "push_response", "ts": ts + timedelta(hours=2), "attributes": None}
                )
            )
    return rows


def iter_population(
    n_users: int,
    *,
    events_per_user: float = 20.0,
    end: datetime = DEFAULT_END,
    seed: int = 0,
    first_user_id: int = 1,
    chunk_users: int = 2000,
) -> Iterator[tuple[dict[int, str], list[EventRecord]]]:
    """Yield (true types, event rows) chunk by chunk, so a million users never sit in memory."""
    rng = np.random.default_rng(seed)
    shares = np.array([t.share for t in TYPES])
    for chunk_start in range(0, n_users, chunk_users):
        size = min(chunk_users, n_users - chunk_start)
        picks = rng.choice(len(TYPES), size=size, p=shares / shares.sum())
        types: dict[int, str] = {}
        rows: list[EventRecord] = []
        for offset, pick in enumerate(picks):
            kind = TYPES[int(pick)]
            user_id = first_user_id + chunk_start + offset
            n = max(2, int(rng.poisson(events_per_user * kind.volume)))
            types[user_id] = kind.name
            rows.extend(_user_rows(user_id, kind, n, end, rng))
        yield types, rows


def populate(
    engine: Engine,
    n_users: int,
    *,
    events_per_user: float = 20.0,
    end: datetime = DEFAULT_END,
    seed: int = 0,
    first_user_id: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Population:
    """Write a synthetic population straight into the store; returns the true types."""
    types: dict[int, str] = {}
    total = 0
    for chunk_types, rows in iter_population(
        n_users, events_per_user=events_per_user, end=end, seed=seed, first_user_id=first_user_id
    ):
        total += append_events(engine, rows)
        types.update(chunk_types)
        if progress is not None:
            progress(len(chunk_types))
    logger.info("generated %d synthetic users with %d events", len(types), total)
    return Population(types=types, n_events=total)
