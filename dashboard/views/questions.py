"""Questions: what the bot could not answer, grouped by meaning; assign a group to an intent or make it a
new topic, and retrain the NLU from the page."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard.auth import config_of, manager, manager_with_csrf
from dashboard.nlu_training import NLUTrainer, deployment_data, latest_runs
from dashboard.question_groups import SAMPLE, WAIT_S, Grouping, GroupingWorker, group_questions
from dashboard.sessions import Session
from dashboard.templating import render
from nlu import default_data_paths, load_training_data
from nlu.additions import AdditionError, DeploymentData, NewTopic
from nlu.grouping import DEFAULT_MIN_SIMILARITY, EmbeddingCache
from nlu.training_data import Example
from store.audit import AuditAction, record_action
from store.db import read_snapshot
from store.overview_queries import period_messages
from store.questions import recent_unanswered, unanswered_version

logger = logging.getLogger(__name__)

router = APIRouter()

RANGES = (7, 30, 90)
GROUPS_SHOWN = 40
WEAK_MATCH = 0.5  # below this the nearest intent is rarely what the group asks: say so
NOTICES = ("added", "created", "training", "busy")


@dataclass(frozen=True)
class Counts:
    """The period's messages and unanswered messages (cached with the overview's figures)."""

    messages: int
    unanswered: int


def _additions(request: Request) -> DeploymentData | None:
    """The deployment's training data and additions, or None when this dashboard has no NLU folders."""
    config = config_of(request)
    if config.nlu_additions_dir is None or config.nlu_model_dir is None:
        return None
    return deployment_data(config.nlu_data, config.nlu_additions_dir)


def trainer_of(request: Request) -> NLUTrainer | None:
    """The app's one background trainer, made on first use (tests put their own in app.state)."""
    state = request.app.state
    trainer: NLUTrainer | None = getattr(state, "nlu_trainer", None)
    data = _additions(request)
    if trainer is None and data is not None:
        config = config_of(request)
        assert config.nlu_model_dir is not None
        trainer = NLUTrainer(config.engine, data, model_dir=config.nlu_model_dir, now=state.now)
        state.nlu_trainer = trainer
    return trainer


# One per process, like the encoder itself: a text (or training example) is embedded once.
_EMBEDDINGS = EmbeddingCache()


def _embeddings(request: Request) -> EmbeddingCache:
    """The embedding cache (tests may put their own in app.state)."""
    cache: EmbeddingCache = getattr(request.app.state, "question_embeddings", _EMBEDDINGS)
    return cache


def _examples(request: Request, data: DeploymentData | None) -> tuple[Example, ...]:
    """Training examples (base, accepted and pending), read again only when the additions change."""
    config = config_of(request)
    if data is None:
        key: tuple[Any, ...] = ("nlu-examples", config.nlu_data)
        return request.app.state.run_cache.get(  # type: ignore[no-any-return]
            key, lambda: load_training_data(list(config.nlu_data) or default_data_paths()).examples
        )
    return request.app.state.run_cache.get(  # type: ignore[no-any-return]
        ("nlu-examples", data.directory, data.version()),
        lambda: (*data.active_data().examples, *data.pending()),
    )


def _worker(request: Request) -> GroupingWorker:
    worker: GroupingWorker | None = getattr(request.app.state, "question_worker", None)
    if worker is None:
        worker = GroupingWorker()
        request.app.state.question_worker = worker
    return worker


def _grouping(request: Request, days: int, data: DeploymentData | None) -> tuple[Grouping | None, bool]:
    """The period's grouping and whether it is current; computed again only when its questions or
    the training data changed."""
    until: datetime = request.app.state.now()
    since = until - timedelta(days=days)
    engine = config_of(request).engine
    with read_snapshot(engine) as db:
        version = unanswered_version(db, since=since, until=until)
    additions = data.version() if data is not None else ()

    def compute() -> Grouping:
        started = time.perf_counter()
        with read_snapshot(engine) as db:
            questions = recent_unanswered(db, since=since, until=until, limit=SAMPLE)
        grouping = group_questions(
            questions,
            cache=_embeddings(request),
            examples=_examples(request, data),
            min_similarity=DEFAULT_MIN_SIMILARITY,
        )
        seconds = time.perf_counter() - started
        logger.info("grouped %d questions (%d texts) in %.2fs", grouping.sampled, grouping.distinct, seconds)
        return Grouping(grouping.groups, grouping.sampled, grouping.distinct, grouping.already_known, seconds)

    wait_s: float = getattr(request.app.state, "questions_wait_s", WAIT_S)
    return _worker(request).get(days, (version, additions), compute, wait_s=wait_s)


