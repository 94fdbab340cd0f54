"""The audit log of manager actions taken in the dashboard: written once, read newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, insert, select

from store.models import AuditRecord


class AuditAction(StrEnum):
    """What a manager did."""

    LOGIN = "login"
    BROADCAST_CREATED = "broadcast.created"
    BROADCAST_TESTED = "broadcast.tested"
    """A composed broadcast sent once to the manager's own chat."""
    CAMPAIGN_PAUSED = "campaign.paused"
    CAMPAIGN_RESUMED = "campaign.resumed"
    CAMPAIGN_CANCELLED = "campaign.cancelled"
    SEGMENT_RENAMED = "segment.renamed"
    USER_FORGOTTEN = "user.forgotten"
    NLU_EXAMPLES_ADDED = "nlu.examples_added"
    NLU_TOPIC_CREATED = "nlu.topic_created"
    NLU_RETRAINED = "nlu.retrained"


@dataclass(frozen=True)
class AuditEntry:
    """One stored manager action."""

    id: int
    at: datetime
    actor_id: int
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)


def record_action(
    engine: Engine,
    *,
    actor_id: int,
    action: AuditAction,
    target: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> int:
    """Append one action to the log; its id."""
    with engine.begin() as connection:
        result = connection.execute(
            insert(AuditRecord).values(
                at=now, actor_id=int(actor_id), action=str(action), target=target[:256], details=details or {}
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def list_actions(engine: Engine, *, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
    """The newest actions first."""
    query = (
        select(AuditRecord).order_by(AuditRecord.at.desc(), AuditRecord.id.desc()).limit(limit).offset(offset)
    )
    with engine.connect() as connection:
        return [
            AuditEntry(row.id, row.at, row.actor_id, row.action, row.target, dict(row.details or {}))
            for row in connection.execute(query)
        ]


def count_actions(engine: Engine) -> int:
    """How many actions are logged."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(AuditRecord)).scalar() or 0)
