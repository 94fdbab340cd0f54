"""ParseResult: Rasa's exact /model/parse shape, both ways."""

from __future__ import annotations

from typing import Any

import pytest

import nlu
from nlu import Entity, IntentScore, ParsePayloadError, ParseResult


def _result() -> ParseResult:
    intent = IntentScore("pricing", 0.9)
    return ParseResult(
        text="how much is pro",
        intent=intent,
        entities=(Entity("plan", 12, 15, "pro", 1.0, "RegexEntityExtractor"),),
        intent_ranking=(intent, IntentScore("greet", 0.1)),
    )


def test_to_rasa_has_exactly_rasas_keys() -> None:
    payload = _result().to_rasa()
    assert payload == {
        "text": "how much is pro",
        "intent": {"name": "pricing", "confidence": 0.9},
        "entities": [
            {
                "entity": "plan",
                "start": 12,
                "end": 15,
                "value": "pro",
                "confidence_entity": 1.0,
                "extractor": "RegexEntityExtractor",
            }
        ],
        "intent_ranking": [{"name": "pricing", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}],
    }


def test_role_is_included_only_when_set() -> None:
    entity = Entity("city", 0, 5, "Paris", 0.9, "DIETClassifier", role="destination")
    assert entity.to_rasa()["role"] == "destination"
    assert "role" not in Entity("city", 0, 5, "Paris", 0.9, "DIETClassifier").to_rasa()


def test_from_rasa_round_trips() -> None:
    result = _result()
    assert ParseResult.from_rasa(result.to_rasa()) == result


def test_from_rasa_accepts_a_real_rasa_payload_with_extra_keys() -> None:
    payload: dict[str, Any] = {
        "text": "book a flight",
        "intent": {"id": 123, "name": "book", "confidence": 0.8},
        "entities": [
            {"entity": "n", "start": 0, "end": 4, "value": 2, "extractor": "DucklingEntityExtractor"}
        ],
        "response_selector": {"all_retrieval_intents": []},
    }
    result = ParseResult.from_rasa(payload)
    assert result.intent == IntentScore("book", 0.8)
    assert result.intent_ranking == (IntentScore("book", 0.8),)
    assert result.entities[0].value == "2"
    assert result.entities[0].confidence_entity == 1.0


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([], "JSON object"),
        ({"intent": {"name": "x", "confidence": 1}}, "'text'"),
        ({"text": "a"}, "'intent'"),
        ({"text": "a", "intent": {"name": "", "confidence": 1}}, "intent.name"),
        ({"text": "a", "intent": {"name": "x", "confidence": "high"}}, "confidence"),
        ({"text": "a", "intent": {"name": "x", "confidence": float("nan")}}, "confidence"),
        ({"text": "a", "intent": {"name": "x", "confidence": 1}, "entities": {}}, "'entities'"),
        ({"text": "a", "intent": {"name": "x", "confidence": 1}, "entities": [{"entity": "e"}]}, "offsets"),
        ({"text": "a", "intent": {"name": "x", "confidence": 1}, "intent_ranking": "no"}, "intent_ranking"),
    ],
)
def test_from_rasa_rejects_bad_shapes(payload: Any, match: str) -> None:
    with pytest.raises(ParsePayloadError, match=match):
        ParseResult.from_rasa(payload)


def test_package_exports_what_it_declares() -> None:
    assert sorted(nlu.__all__) == sorted(set(nlu.__all__))
    for name in nlu.__all__:
        assert hasattr(nlu, name), name
    assert nlu.FALLBACK_INTENT == "nlu_fallback"
    assert nlu.OUT_OF_SCOPE_INTENT == "out_of_scope"
