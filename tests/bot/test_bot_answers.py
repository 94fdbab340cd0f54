"""Free-text questions, fallbacks, topic buttons and bad inputs, against the local Bot API."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from bot.app import callback_secret
from bot.callbacks import CallbackCodec
from bot.i18n import t
from bot.understanding import Understanding

if TYPE_CHECKING:
    from conftest import BotHarness


def _buttons(markup: dict | None) -> list[tuple[str, str]]:
    assert markup is not None
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def test_question_is_answered_from_the_knowledge_base_and_logged(bot: BotHarness) -> None:
    alice = bot.user(2001, "Alice")
    reply = await bot.say(alice, "How much does the Pro plan cost per month?")
    expected = bot.services.knowledge.topics["pricing"]
    assert reply.text in (expected.answer["en"], expected.entity_answers["plan"]["pro"]["en"])
    labels = [label for label, _ in _buttons(reply.reply_markup)]
    assert labels == ["Billing", "Rate limits", "Models"]
    [event] = await bot.events(2001)
    assert event.kind == "message"
    assert event.intent == "pricing"
    assert event.confidence is not None and event.confidence >= bot.services.knowledge.min_confidence
    assert event.text is None  # store_text is off by default
    assert event.chat_id == 2001


async def test_the_nlu_reads_each_question_once_for_the_log_and_the_answer(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    understander = bot.services.understander
    parsed: list[str] = []
    understand = understander.understand

    async def counting(text: str) -> Understanding:
        parsed.append(text)
        return await understand(text)

    monkeypatch.setattr(understander, "understand", counting)
    alice = bot.user(2014, "Alice")
    for question in ("How much does the Pro plan cost per month?", "how do I create an API key?"):
        await bot.say(alice, question)
    events = await bot.events(2014)
    assert parsed == ["How much does the Pro plan cost per month?", "how do I create an API key?"]
    assert [e.intent for e in events] == ["pricing", "api_keys"]


async def test_chinese_question_gets_a_chinese_answer(bot: BotHarness) -> None:
    li = bot.user(2002, "李", language="zh-hans")
    reply = await bot.say(li, "专业版多少钱？")
    pricing = bot.services.knowledge.topics["pricing"]
    assert reply.text in (pricing.answer["zh"], pricing.entity_answers["plan"]["pro"]["zh"])


async def test_out_of_scope_gets_fallback_with_suggestions_logged_as_unanswered(bot: BotHarness) -> None:
    alice = bot.user(2003, "Alice")
    reply = await bot.say(alice, "What will the weather be like in Paris tomorrow?")
    assert reply.text is not None and t("fallback", "en") in reply.text
    buttons = _buttons(reply.reply_markup)
    assert 1 <= len(buttons) <= 3
    [event] = await bot.events(2003)
    assert event.kind == "fallback"
    assert event.attributes is not None and event.attributes["unanswered"] is True


async def test_topic_button_answers_that_topic(bot: BotHarness) -> None:
    alice = bot.user(2004, "Alice")
    reply = await bot.say(alice, "What will the weather be like in Paris tomorrow?")
    label, data = _buttons(reply.reply_markup)[0]
    topic = next(topic for topic in bot.services.knowledge.topics.values() if topic.title["en"] == label)
    since = bot.mark()
    answer = await bot.press(alice, reply, data)
    assert answer.ok and "text" not in answer.params
    followed = await bot.reply_to(2004, since)
    assert followed.text == topic.answer["en"]
    events = await bot.events(2004)
    assert [(e.kind, e.intent) for e in events][-1] == ("callback", topic.intent)


@pytest.mark.parametrize(
    "data",
    ["topic:pricing", "topic:pricing:1abc:AAAAAAAAAAAA", "rm -rf /", "forget:yes:0:xxxxxxxxxxxx", "x" * 64],
    ids=["unsigned", "bad-signature", "garbage", "forged-forget", "max-length"],
)
async def test_forged_callback_data_is_answered_as_expired(bot: BotHarness, data: str) -> None:
    alice = bot.user(2005, "Alice")
    reply = await bot.command(alice, "help")
    answer = await bot.press(alice, reply, data, forged=True)
    assert answer.params.get("text") == "This button has expired."
    [_, event] = await bot.events(2005)
    assert event.kind == "callback"
    assert event.attributes is not None and event.attributes["valid"] is False


async def test_stale_callback_data_is_answered_as_expired(bot: BotHarness) -> None:
    alice = bot.user(2006, "Alice")
    reply = await bot.command(alice, "help")
    old = CallbackCodec(callback_secret(bot.settings), clock=lambda: 1_750_000_000.0)
    stale = old.encode("topic", "pricing")
    answer = await bot.press(alice, reply, stale, forged=True)
    assert answer.params.get("text") == "This button has expired."


@pytest.mark.parametrize("kind", ["sticker", "photo"])
async def test_stickers_and_photos_get_a_gentle_hint(bot: BotHarness, kind: str) -> None:
    alice = bot.user(2007, "Alice")
    since = bot.mark()
    if kind == "sticker":
        bot.api.user_sticker(alice)
    else:
        bot.api.user_photo(alice)
    reply = await bot.reply_to(2007, since)
    assert reply.text == t("non_text", "en")
    [event] = await bot.events(2007)
    assert event.kind == "message"
    assert event.attributes is not None and event.attributes["content"] == kind


@pytest.mark.parametrize(
    "text",
    [
        "a" * 4096,
        "🚀🔥 how do I get an API key? 🙏🏽👨‍👩‍👧",
        "مرحبا، كم سعر الخطة الاحترافية؟",
        "שלום \u202eRTL override\u202c test",
        "\u200b",
    ],
    ids=["4096-chars", "emoji", "arabic-rtl", "hebrew-bidi", "zero-width"],
)
async def test_unusual_text_gets_exactly_one_reply(bot: BotHarness, text: str) -> None:
    alice = bot.user(2008, "Alice")
    reply = await bot.say(alice, text)
    assert reply.text
    await bot.idle()
    assert [r for r in bot.api.sent if r.chat_id == 2008] == [reply]
    [event] = await bot.events(2008)
    assert event.kind in ("message", "fallback")
    assert event.attributes is not None and event.attributes["length"] == len(text)


async def test_edited_message_is_logged_not_answered(bot: BotHarness) -> None:
    alice = bot.user(2009, "Alice")
    original = bot.api.user_says(alice, "How much does it cost?")
    await bot.reply_to(2009, 0)
    since = bot.mark()
    bot.api.user_edits(alice, original["message"], "How much does the team plan cost?")
    events = await bot.events(2009)
    assert [e.kind for e in events] == ["message", "edited"]
    assert bot.mark() == since


async def test_unknown_command_points_to_help(bot: BotHarness) -> None:
    alice = bot.user(2010, "Alice")
    reply = await bot.command(alice, "frobnicate", "now")
    assert reply.text == t("unknown_command", "en")
    [event] = await bot.events(2010)
    assert event.kind == "command"
    assert event.attributes is not None and event.attributes["command"] == "frobnicate"


async def test_channel_posts_are_not_requested_and_never_answered(bot: BotHarness) -> None:
    bot.api.add_chat(-1001234, "channel", title="News")
    bot.api.channel_post(-1001234, "New model released!")
    await bot.idle()
    assert bot.api.state.dropped_updates == 1  # channel_post is not in allowed_updates
    assert [r for r in bot.api.sent if r.chat_id == -1001234] == []


async def test_flooding_user_is_throttled_and_logged(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    alice = bot.user(2011, "Alice")
    limit = bot.settings.flood_max_messages
    caplog.set_level(logging.WARNING, logger="bot.throttle")
    for i in range(50):
        bot.api.user_says(alice, f"hello {i}")
    events = await bot.events(2011)
    assert len(events) == 50
    throttled = [e for e in events if e.attributes and e.attributes.get("throttled")]
    assert len(throttled) == 50 - limit
    replies = [r for r in bot.api.sent if r.chat_id == 2011]
    assert len(replies) == limit + 1
    assert sum(r.text == t("flood", "en") for r in replies) == 1
    assert any("flooding" in record.message for record in caplog.records)


async def test_a_failing_handler_is_logged_with_traceback_and_user_gets_one_apology(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    alice = bot.user(2012, "Alice")
    caplog.set_level(logging.ERROR, logger="bot.handlers.errors")
    bot.api.faults.server_error(502, method="sendMessage", times=1)
    since = bot.mark()
    bot.api.user_says(alice, "how do I create an API key?")
    apology = await bot.reply_to(2012, since)
    assert apology.text == t("error", "en")
    await bot.idle()
    assert [r for r in bot.api.sent if r.chat_id == 2012] == [apology]
    [record] = [r for r in caplog.records if r.name == "bot.handlers.errors"]
    assert record.exc_info is not None


async def test_the_token_never_appears_in_logs(bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alice = bot.user(2013, "Alice")
    await bot.say(alice, "hello")
    await bot.idle()
    secret_part = bot.api.token.split(":", 1)[1]
    assert caplog.records
    assert secret_part not in caplog.text
