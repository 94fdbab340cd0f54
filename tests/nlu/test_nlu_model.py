"""Parsing with the default model: intents in both languages, Rasa's shape, and bad input."""

from __future__ import annotations

import pytest

from nlu import FALLBACK_INTENT, NLUModel, ParseResult


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hello there", "greet"),
        ("how much does the pro plan cost per month?", "pricing"),
        ("I want to talk to a human", "human_handoff"),
        ("where can I find my api key", "api_keys"),
        ("is the api down right now", "service_status"),
        ("你好", "greet"),
        ("专业版多少钱", "pricing"),
        ("我要找人工客服", "human_handoff"),
        ("怎么重置密码", "account"),
    ],
)
def test_default_model_understands_both_languages(default_model: NLUModel, text: str, intent: str) -> None:
    assert default_model.parse(text).intent.name == intent


def test_entities_in_the_default_data(default_model: NLUModel) -> None:
    text = "Does the professional plan include rapport-vision from 2026-12-01? mail ops@acme.io"
    found = {(e.entity, e.value) for e in default_model.parse(text).entities}
    assert found == {
        ("plan", "pro"),
        ("model", "rapport-vision"),
        ("date", "2026-12-01"),
        ("email", "ops@acme.io"),
    }
    assert {(e.entity, e.value) for e in default_model.parse("企业版的限流规则").entities} == {
        ("plan", "enterprise")
    }


def test_ranking_is_sorted_top_ten_and_matches_rasa_shape(default_model: NLUModel) -> None:
    result = default_model.parse("how do I fine-tune rapport-mini")
    payload = result.to_rasa()
    assert set(payload) == {"text", "intent", "entities", "intent_ranking"}
    confidences = [s.confidence for s in result.intent_ranking]
    assert len(confidences) == 10
    assert confidences == sorted(confidences, reverse=True)
    assert result.intent == result.intent_ranking[0]
    assert ParseResult.from_rasa(payload) == result


def test_fallback_keeps_the_original_ranking(default_model: NLUModel) -> None:
    strict = NLUModel(
        default_model.featurizer,
        default_model.classifier,
        default_model.extractor,
        type(default_model.policy)(threshold=1.01),
        encoder=default_model.encoder,
    )
    plain = default_model.parse("hello")
    result = strict.parse("hello")
    assert result.intent.name == FALLBACK_INTENT
    assert result.intent.confidence == 1.01 or result.intent.confidence == pytest.approx(1.01)
    assert result.intent_ranking[0].name == FALLBACK_INTENT
    assert result.intent_ranking[1:] == plain.intent_ranking[:9]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_is_a_fallback_with_zero_confidence(default_model: NLUModel, text: str) -> None:
    result = default_model.parse(text)
    assert result.intent.name == FALLBACK_INTENT
    assert result.intent.confidence == 0.0
    assert result.entities == ()
    assert result.text == text


@pytest.mark.parametrize(
    "text",
    [
        "pricing " * 1250,  # 10,000 characters
        "\x00\x07hello\x1b[31m\u200b",
        "how much is 专业版 per month, 价格?",
        "🙂🙂🙂",
        "۱۲۳ привет こんにちは",
    ],
)
def test_odd_input_gets_a_defined_result(default_model: NLUModel, text: str) -> None:
    result = default_model.parse(text)
    assert result.text == text
    assert 0.0 <= result.intent.confidence <= 1.0
    for entity in result.entities:
        assert 0 <= entity.start < entity.end <= len(text)


def test_non_string_input_raises_type_error(default_model: NLUModel) -> None:
    with pytest.raises(TypeError, match="must be a string"):
        default_model.parse(None)  # type: ignore[arg-type]


def test_batch_equals_single_parses(default_model: NLUModel) -> None:
    texts = ["hi", "", "专业版多少钱", "is my data encrypted", "tell me a joke"]
    batch = default_model.parse_batch(texts)
    singles = [default_model.parse(t) for t in texts]
    assert [r.intent.name for r in batch] == [r.intent.name for r in singles]
    for one, other in zip(batch, singles, strict=True):
        assert one.intent.confidence == pytest.approx(other.intent.confidence, abs=1e-5)
        assert one.entities == other.entities
    assert default_model.parse_batch([]) == []


async def test_aparse_matches_parse(default_model: NLUModel) -> None:
    assert (await default_model.aparse("thanks a lot")).intent.name == "thanks"
