"""Pure pieces of the bot: knowledge base, callback signatures, flood guard, i18n, formatting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.admin.formatting import format_duration
from bot.callbacks import MAX_CALLBACK_BYTES, CallbackCodec
from bot.errors import KnowledgeBaseError
from bot.flood import FloodGuard, FloodVerdict
from bot.handlers.community import parse_poll
from bot.i18n import MESSAGES, Html, language_of, t, t_html
from bot.knowledge import load_knowledge_base, parse_knowledge_base
from bot.replies import answer_for
from bot.understanding import Understanding
from fakeapi.formatting import parse_text

SHARED_INTENTS = {
    "greet", "goodbye", "thanks", "getting_started", "pricing", "api_keys", "rate_limits", "models",
    "billing", "account", "data_privacy", "bug_report", "feature_request", "community_events", "docs",
    "fine_tuning", "service_status", "human_handoff", "out_of_scope",
}  # fmt: skip


def test_default_knowledge_base_covers_every_shared_intent_in_both_languages() -> None:
    kb = load_knowledge_base()
    assert set(kb.topics) == SHARED_INTENTS
    for topic in kb.topics.values():
        assert topic.answer["en"] and topic.answer["zh"], topic.intent
        assert topic.title["en"] and topic.title["zh"], topic.intent
        assert len(topic.answer["en"]) <= 4096


def test_entity_specific_answer_wins() -> None:
    kb = load_knowledge_base()
    pricing = kb.topics["pricing"]
    assert pricing.answer_in("en", {"plan": "Pro"}).startswith("Pro is $20")
    assert pricing.answer_in("zh", {"plan": "enterprise"}).startswith("企业版")
    assert pricing.answer_in("en", {"plan": "platinum"}) == pricing.answer["en"]
    assert pricing.answer_in("de") == pricing.answer["en"]


def test_answer_for_low_confidence_suggests_up_to_three_topics() -> None:
    kb = load_knowledge_base()
    codec = CallbackCodec("k")
    understood = Understanding("pricing", 0.2, ranking=("pricing", "greet", "billing", "models", "docs"))
    reply = answer_for(understood, "en", kb, codec)
    assert not reply.answered
    assert reply.markup is not None
    labels = [row[0].text for row in reply.markup.inline_keyboard]
    assert labels == ["Pricing", "Billing", "Models"]  # greet is not suggested


def test_answer_for_out_of_scope_explains_and_suggests() -> None:
    kb = load_knowledge_base()
    reply = answer_for(Understanding("out_of_scope", 0.9), "zh", kb, CallbackCodec("k"))
    assert not reply.answered
    assert reply.text.startswith(kb.topics["out_of_scope"].answer["zh"])
    assert reply.markup is not None and len(reply.markup.inline_keyboard) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("topics: [", "not valid YAML"),
        ("topics: {}", "non-empty 'topics'"),
        ("topics: {a: {title: x}}", "needs an 'answer'"),
        ("topics: {a: {answer: {zh: 你好}}}", "needs an 'en' text"),
        ("topics: {a: {answer: hi, follow_up: [b]}}", "unknown topics ['b']"),
        ("min_confidence: 2\ntopics: {a: {answer: hi}}", "min_confidence=2.0"),
        ("default_suggestions: [x]\ntopics: {a: {answer: hi}}", "default_suggestions names unknown"),
    ],
)
def test_bad_knowledge_base_is_rejected_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(KnowledgeBaseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_knowledge_base(text)


def test_missing_knowledge_base_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match=r"kb\.yml"):
        load_knowledge_base(tmp_path / "kb.yml")


def test_callback_round_trip_binding_and_expiry() -> None:
    now = [1_800_000_000.0]
    codec = CallbackCodec("secret", clock=lambda: now[0])
    data = codec.encode("forget", "yes", user_id=42)
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    decoded = codec.decode(data, user_id=42)
    assert decoded is not None and (decoded.action, decoded.arg) == ("forget", "yes")
    assert codec.decode(data, user_id=43) is None  # someone else's button
    assert CallbackCodec("other", clock=lambda: now[0]).decode(data, user_id=42) is None
    tampered = data.replace(":yes:", ":no:")
    assert codec.decode(tampered, user_id=42) is None
    now[0] += 601  # forget buttons live ten minutes
    assert codec.decode(data, user_id=42) is None


def test_callback_encode_rejects_bad_input() -> None:
    codec = CallbackCodec("secret")
    with pytest.raises(ValueError, match="unknown callback action"):
        codec.encode("nuke")
    with pytest.raises(ValueError, match="must not contain"):
        codec.encode("topic", "a:b")
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        codec.encode("topic", "x" * 60)


def test_flood_guard_warns_once_then_drops_then_recovers() -> None:
    now = [0.0]
    guard = FloodGuard(3, 10.0, clock=lambda: now[0])
    verdicts = [guard.check(1) for _ in range(6)]
    assert verdicts == [FloodVerdict.OK] * 3 + [FloodVerdict.WARN, FloodVerdict.DROP, FloodVerdict.DROP]
    assert guard.check(2) is FloodVerdict.OK  # per user
    now[0] = 10.5
    assert guard.check(1) is FloodVerdict.OK


def test_flood_guard_prunes_idle_users() -> None:
    now = [0.0]
    guard = FloodGuard(1, 1.0, clock=lambda: now[0], max_users=2)
    guard.check(1)
    guard.check(2)
    now[0] = 5.0
    guard.check(3)
    assert set(guard._seen) == {3}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-hans", "zh"),
        ("zh_TW", "zh"),
        ("ZH", "zh"),
        ("en-GB", "en"),
        ("de", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_language_of(code: str | None, expected: str) -> None:
    assert language_of(code) == expected


def test_every_message_has_english_and_chinese() -> None:
    for key, variants in MESSAGES.items():
        assert set(variants) == {"en", "zh"}, key
    assert t("welcome", "fr", name="Zoé").startswith("Hi Zoé!")
    with pytest.raises(KeyError):
        t("no-such-message", "en")


@pytest.mark.parametrize("title", ["R&D <Dev> Team", "<b>bold</b>", "a &amp; b", "<", "&"])
def test_t_html_escapes_every_value_but_html_ones(title: str) -> None:
    mention = Html('<a href="tg://user?id=7">Zoé</a>')
    text = t_html("group_welcome", "en", chat=title, name=mention)
    plain, entities = parse_text(text, "HTML")  # what Telegram would show; it raises on bad markup
    assert plain == t("group_welcome", "en", chat=title, name="Zoé")
    assert [e["type"] for e in entities] == ["text_mention"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["Best", "day?", "|", "Mon", "|", "Tue"], ("Best day?", ["Mon", "Tue"])),
        (["Q?", "|", "a"], None),
        (["|", "a", "|", "b"], None),
        ([], None),
        (["Q", *(f"| o{i}" for i in range(11))], None),
    ],
)
def test_parse_poll(args: list[str], expected: tuple[str, list[str]] | None) -> None:
    assert parse_poll(args) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.2, "1 s"), (45, "45 s"), (600, "10 min"), (7500, "2 h 5 min")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
