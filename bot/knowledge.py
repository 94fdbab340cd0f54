"""The knowledge base: what the bot answers for each intent, in English and Chinese."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bot.errors import KnowledgeBaseError
from bot.i18n import DEFAULT_LANGUAGE

logger = logging.getLogger(__name__)

MAX_SUGGESTIONS = 3
_DEFAULT_MIN_CONFIDENCE = 0.45


@dataclass(frozen=True)
class Topic:
    """One intent's answers, button title and related topics."""

    intent: str
    title: dict[str, str]
    answer: dict[str, str]
    follow_up: tuple[str, ...] = ()
    suggest: bool = True
    entity_answers: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def title_in(self, lang: str) -> str:
        """The button label in `lang`, English when missing."""
        return self.title.get(lang) or self.title.get(DEFAULT_LANGUAGE) or self.intent

    def answer_in(self, lang: str, entities: Mapping[str, str] | None = None) -> str:
        """The reply in `lang`; an entity-specific reply wins when the user named e.g. a plan."""
        for entity, value in (entities or {}).items():
            variants = self.entity_answers.get(entity, {}).get(value.lower())
            if variants:
                return variants.get(lang) or variants[DEFAULT_LANGUAGE]
        return self.answer.get(lang) or self.answer[DEFAULT_LANGUAGE]


@dataclass(frozen=True)
class KnowledgeBase:
    """Intent → topic, plus the confidence below which the bot does not trust the NLU."""

    topics: dict[str, Topic]
    min_confidence: float = _DEFAULT_MIN_CONFIDENCE
    default_suggestions: tuple[str, ...] = ()

    def topic(self, intent: str | None) -> Topic | None:
        """The topic of `intent`, or None when the knowledge base has no answer for it."""
        return self.topics.get(intent) if intent else None

    def can_answer(self, intent: str | None, confidence: float | None) -> bool:
        """Whether to answer `intent` rather than fall back."""
        topic = self.topic(intent)
        return (
            topic is not None
            and topic.intent != "out_of_scope"
            and (confidence or 0.0) >= self.min_confidence
        )

    def suggestions(self, ranking: Iterable[str], *, limit: int = MAX_SUGGESTIONS) -> list[Topic]:
        """Up to `limit` suggestable topics: the NLU's next guesses first, then the defaults."""
        chosen: list[Topic] = []
        for intent in [*ranking, *self.default_suggestions]:
            topic = self.topics.get(intent)
            if topic is not None and topic.suggest and topic not in chosen:
                chosen.append(topic)
            if len(chosen) >= limit:
                break
        return chosen


def _texts(raw: Any, where: str) -> dict[str, str]:
    if isinstance(raw, str):
        return {DEFAULT_LANGUAGE: raw.strip()}
    if not isinstance(raw, dict) or not raw.get(DEFAULT_LANGUAGE):
        raise KnowledgeBaseError(f"{where} needs an '{DEFAULT_LANGUAGE}' text, got {raw!r:.80}")
    return {str(lang): str(text).strip() for lang, text in raw.items() if text}


def _topic(intent: str, raw: Any, source: str) -> Topic:
    where = f"{source}: topic {intent!r}"
    if not isinstance(raw, dict) or "answer" not in raw:
        raise KnowledgeBaseError(f"{where} needs an 'answer' mapping")
    entity_answers: dict[str, dict[str, dict[str, str]]] = {}
    for entity, values in (raw.get("entity_answers") or {}).items():
        if not isinstance(values, dict):
            raise KnowledgeBaseError(f"{where}: entity_answers.{entity} must map values to texts")
        entity_answers[str(entity)] = {
            str(value).lower(): _texts(texts, f"{where} entity {entity}={value}")
            for value, texts in values.items()
        }
    follow_up = raw.get("follow_up") or []
    if not isinstance(follow_up, list):
        raise KnowledgeBaseError(f"{where}: follow_up must be a list of intents, got {follow_up!r:.80}")
    return Topic(
        intent=intent,
        title=_texts(raw.get("title") or intent, f"{where} title"),
        answer=_texts(raw["answer"], f"{where} answer"),
        follow_up=tuple(str(item) for item in follow_up[:MAX_SUGGESTIONS]),
        suggest=bool(raw.get("suggest", True)),
        entity_answers=entity_answers,
    )


def parse_knowledge_base(text: str, *, source: str = "<string>") -> KnowledgeBase:
    """Build a knowledge base from YAML text; unknown follow-up intents are an error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("topics"), dict) or not data["topics"]:
        raise KnowledgeBaseError(f"{source} needs a non-empty 'topics' mapping")
    topics = {str(intent): _topic(str(intent), raw, source) for intent, raw in data["topics"].items()}
    for topic in topics.values():
        unknown = [item for item in topic.follow_up if item not in topics]
        if unknown:
            raise KnowledgeBaseError(f"{source}: topic {topic.intent!r} follows up unknown topics {unknown}")
    defaults = tuple(str(item) for item in data.get("default_suggestions") or [])
    if unknown_defaults := [item for item in defaults if item not in topics]:
        raise KnowledgeBaseError(f"{source}: default_suggestions names unknown topics {unknown_defaults}")
    try:
        min_confidence = float(data.get("min_confidence", _DEFAULT_MIN_CONFIDENCE))
    except (TypeError, ValueError) as exc:
        raise KnowledgeBaseError(f"{source}: min_confidence must be a number") from exc
    if not 0.0 <= min_confidence <= 1.0:
        raise KnowledgeBaseError(f"{source}: min_confidence={min_confidence} must lie in [0, 1]")
    return KnowledgeBase(topics=topics, min_confidence=min_confidence, default_suggestions=defaults)


def load_knowledge_base(path: Path | None = None) -> KnowledgeBase:
    """Read the knowledge base at `path`, or the bundled default for an AI API start-up."""
    if path is None:
        text = resources.files("bot").joinpath("data/knowledge_base.yml").read_text(encoding="utf-8")
        return parse_knowledge_base(text, source="bundled knowledge_base.yml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot read knowledge base {path}: {exc.strerror}") from exc
    kb = parse_knowledge_base(text, source=str(path))
    logger.info("knowledge base %s: %d topics", path, len(kb.topics))
    return kb


def with_topics(kb: KnowledgeBase, path: Path) -> KnowledgeBase:
    """`kb` plus the topics of `path` (the dashboard's `topics.yml`), when that file exists.

    A topic the knowledge base already has keeps its own answer: the dashboard only creates topics
    for intents that are new, and an operator's edit of the main file must not be overridden.
    """
    if not path.is_file():
        return kb
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot read the dashboard's topics {path}: {exc.strerror}") from exc
    added = parse_knowledge_base(text, source=str(path))
    topics = {**added.topics, **kb.topics}
    logger.info("knowledge base: %d topics from %s", len(topics) - len(kb.topics), path)
    return KnowledgeBase(
        topics=topics, min_confidence=kb.min_confidence, default_suggestions=kb.default_suggestions
    )
