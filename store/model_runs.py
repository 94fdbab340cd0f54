"""Trained models: where each lives, how good it was on held-out data, and which one is active."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from store.db import unit_of_work
from store.models import ModelRun


@dataclass(frozen=True)
class ModelRunInfo:
    """One recorded model run."""

    id: int
    kind: str
    created_at: datetime
    artefact_path: str
    active: bool
    decision: str | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def _info(run: ModelRun) -> ModelRunInfo:
    return ModelRunInfo(
        id=run.id,
        kind=run.kind,
        created_at=run.created_at,
        artefact_path=run.artefact_path,
        active=run.active,
        decision=run.decision,
        params=dict(run.params or {}),
        metrics=dict(run.metrics or {}),
    )


def add_model_run(
    session: Session,
    *,
    kind: str,
    artefact_path: str,
    metrics: dict[str, Any],
    params: dict[str, Any] | None = None,
    activate: bool,
    decision: str,
    now: datetime,
) -> int:
    """Store a trained model with its decision in the caller's transaction; its id.

    When `activate`, it replaces the active model of its kind in the same transaction, so
    there is never a moment with two active models or none.
    """
    if activate:
        session.execute(update(ModelRun).where(ModelRun.kind == kind).values(active=False))
    run = ModelRun(
        kind=kind,
        created_at=now,
        artefact_path=artefact_path,
        params=params or {},
        metrics=metrics,
        active=activate,
        decision=decision,
    )
    session.add(run)
    session.flush()
    return run.id


def record_model_run(
    engine: Engine,
    *,
    kind: str,
    artefact_path: str,
    metrics: dict[str, Any],
    params: dict[str, Any] | None = None,
    activate: bool,
    decision: str,
    now: datetime,
) -> int:
    """`add_model_run` in a unit of work of its own (for callers with nothing else to write)."""
    with unit_of_work(engine) as session:
        return add_model_run(
            session,
            kind=kind,
            artefact_path=artefact_path,
            metrics=metrics,
            params=params,
            activate=activate,
            decision=decision,
            now=now,
        )


def active_model_run(session: Session, kind: str) -> ModelRunInfo | None:
    """The active model of this kind, or None."""
    run = session.scalar(
        select(ModelRun).where(ModelRun.kind == kind, ModelRun.active.is_(True)).order_by(ModelRun.id.desc())
    )
    return None if run is None else _info(run)


def list_model_runs(session: Session, kind: str, *, limit: int = 10) -> list[ModelRunInfo]:
    """The latest runs of this kind, newest first."""
    query = select(ModelRun).where(ModelRun.kind == kind).order_by(ModelRun.id.desc()).limit(limit)
    return [_info(run) for run in session.scalars(query)]
