"""The training data model: examples, entity annotations, regexes, lookup tables and synonyms."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MIN_EXAMPLES_PER_INTENT = 2


@dataclass(frozen=True)
class EntityAnnotation:
    """An entity marked in a training example (``[text](entity)`` in Rasa YAML)."""

    entity: str
    start: int
    end: int
    value: str
    role: str | None = None


@dataclass(frozen=True)
class Example:
    """One labelled utterance; ``source`` is ``file:line`` so messages can point at it."""

    text: str
    intent: str
    entities: tuple[EntityAnnotation, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class RegexPattern:
    """A named regular expression (Rasa ``regex:``); its name is the entity it extracts."""

    name: str
    pattern: str
    source: str = ""


@dataclass(frozen=True)
class LookupTable:
    """A named list of literal values (Rasa ``lookup:``); its name is the entity it extracts."""

    name: str
    elements: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class TrainingData:
    """Everything read from one or more training files.

    ``synonyms`` maps a lower-cased surface form to its canonical value (Rasa ``synonym:`` and
    ``{"value": ...}`` annotations).
    """

    examples: tuple[Example, ...] = ()
    regexes: tuple[RegexPattern, ...] = ()
    lookups: tuple[LookupTable, ...] = ()
    synonyms: dict[str, str] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        """The distinct intent labels, sorted."""
        return sorted({example.intent for example in self.examples})

    @property
    def texts(self) -> list[str]:
        """The example texts, in order."""
        return [example.text for example in self.examples]

    @property
    def labels(self) -> list[str]:
        """The example intents, in order."""
        return [example.intent for example in self.examples]

    def merge(self, *others: TrainingData) -> TrainingData:
        """Concatenate this data with others; later synonyms win on conflicts."""
        synonyms = dict(self.synonyms)
        for other in others:
            synonyms.update(other.synonyms)
        return TrainingData(
            examples=self.examples + tuple(e for o in others for e in o.examples),
            regexes=self.regexes + tuple(r for o in others for r in o.regexes),
            lookups=self.lookups + tuple(t for o in others for t in o.lookups),
            synonyms=synonyms,
        )

    def fingerprint(self) -> str:
        """SHA-256 of the content (not the file names), so a model knows when its data changed."""
        content = {
            "examples": [
                [e.text, e.intent, [[a.entity, a.start, a.end, a.value, a.role] for a in e.entities]]
                for e in self.examples
            ],
            "regexes": [[r.name, r.pattern] for r in self.regexes],
            "lookups": [[t.name, list(t.elements)] for t in self.lookups],
            "synonyms": sorted(self.synonyms.items()),
        }
        blob = json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()


def sanitize(examples: Iterable[Example]) -> tuple[Example, ...]:
    """Drop empty texts and exact duplicates (same text and intent), keeping the first occurrence."""
    seen: set[tuple[str, str]] = set()
    kept: list[Example] = []
    for example in examples:
        key = (example.text.strip(), example.intent)
        if not key[0] or key in seen:
            continue
        seen.add(key)
        kept.append(example)
    return tuple(kept)


def validate(data: TrainingData) -> list[str]:
    """Warnings about thin or contradictory data (also logged): why a model may behave oddly.

    Warns on intents with fewer than ``MIN_EXAMPLES_PER_INTENT`` examples and on the same text
    (case-insensitively) labelled with two different intents.
    """
    warnings: list[str] = []
    counts: dict[str, int] = defaultdict(int)
    first_seen: dict[str, Example] = {}
    for example in data.examples:
        counts[example.intent] += 1
        key = " ".join(example.text.lower().split())
        previous = first_seen.setdefault(key, example)
        if previous.intent != example.intent:
            warnings.append(
                f"{example.source}: example {example.text!r} is under intent {example.intent!r} "
                f"and under {previous.intent!r} ({previous.source})"
            )
    for intent, count in sorted(counts.items()):
        if count < MIN_EXAMPLES_PER_INTENT:
            warnings.append(
                f"intent {intent!r} has {count} example(s); at least {MIN_EXAMPLES_PER_INTENT} are needed "
                "for it to be learned reliably"
            )
    for message in warnings:
        logger.warning("training data: %s", message)
    return warnings
