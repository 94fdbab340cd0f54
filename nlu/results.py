"""The parse result and the parser protocol: exactly what Rasa's ``/model/parse`` answers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nlu.errors import ParsePayloadError

FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
RANKING_LENGTH = 10


@dataclass(frozen=True)
class IntentScore:
    """One intent and the engine's calibrated confidence in it (0..1)."""

    name: str
    confidence: float


@dataclass(frozen=True)
class Entity:
    """One extracted entity; ``start``/``end`` are character offsets into the parsed text."""

    entity: str
    start: int
    end: int
    value: str
    confidence_entity: float
    extractor: str
    role: str | None = None

    def to_rasa(self) -> dict[str, Any]:
        """Rasa's entity dictionary; ``role`` appears only when set, as in Rasa."""
        payload: dict[str, Any] = {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "confidence_entity": self.confidence_entity,
            "extractor": self.extractor,
        }
        if self.role is not None:
            payload["role"] = self.role
        return payload


@dataclass(frozen=True)
class ParseResult:
    """What the NLU makes of one message: the intent, the entities and the ranking behind the intent."""

    text: str
    intent: IntentScore
    entities: tuple[Entity, ...]
    intent_ranking: tuple[IntentScore, ...]

    def to_rasa(self) -> dict[str, Any]:
        """Exactly Rasa's ``/model/parse`` JSON, so Rasa clients can consume it unchanged."""
        return {
            "text": self.text,
            "intent": {"name": self.intent.name, "confidence": self.intent.confidence},
            "entities": [entity.to_rasa() for entity in self.entities],
            "intent_ranking": [{"name": s.name, "confidence": s.confidence} for s in self.intent_ranking],
        }

    @classmethod
    def from_rasa(cls, payload: Any) -> ParseResult:
        """Validate a ``/model/parse`` payload (ours or a real Rasa server's) and build the result.

        Extra keys that Rasa adds (``id``, ``processors``, ``response_selector``...) are ignored; a
        missing ``intent_ranking`` becomes the intent alone; a missing ``confidence_entity`` (Rasa's
        regex extractor omits it) becomes 1.0. Anything else out of shape raises.

        Raises:
            ParsePayloadError: the payload is not Rasa's shape; the message names the bad field.
        """
        if not isinstance(payload, dict):
            raise ParsePayloadError(f"parse payload must be a JSON object, got {type(payload).__name__}")
        text = payload.get("text")
        if not isinstance(text, str):
            raise ParsePayloadError(f"parse payload 'text' must be a string, got {text!r}")
        intent = _intent_score(payload.get("intent"), "intent")
        raw_entities = payload.get("entities", [])
        if not isinstance(raw_entities, list):
            raise ParsePayloadError(f"parse payload 'entities' must be a list, got {raw_entities!r}")
        entities = tuple(_entity(item, index) for index, item in enumerate(raw_entities))
        raw_ranking = payload.get("intent_ranking")
        if raw_ranking is None:
            ranking: tuple[IntentScore, ...] = (intent,)
        elif isinstance(raw_ranking, list):
            ranking = tuple(
                _intent_score(item, f"intent_ranking[{index}]") for index, item in enumerate(raw_ranking)
            )
        else:
            raise ParsePayloadError(f"parse payload 'intent_ranking' must be a list, got {raw_ranking!r}")
        return cls(text=text, intent=intent, entities=entities, intent_ranking=ranking)


def _confidence(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParsePayloadError(f"{where} must be a finite number, got {value!r}")
    return min(1.0, max(0.0, float(value)))


def _intent_score(raw: Any, where: str) -> IntentScore:
    if not isinstance(raw, dict):
        raise ParsePayloadError(f"parse payload '{where}' must be an object, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ParsePayloadError(f"parse payload '{where}.name' must be a non-empty string, got {name!r}")
    return IntentScore(name=name, confidence=_confidence(raw.get("confidence"), f"{where}.confidence"))


def _entity(raw: Any, index: int) -> Entity:
    where = f"entities[{index}]"
    if not isinstance(raw, dict):
        raise ParsePayloadError(f"parse payload '{where}' must be an object, got {raw!r}")
    name = raw.get("entity")
    if not isinstance(name, str) or not name:
        raise ParsePayloadError(f"parse payload '{where}.entity' must be a non-empty string, got {name!r}")
    start, end = raw.get("start"), raw.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or start > end:
        raise ParsePayloadError(f"parse payload '{where}' has bad offsets start={start!r} end={end!r}")
    value = raw.get("value")
    if value is None:
        raise ParsePayloadError(f"parse payload '{where}.value' is missing")
    text_value = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    confidence = _confidence(raw.get("confidence_entity", 1.0), f"{where}.confidence_entity")
    extractor = raw.get("extractor", "unknown")
    role = raw.get("role")
    return Entity(
        entity=name,
        start=start,
        end=end,
        value=text_value,
        confidence_entity=confidence,
        extractor=str(extractor),
        role=role if isinstance(role, str) else None,
    )


@runtime_checkable
class IntentParser(Protocol):
    """What the bot needs from an NLU: the local engine and the remote Rasa client both fit."""

    def parse(self, text: str) -> ParseResult:
        """Parse one message."""
        ...

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Parse many messages, in order, faster than one by one."""
        ...

    async def aparse(self, text: str) -> ParseResult:
        """Parse one message without blocking the event loop for long."""
        ...
