"""The Questions page's grouping: recent unanswered messages by meaning, each with its nearest intent.

Bounded: at most ``SAMPLE`` of the period's most recent unanswered messages are read (their distinct
texts are grouped), every text is embedded once per process (``nlu.grouping.EmbeddingCache``), and
the result is cached under a version of the data (the period's unanswered count and highest id, and
the additions' modification times), so a page view with nothing new costs two small queries.
Groupings are computed in one background thread (``GroupingWorker``): a page waits at most
``WAIT_S`` for a fresh one, then shows the last one (or says it is being computed), so the first
grouping of a process, which loads the encoder and embeds the training examples, never holds a
request for long.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from threadpoolctl import threadpool_limits

from nlu.featurizer import normalize
from nlu.grouping import EmbeddingCache, NearestIntent, centroid, group_by_meaning, nearest_intents
from nlu.training_data import Example
from store.questions import AskedQuestion

logger = logging.getLogger(__name__)

SAMPLE = 2000
WAIT_S = 2.0  # how long a page waits for a fresh grouping before it shows the last one
EXAMPLES_PER_LANGUAGE = 4
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def language_of(text: str) -> str:
    """``zh`` for a text with Chinese characters, else ``en`` (enough to file an example under)."""
    return "zh" if _CJK.search(text) else "en"


@dataclass(frozen=True)
class DistinctText:
    """One distinct question (case and spacing folded): how often, by how many, first and last asked."""

    text: str
    asked: int
    users: frozenset[int]
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class QuestionGroup:
    """Questions that mean the same, most asked first, with the intent nearest to them."""

    texts: tuple[DistinctText, ...]
    nearest: NearestIntent | None

    @property
    def asked(self) -> int:
        """How many messages the group holds."""
        return sum(t.asked for t in self.texts)

    @property
    def users(self) -> int:
        """How many different users asked."""
        return len(frozenset().union(*(t.users for t in self.texts)))

    @property
    def first_seen(self) -> datetime:
        """When the group's first message (in the sample) came."""
        return min(t.first_seen for t in self.texts)

    @property
    def last_seen(self) -> datetime:
        """When its latest message came."""
        return max(t.last_seen for t in self.texts)

    def examples(self, lang: str, limit: int = EXAMPLES_PER_LANGUAGE) -> list[DistinctText]:
        """The most asked texts in ``lang`` (``en`` or ``zh``)."""
        return [t for t in self.texts if language_of(t.text) == lang][:limit]


@dataclass(frozen=True)
class Grouping:
    """The groups of one period's sample, and what was left out of it and why."""

    groups: tuple[QuestionGroup, ...]
    sampled: int  # messages read (at most SAMPLE)
    distinct: int  # distinct texts grouped
    already_known: int  # distinct texts skipped: already training examples (or pending)
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)


def distinct_texts(questions: Sequence[AskedQuestion]) -> list[DistinctText]:
    """Fold identical questions (case, width and spacing) into one, most asked first.

    The shown text is the most recent spelling.
    """
    folded: dict[str, list[AskedQuestion]] = {}
    for question in questions:
        folded.setdefault(normalize(question.text), []).append(question)
    found = [
        DistinctText(
            text=asked[0].text,
            asked=len(asked),
            users=frozenset(q.user_id for q in asked if q.user_id is not None),
            first_seen=min(q.ts for q in asked),
            last_seen=max(q.ts for q in asked),
        )
        for asked in folded.values()
    ]
    return sorted(found, key=lambda t: (-t.asked, -t.last_seen.timestamp(), t.text))


def group_questions(
    questions: Sequence[AskedQuestion],
    *,
    cache: EmbeddingCache,
    examples: Sequence[Example],
    min_similarity: float,
) -> Grouping:
    """Group ``questions`` by meaning; texts that already are ``examples`` are counted, not grouped.

    BLAS runs on one thread meanwhile: this is background work on a machine the bot shares, and on
    a busy 2-core machine one thread embedded 5-8 times faster than OpenBLAS's default two
    (``bench.bench_questions``).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _group(questions, cache=cache, examples=examples, min_similarity=min_similarity)


def _group(
    questions: Sequence[AskedQuestion],
    *,
    cache: EmbeddingCache,
    examples: Sequence[Example],
    min_similarity: float,
) -> Grouping:
    known = {normalize(e.text) for e in examples}
    texts = distinct_texts(questions)
    fresh = [t for t in texts if normalize(t.text) not in known]
    if not fresh:
        return Grouping((), len(questions), 0, len(texts) - len(fresh))
    vectors = cache.embed([t.text for t in fresh])
    members = group_by_meaning(vectors, min_similarity=min_similarity)
    centroids = [centroid(vectors[rows]) for rows in members]
    example_vectors = cache.embed([e.text for e in examples]) if examples else vectors[:0]
    nearest = nearest_intents(
        np.vstack(centroids) if centroids else vectors[:0], example_vectors, [e.intent for e in examples]
    )
    groups = [
        QuestionGroup(tuple(fresh[row] for row in rows), near)
        for rows, near in zip(members, nearest, strict=True)
    ]
    groups.sort(key=lambda g: (-g.asked, -g.last_seen.timestamp()))
    return Grouping(tuple(groups), len(questions), len(fresh), len(texts) - len(fresh))


class GroupingWorker:
    """Computes groupings in one background thread and remembers the latest one per key."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="question-groups")
        self._lock = threading.Lock()
        self._done: dict[Hashable, tuple[Hashable, Grouping]] = {}
        self._running: dict[Hashable, tuple[Hashable, Future[Grouping]]] = {}

    def get(
        self, key: Hashable, version: Hashable, compute: Callable[[], Grouping], *, wait_s: float = WAIT_S
    ) -> tuple[Grouping | None, bool]:
        """(the grouping to show, whether it is of ``version``).

        The grouping of ``version`` when it is ready within ``wait_s`` seconds; else the latest one of
        ``key`` (None before the first), while the fresh one goes on being computed.

        Raises:
            Exception: whatever ``compute`` raised, to the request that waited for it.
        """
        submitted = False
        with self._lock:
            done = self._done.get(key)
            if done is not None and done[0] == version:
                return done[1], True
            running = self._running.get(key)
            if running is not None and running[0] == version:
                future = running[1]
            else:
                future = self._pool.submit(compute)
                self._running[key] = (version, future)
                submitted = True
        if submitted:  # outside the lock: a future already done runs the callback right here
            future.add_done_callback(lambda f: self._finish(key, version, f))
        try:
            return future.result(timeout=wait_s), True
        except TimeoutError:
            return (done[1] if done is not None else None), False

    def _finish(self, key: Hashable, version: Hashable, future: Future[Grouping]) -> None:
        with self._lock:
            if self._running.get(key, (None, None))[1] is future:
                del self._running[key]
            if future.exception() is None:
                self._done[key] = (version, future.result())
            else:
                logger.warning("grouping questions failed: %s", future.exception())
