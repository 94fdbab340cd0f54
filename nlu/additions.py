"""The deployment's own training examples and topics, added from the dashboard, kept beside the data.

The bundled data (``nlu/data``) and the knowledge base ship inside the package and are never written
at run time. What managers add lives in one folder of the deployment (``<data_dir>/nlu``):

- ``pending.yml``: examples assigned since the last retraining (Rasa NLU YAML); not yet learned.
- ``accepted.yml``: examples a retraining learned and activated (Rasa NLU YAML); the bot trains on
  the base data plus this file, so a restarted bot finds the activated model's data unchanged.
- ``topics.yml``: new knowledge-base topics (the knowledge base's own shape: ``topics.<intent>``
  with ``title`` and ``answer`` in ``en`` and ``zh``), which the bot adds to its knowledge base.

Every write goes to a temporary file first and replaces the old one (``os.replace``), and every file
written is read back with the NLU's own reader: a text the reader would see differently (entity
markup, a leading ``#``) is refused before anything is stored.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nlu.errors import TrainingDataError
from nlu.featurizer import normalize
from nlu.reader import load_training_data, reads_yaml
from nlu.results import FALLBACK_INTENT
from nlu.training_data import Example, TrainingData

logger = logging.getLogger(__name__)

PENDING_FILE = "pending.yml"
ACCEPTED_FILE = "accepted.yml"
TOPICS_FILE = "topics.yml"
MAX_EXAMPLE_CHARS = 300
MAX_EXAMPLES_PER_CALL = 200
MAX_ANSWER_CHARS = 4000  # Telegram's message limit is 4096 characters
MAX_TITLE_CHARS = 40  # a button label
LANGUAGES = ("en", "zh")
INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
RESERVED_INTENTS = frozenset({FALLBACK_INTENT})


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class AdditionError(TrainingDataError):
    """An example or topic the dashboard refuses; the message says which and why, for the manager."""


@dataclass(frozen=True)
class NewTopic:
    """A knowledge-base topic created from the dashboard: its intent, button titles and answers."""

    intent: str
    title: dict[str, str]
    answer: dict[str, str]


def check_intent_name(name: str) -> str:
    """``name`` stripped, if it can be an intent: lower-case letters, digits and ``_``, 2-64 long.

    Raises:
        AdditionError: anything else, or a name the NLU reserves.
    """
    name = name.strip()
    if not INTENT_NAME.match(name):
        raise AdditionError(
            f"invalid intent name {name[:80]!r}: use 2-64 lower-case letters, digits and underscores, "
            "starting with a letter (e.g. shipping_to_mars)"
        )
    if name in RESERVED_INTENTS:
        raise AdditionError(f"intent name {name!r} is reserved by the NLU")
    return name


def _block(examples: Sequence[Example]) -> str:
    """Rasa NLU YAML for ``examples``, one ``- intent`` block per intent in first-seen order."""
    by_intent: dict[str, list[str]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example.text)
    lines = ['version: "3.1"', "", "# Written by the Rapport dashboard; edit with care.", "nlu:"]
    for intent, texts in by_intent.items():
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in texts]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(content, encoding="utf-8")
    os.replace(temporary, path)


def _read_examples(path: Path) -> tuple[Example, ...]:
    if not path.is_file():
        return ()
    return reads_yaml(path.read_text(encoding="utf-8"), path=str(path)).examples


def _clean(text: str) -> str:
    """One line: newlines and runs of spaces become one space (a training example is one line)."""
    return " ".join(text.split())


class DeploymentData:
    """The training data and topics of one deployment: the base files plus what managers added.

    Args:
        directory: where this deployment's additions live (``<data_dir>/nlu``).
        base_paths: the base training data (``RAPPORT_NLU_DATA``, else the bundled files).
    """

    def __init__(self, directory: Path, base_paths: Sequence[Path]) -> None:
        self.directory = directory
        self.base_paths = tuple(base_paths)

    @property
    def lock(self) -> threading.Lock:
        """One lock per folder and process: additions and the retraining's promotion never interleave."""
        key = self.directory.resolve()
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(key, threading.Lock())

    @property
    def pending_path(self) -> Path:
        """Examples waiting for the next retraining."""
        return self.directory / PENDING_FILE

    @property
    def accepted_path(self) -> Path:
        """Examples an activated model learned."""
        return self.directory / ACCEPTED_FILE

    @property
    def topics_path(self) -> Path:
        """Knowledge-base topics created in the dashboard."""
        return self.directory / TOPICS_FILE

    def training_paths(self, *, accepted: Path | None = None) -> list[Path]:
        """What the bot trains on: the base data and the accepted examples (when there are any)."""
        extra = accepted or self.accepted_path
        return [*self.base_paths, *([extra] if extra.is_file() else [])]

    def active_data(self) -> TrainingData:
        """The data the active model should have been trained on (base + accepted)."""
        return load_training_data(self.training_paths())

    def pending(self) -> tuple[Example, ...]:
        """Examples assigned since the last activated retraining."""
        return _read_examples(self.pending_path)

    def accepted(self) -> tuple[Example, ...]:
        """Examples earlier retrainings learned."""
        return _read_examples(self.accepted_path)

    def topics(self) -> dict[str, NewTopic]:
        """Topics created in the dashboard, by intent."""
        if not self.topics_path.is_file():
            return {}
        raw = yaml.safe_load(self.topics_path.read_text(encoding="utf-8")) or {}
        found: dict[str, NewTopic] = {}
        for intent, topic in (raw.get("topics") or {}).items():
            found[str(intent)] = NewTopic(str(intent), dict(topic["title"]), dict(topic["answer"]))
        return found

    def known_intents(self) -> list[str]:
        """Intents of the base data, the accepted and pending examples, and the created topics."""
        intents = set(self.active_data().intents)
        intents.update(example.intent for example in self.pending())
        intents.update(self.topics())
        return sorted(intents)

    def _check_texts(self, texts: Iterable[str], intent: str) -> list[str]:
        """The cleaned texts to add under ``intent``, or an error naming each bad one."""
        cleaned = [_clean(text) for text in texts]
        if not cleaned:
            raise AdditionError("no example texts were selected")
        if len(cleaned) > MAX_EXAMPLES_PER_CALL:
            raise AdditionError(f"{len(cleaned)} examples at once; at most {MAX_EXAMPLES_PER_CALL}")
        problems: list[str] = []
        existing: dict[str, str] = {}
        for example in (*self.active_data().examples, *self.pending()):
            existing.setdefault(normalize(example.text), example.intent)
        seen: set[str] = set()
        kept: list[str] = []
        for text in cleaned:
            key = normalize(text)
            if not text:
                problems.append("an empty example")
            elif len(text) > MAX_EXAMPLE_CHARS:
                problems.append(
                    f"{text[:40]!r}… is {len(text)} characters long (at most {MAX_EXAMPLE_CHARS})"
                )
            elif key in seen:
                problems.append(f"{text!r} is selected twice")
            elif key in existing and existing[key] == intent:
                problems.append(f"{text!r} is already an example of {intent!r}")
            elif key in existing:
                problems.append(f"{text!r} is already an example of another intent, {existing[key]!r}")
            else:
                parsed = reads_yaml(_block([Example(text, intent)])).examples
                if [(e.text, e.intent) for e in parsed] != [(text, intent)]:
                    problems.append(
                        f"{text!r} would not be read back as written (Rasa entity markup or a leading '#')"
                    )
            seen.add(key)
            kept.append(text)
        if problems:
            raise AdditionError("refused, nothing was added: " + "; ".join(problems))
        return kept

    def add_examples(self, intent: str, texts: Iterable[str]) -> int:
        """Add ``texts`` as pending examples of an existing ``intent``; how many were added.

        All or nothing: one empty, too long, duplicate or unreadable text and none is added.

        Raises:
            AdditionError: an invalid or unknown intent, or bad texts (each named).
        """
        intent = check_intent_name(intent)
        with self.lock:
            if intent not in self.known_intents():
                raise AdditionError(
                    f"unknown intent {intent!r}: pick an existing intent, or create a new topic for it"
                )
            kept = self._check_texts(texts, intent)
            self._write_pending([*self.pending(), *(Example(text, intent) for text in kept)])
        logger.info("added %d pending examples to intent %s", len(kept), intent)
        return len(kept)

    def create_topic(self, topic: NewTopic, texts: Iterable[str]) -> int:
        """Create a knowledge-base topic for a new intent with ``texts`` as its first (pending) examples.

        The intent needs at least two examples, and a title and an answer in every language.

        Raises:
            AdditionError: an invalid or existing intent, a missing title or answer, or bad texts.
        """
        intent = check_intent_name(topic.intent)
        problems = []
        for lang in LANGUAGES:
            title = _clean(topic.title.get(lang, ""))
            answer = topic.answer.get(lang, "").strip()
            if not title:
                problems.append(f"the {lang} title is empty")
            elif len(title) > MAX_TITLE_CHARS:
                problems.append(f"the {lang} title is {len(title)} characters (at most {MAX_TITLE_CHARS})")
            if not answer:
                problems.append(f"the {lang} answer is empty")
            elif len(answer) > MAX_ANSWER_CHARS:
                problems.append(f"the {lang} answer is {len(answer)} characters (at most {MAX_ANSWER_CHARS})")
        if problems:
            raise AdditionError("refused, nothing was added: " + "; ".join(problems))
        with self.lock:
            if intent in self.known_intents():
                raise AdditionError(f"intent {intent!r} already exists: assign the questions to it instead")
            kept = self._check_texts(texts, intent)
            if len(kept) < 2:
                raise AdditionError("a new topic needs at least 2 example questions to be learned")
            topics = self._raw_topics()
            topics[intent] = {
                "title": {lang: _clean(topic.title[lang]) for lang in LANGUAGES},
                "answer": {lang: topic.answer[lang].strip() for lang in LANGUAGES},
            }
            self._write_pending([*self.pending(), *(Example(text, intent) for text in kept)])
            _write_atomic(
                self.topics_path,
                "# Knowledge-base topics created in the Rapport dashboard (same shape as the bundled one).\n"
                + yaml.safe_dump({"version": 1, "topics": topics}, allow_unicode=True, sort_keys=True),
            )
        logger.info("created topic %s with %d pending examples", intent, len(kept))
        return len(kept)

    def _raw_topics(self) -> dict[str, Any]:
        if not self.topics_path.is_file():
            return {}
        raw = yaml.safe_load(self.topics_path.read_text(encoding="utf-8")) or {}
        return dict(raw.get("topics") or {})

    def _write_pending(self, examples: Sequence[Example]) -> None:
        if examples:
            _write_atomic(self.pending_path, _block(examples))
        elif self.pending_path.exists():
            self.pending_path.unlink()

    def candidate_accepted(self, pending: Sequence[Example], path: Path) -> Path:
        """Write the accepted examples plus ``pending`` to ``path`` (the retraining's candidate file)."""
        _write_atomic(path, _block([*self.accepted(), *pending]))
        return path

    def promote(self, candidate: Path, learned: Sequence[Example]) -> None:
        """Make ``candidate`` the accepted file and drop the ``learned`` examples from pending.

        Examples assigned while the retraining ran stay pending for the next one.
        """
        learned_keys = {(e.text, e.intent) for e in learned}
        with self.lock:
            os.replace(candidate, self.accepted_path)
            self._write_pending([e for e in self.pending() if (e.text, e.intent) not in learned_keys])

    def version(self) -> tuple[int, ...]:
        """Changes whenever an addition or a promotion is written (modification times)."""
        return tuple(
            path.stat().st_mtime_ns if path.exists() else 0
            for path in (self.pending_path, self.accepted_path, self.topics_path)
        )