def _page(
    request: Request,
    session: Session,
    days: int,
    *,
    error: str | None = None,
    notice: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    engine = config_of(request).engine
    data = _additions(request)

    def counts() -> Counts:
        until = request.app.state.now()
        with read_snapshot(engine) as db:
            found = period_messages(db, since=until - timedelta(days=days), until=until, top=0)  # rollups
        return Counts(found.messages, found.unanswered)

    figures: Counts = request.app.state.cache.get(("questions", days), counts)
    grouping, current = _grouping(request, days, data) if figures.unanswered else (None, True)
    grouping = grouping or Grouping((), 0, 0, 0)
    pending: dict[str, list[str]] = {}
    intents: list[str] = []
    if data is not None:
        for example in data.pending():
            pending.setdefault(example.intent, []).append(example.text)
        intents = sorted({e.intent for e in _examples(request, data)} | set(data.topics()))
    trainer = trainer_of(request)
    return render(
        request,
        "questions.html",
        session=session,
        status_code=status_code,
        counts=figures,
        grouping=grouping,
        computing=not current,
        groups=grouping.groups[:GROUPS_SHOWN],
        days=days,
        ranges=RANGES,
        sample=SAMPLE,
        min_similarity=DEFAULT_MIN_SIMILARITY,
        weak=WEAK_MATCH,
        can_train=data is not None,
        intents=intents,
        pending=pending,
        n_pending=sum(len(v) for v in pending.values()),
        status=trainer.status() if trainer is not None else None,
        runs=latest_runs(engine),
        error=error,
        notice=notice,
        form=form or {},
    )


@router.get("/questions", response_class=HTMLResponse)
def questions_page(
    request: Request,
    days: int = Query(30, ge=1, le=366),
    notice: str = "",
    n: int = 0,
    intent: str = "",
    session: Session = Depends(manager),
) -> Response:
    """Unanswered and fallback questions of the last `days` days, grouped by meaning, most asked first."""
    shown = {"key": notice, "n": str(n), "intent": intent[:64]} if notice in NOTICES else None
    return _page(request, session, days, notice=shown)


def _back(days: int, notice: str, **params: object) -> Response:
    """Back to the page after a POST (so a reload does not post again), with what happened."""
    query = urlencode({"days": days, "notice": notice, **params})
    return RedirectResponse(f"/questions?{query}", status_code=303)


@router.post("/questions/assign")
def assign(
    request: Request,
    intent: str = Form(""),
    text: list[str] = Form(default_factory=list),
    days: int = Form(30, ge=1, le=366),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """Add the selected texts of a group as training examples of an existing intent (pending retraining)."""
    data = _additions(request)
    if data is None:
        return _page(request, session, days, error="no_nlu", status_code=409)
    try:
        added = data.add_examples(intent, text)
    except AdditionError as exc:
        return _page(request, session, days, error=str(exc), status_code=400)
    record_action(
        config_of(request).engine,
        actor_id=session.user_id,
        action=AuditAction.NLU_EXAMPLES_ADDED,
        target=f"intent {intent.strip()}",
        now=request.app.state.now(),
        details={"examples": added, "texts": [t.strip() for t in text][:10]},
    )
    return _back(days, "added", n=added, intent=intent.strip())


@router.post("/questions/topic")
def create_topic(
    request: Request,
    intent: str = Form("", alias="new_intent"),
    title_en: str = Form(""),
    title_zh: str = Form(""),
    answer_en: str = Form(""),
    answer_zh: str = Form(""),
    text: list[str] = Form(default_factory=list),
    days: int = Form(30, ge=1, le=366),
    session: Session = Depends(manager_with_csrf),
) -> Response:
    """Create a knowledge-base topic (a new intent with answers in English and Chinese) from a group."""
    data = _additions(request)
    if data is None:
        return _page(request, session, days, error="no_nlu", status_code=409)
    topic = NewTopic(
        intent=intent, title={"en": title_en, "zh": title_zh}, answer={"en": answer_en, "zh": answer_zh}
    )
    try:
        added = data.create_topic(topic, text)
    except AdditionError as exc:
        form = {"intent": intent, "title_en": title_en, "title_zh": title_zh}
        form.update(answer_en=answer_en, answer_zh=answer_zh)
        return _page(request, session, days, error=str(exc), form=form, status_code=400)
    record_action(
        config_of(request).engine,
        actor_id=session.user_id,
        action=AuditAction.NLU_TOPIC_CREATED,
        target=f"intent {intent.strip()}",
        now=request.app.state.now(),
        details={"examples": added, "title": title_en.strip()[:40]},
    )
    return _back(days, "created", n=added, intent=intent.strip())


@router.post("/questions/retrain")
def retrain(
    request: Request, days: int = Form(30, ge=1, le=366), session: Session = Depends(manager_with_csrf)
) -> Response:
    """Start retraining the NLU in the background; the page shows its status and figures."""
    trainer = trainer_of(request)
    if trainer is None:
        return _page(request, session, days, error="no_nlu", status_code=409)
    if not trainer.start(session.user_id):
        return _back(days, "busy")
    record_action(
        config_of(request).engine,
        actor_id=session.user_id,
        action=AuditAction.NLU_RETRAINED,
        target="nlu",
        now=request.app.state.now(),
        details={"pending": len(trainer.data.pending())},
    )
    return _back(days, "training")
