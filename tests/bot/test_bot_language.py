"""Answers in the language a question is written in, kept for the rest of the exchange (issue 18).

The pure parts first (the script rule, the choice of reply language, what the users row keeps,
what the event log records), then mixed-language users against the local Bot API.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from telegram import Chat, Message, Update, User

from analytics.catalogue import load_catalogue
from bot.conversation import (
    LanguageSource,
    ReplyLanguage,
    Step,
    Turn,
    UserData,
    known_language,
    reply_language,
)
from bot.describe import Facts, describe
from bot.i18n import t
from bot.language import ScriptCounts, script_counts, written_language
from bot.understanding import Understanding
from bot.users import stored_language
from store import get_user
from store.campaign_reports import reachable_recipients

if TYPE_CHECKING:
    from conftest import BotHarness

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GROUP = -100_777


# --- the script rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("专业版多少钱？", "zh"),
        ("How much does the Pro plan cost?", "en"),
        ("API key 怎么用", "zh"),  # 3 ideographs against 2 Latin words
        ("How do I use 微调?", "en"),  # 2 ideographs against 4 words
        ("What does 你好 mean?", "en"),
        ("Pro版", "zh"),  # a tie goes to Chinese
        ("用 Python 调用 API 报错 rate limit exceeded", "zh"),  # 5 against 5
        ("ＡＰＩ密钥", "zh"),  # full-width Latin is Latin, one word
        ("don't know", "en"),
        ("café au lait", "en"),
        ("https://api.example.com/v1/chat/completions 打不开", "zh"),  # the URL is no English
        ("@rapport_bot 多少钱", "zh"),
        ("`openai.chat.completions.create()` 报错了", "zh"),
        ("联系 support@example.com", "zh"),
        ("🚀🔥 how do I get an API key? 🙏🏽👨\u200d👩\u200d👧", "en"),
        ("👍👍👍", None),
        ("12345", None),
        ("2026-12-01 10:00", None),
        ("???!!!", None),
        ("\u200b", None),
        ("   ", None),
        ("", None),
        (None, None),
        ("/start", None),
        ("https://example.com", None),
        ("APIキーの使い方", None),  # Japanese: kana make the kanji Japanese too
        ("使い方", None),
        ("Как получить API ключ?", None),  # Russian outweighs the one Latin word
        ("مرحبا، كم سعر الخطة الاحترافية؟", None),
        ("API 키 발급 방법", None),  # Korean
        ("https://x.com/a打不开", "zh"),  # ideographs glued to a URL still count
        ("请联系support@example.com", "zh"),
        ("/start@rapport_bot 你好", "zh"),
        ("a." * 2048, "en"),  # long hostile texts: still one answer each
        ("中" * 4096, "zh"),
        ("`" * 4096, None),
        ("a" * 4000 + "://中", "zh"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_written_language_by_script_share(text: str | None, expected: str | None) -> None:
    assert written_language(text) == expected


def test_script_counts_ideographs_one_by_one_and_latin_by_word() -> None:
    assert script_counts("API key 怎么用") == ScriptCounts(han=3, latin=2, other=0)
    assert script_counts("GPT-4 和 GPT-3.5 的区别") == ScriptCounts(han=4, latin=2, other=0)
    assert script_counts("APIキーの使い方") == ScriptCounts(han=0, latin=1, other=6)


# --- the choice of reply language ----------------------------------------------------------------


def test_a_text_that_tells_is_answered_in_its_language_and_remembered() -> None:
    data = UserData()
    assert reply_language(data, "zh", "en") == ReplyLanguage("zh", LanguageSource.TEXT)
    assert data.language == "zh"
    # a button, a command or an emoji afterwards: the language last written, not the client's
    assert reply_language(data, None, "en") == ReplyLanguage("zh", LanguageSource.EARLIER)
    assert known_language(data, "en-GB") == ReplyLanguage("zh", LanguageSource.EARLIER)
    assert reply_language(data, "en", "zh-hans") == ReplyLanguage("en", LanguageSource.TEXT)
    assert data.language == "en"


def test_nothing_written_yet_falls_back_to_the_client() -> None:
    data = UserData()
    assert reply_language(data, None, "zh-hans") == ReplyLanguage("zh", LanguageSource.CLIENT)
    assert data.language is None
    assert reply_language(None, None, "de") == ReplyLanguage("en", LanguageSource.CLIENT)
    assert reply_language(None, "zh", None) == ReplyLanguage("zh", LanguageSource.TEXT)
    assert known_language(None, None) == ReplyLanguage("en", LanguageSource.CLIENT)


@pytest.mark.parametrize(
    ("client", "writes_in", "stored"),
    [
        ("en", None, "en"),  # nothing written: the client's code, as before
        ("zh-CN", "zh", "zh-CN"),  # writes the client's language: the finer code is kept
        ("en-GB", "zh", "zh"),  # an English client writing Chinese: pushes in Chinese
        ("zh-hans", "en", "en"),
        ("de", "en", "de"),  # German maps onto English, which they write: nothing changes
        (None, "zh", "zh"),
        (None, None, None),
    ],
)
def test_the_users_row_keeps_the_language_written_when_it_differs(
    client: str | None, writes_in: str | None, stored: str | None
) -> None:
    user = User(id=1, first_name="A", is_bot=False, language_code=client)
    assert stored_language(user, writes_in) == stored


# --- what the event log records ------------------------------------------------------------------


def _private_text(text: str) -> Update:
    user = User(id=42, first_name="Alice", is_bot=False, language_code="en")
    message = Message(message_id=7, date=NOW, chat=Chat(id=42, type="private"), from_user=user, text=text)
    return Update(update_id=1, message=message)


def test_questions_and_comments_are_logged_with_their_language() -> None:
    zh = ReplyLanguage("zh", LanguageSource.TEXT)
    understood = Understanding("pricing", 0.9)
    question = describe(
        _private_text("专业版多少钱"), Facts(turn=Turn(Step.QUESTION), understood=understood, language=zh)
    )
    assert question.attributes is not None
    assert (question.attributes["lang"], question.attributes["lang_from"]) == ("zh", "text")
    comment = describe(
        _private_text("太慢了"), Facts(turn=Turn(Step.FEEDBACK_COMMENT, rating=2), language=zh)
    )
    assert comment.attributes is not None and comment.attributes["lang"] == "zh"
    earlier = ReplyLanguage("zh", LanguageSource.EARLIER)
    emoji = describe(
        _private_text("👍"), Facts(turn=Turn(Step.QUESTION), understood=understood, language=earlier)
    )
    assert emoji.attributes is not None and emoji.attributes["lang_from"] == "earlier"


def test_chatter_and_drafts_carry_no_language() -> None:
    zh = ReplyLanguage("zh", LanguageSource.TEXT)
    chatter = describe(_private_text("大家好"), Facts(turn=Turn(Step.CHATTER), language=zh))
    draft = describe(_private_text("新功能上线"), Facts(turn=Turn(Step.BROADCAST_TEXT), language=zh))
    assert chatter.attributes is not None and "lang" not in chatter.attributes
    assert draft.attributes is not None and "lang" not in draft.attributes


# --- mixed-language users against the local Bot API ---------------------------------------------


def _buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    assert markup is not None
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


def _titles(bot: BotHarness, intents: tuple[str, ...], lang: str) -> list[str]:
    return [bot.services.knowledge.topics[intent].title[lang] for intent in intents]


async def test_an_english_client_writing_chinese_gets_chinese_for_the_whole_exchange(bot: BotHarness) -> None:
    wang = bot.user(5001, "Wang", language="en")
    reply = await bot.say(wang, "专业版多少钱？")
    pricing = bot.services.knowledge.topics["pricing"]
    assert reply.text in (pricing.answer["zh"], pricing.entity_answers["plan"]["pro"]["zh"])
    buttons = _buttons(reply.reply_markup)
    assert [label for label, _ in buttons] == _titles(bot, pricing.follow_up, "zh")
    # the follow-up button answers in Chinese too
    since = bot.mark()
    await bot.press(wang, reply, buttons[0][1])
    followed = await bot.reply_to(5001, since)
    assert followed.text == bot.services.knowledge.topics[pricing.follow_up[0]].answer["zh"]
    # commands and the feedback prompt, rating and thanks as well
    helped = await bot.command(wang, "help")
    assert helped.text == t("help", "zh")
    ask = await bot.command(wang, "feedback")
    assert ask.text == t("feedback_ask", "zh")
    since = bot.mark()
    await bot.press(wang, ask, _buttons(ask.reply_markup)[4][1])
    thanked = await bot.reply_to(5001, since, lambda r: r.method == "editMessageText")
    assert thanked.text == t("feedback_thanks_rating", "zh", rating=5)
    events = await bot.events(5001)
    assert events[0].attributes is not None
    assert (events[0].attributes["lang"], events[0].attributes["lang_from"]) == ("zh", "text")
    help_event = next(e for e in events if e.kind == "command")
    assert help_event.attributes is not None and help_event.attributes["lang_from"] == "earlier"
    state = await asyncio.to_thread(get_user, bot.engine, 5001)
    assert state is not None and state.language == "zh"  # what the scheduler's pushes read


async def test_a_chinese_client_writing_english_gets_english(bot: BotHarness) -> None:
    li = bot.user(5002, "Li", language="zh-hans")
    reply = await bot.say(li, "How much does the Pro plan cost per month?")
    pricing = bot.services.knowledge.topics["pricing"]
    assert reply.text in (pricing.answer["en"], pricing.entity_answers["plan"]["pro"]["en"])
    assert [label for label, _ in _buttons(reply.reply_markup)] == ["Billing", "Rate limits", "Models"]
    privacy = await bot.command(li, "privacy")
    assert privacy.text == t("privacy", "en", text_policy=t("text_off", "en"))
    state = await asyncio.to_thread(get_user, bot.engine, 5002)
    assert state is not None and state.language == "en"


async def test_commands_before_anything_is_written_follow_the_client(bot: BotHarness) -> None:
    li = bot.user(5003, "Li", language="zh-hans")
    helped = await bot.command(li, "help")
    assert helped.text == t("help", "zh")
    [event] = await bot.events(5003)
    assert event.attributes is not None
    assert (event.attributes["lang"], event.attributes["lang_from"]) == ("zh", "client")


async def test_a_user_who_switches_mid_conversation_is_followed(bot: BotHarness) -> None:
    sam = bot.user(5004, "Sam", language="en")
    first = await bot.say(sam, "专业版多少钱？")
    assert first.text is not None and written_language(first.text) == "zh"
    second = await bot.say(sam, "how do I create an API key?")
    assert second.text == bot.services.knowledge.topics["api_keys"].answer["en"]
    stopped = await bot.command(sam, "stop")
    assert stopped.text == t("stopped", "en")
    third = await bot.say(sam, "怎么创建 API 密钥？")
    assert third.text is not None and written_language(third.text) == "zh"
    resumed = await bot.command(sam, "start")
    assert resumed.text == t("welcome_back", "zh", name="Sam")
    events = await bot.events(5004)
    assert [e.attributes and e.attributes["lang"] for e in events] == ["zh", "en", "en", "zh", "zh"]
    state = await asyncio.to_thread(get_user, bot.engine, 5004)
    assert state is not None and state.language == "zh"


@pytest.mark.parametrize("text", ["👍🙏", "12345"], ids=["emoji", "digits"])
async def test_a_message_without_language_keeps_the_conversations(bot: BotHarness, text: str) -> None:
    wang = bot.user(5005, "Wang", language="en")
    await bot.say(wang, "专业版多少钱？")
    reply = await bot.say(wang, text)
    assert reply.text is not None
    assert t("fallback", "zh") in reply.text or written_language(reply.text) == "zh"
    if reply.reply_markup is not None:  # fallback suggestions are titled in Chinese
        zh_titles = {topic.title["zh"] for topic in bot.services.knowledge.topics.values()}
        assert {label for label, _ in _buttons(reply.reply_markup)} <= zh_titles
    events = await bot.events(5005)
    assert events[1].attributes is not None
    assert (events[1].attributes["lang"], events[1].attributes["lang_from"]) == ("zh", "earlier")


async def test_a_first_message_without_language_follows_the_client(bot: BotHarness) -> None:
    li = bot.user(5006, "Li", language="zh-hans")
    reply = await bot.say(li, "🤔🤔")
    assert reply.text is not None and written_language(reply.text) == "zh"
    [event] = await bot.events(5006)
    assert event.attributes is not None and event.attributes["lang_from"] == "client"
    state = await asyncio.to_thread(get_user, bot.engine, 5006)
    assert state is not None and state.language == "zh-hans"


async def test_mixed_text_goes_by_script_share(bot: BotHarness) -> None:
    alice = bot.user(5007, "Alice", language="en")
    reply = await bot.say(alice, "API key 怎么用")
    [event] = await bot.events(5007)
    topic = bot.services.knowledge.topic(event.intent)
    assert event.attributes is not None and event.attributes["lang"] == "zh"
    if event.kind == "message":
        assert topic is not None and reply.text == topic.answer["zh"]
    else:
        assert reply.text is not None and t("fallback", "zh") in reply.text


async def test_an_out_of_scope_question_falls_back_in_its_language(bot: BotHarness) -> None:
    alice = bot.user(5008, "Alice", language="en")
    reply = await bot.say(alice, "明天巴黎的天气怎么样？")
    assert reply.text is not None and t("fallback", "zh") in reply.text
    zh_titles = {topic.title["zh"] for topic in bot.services.knowledge.topics.values()}
    assert {label for label, _ in _buttons(reply.reply_markup)} <= zh_titles


async def test_a_feedback_comment_is_thanked_in_its_language(bot: BotHarness) -> None:
    li = bot.user(5009, "Li", language="zh-hans")
    ask = await bot.command(li, "feedback")
    assert ask.text == t("feedback_ask", "zh")
    since = bot.mark()
    await bot.press(li, ask, _buttons(ask.reply_markup)[3][1])
    await bot.reply_to(5009, since, lambda r: r.method == "editMessageText")
    thanked = await bot.say(li, "The answers are good but slow")
    assert thanked.text == t("feedback_thanks", "en")
    events = await bot.events(5009)
    assert events[-1].kind == "feedback" and events[-1].attributes is not None
    assert events[-1].attributes["lang"] == "en"


async def test_a_group_mention_is_answered_in_its_language(bot: BotHarness) -> None:
    bot.api.add_chat(GROUP, "supergroup", title="Rapport Community", bot_status="administrator")
    dave = bot.user(5010, "Dave", language="en")
    since = bot.mark()
    bot.api.user_mentions_bot(dave, GROUP, "怎么创建 API 密钥？")
    reply = await bot.reply_to(GROUP, since)
    assert reply.text is not None and written_language(reply.text) == "zh"
    # group chatter does not change the language the bot talks to a user in
    bot.api.user_says(dave, "thanks everyone, see you later", GROUP)
    helped = await bot.command(dave, "help")
    assert helped.text == t("help", "zh")


async def test_a_newcomer_who_wrote_chinese_is_welcomed_in_chinese(bot: BotHarness) -> None:
    bot.api.add_chat(GROUP, "supergroup", title="Rapport Community", bot_status="administrator")
    carol = bot.user(5011, "Carol", language="en")
    await bot.say(carol, "专业版多少钱？")
    since = bot.mark()
    bot.api.member_joins(carol, GROUP)
    welcome = await bot.reply_to(GROUP, since)
    assert welcome.text is not None and welcome.text.startswith("欢迎加入 Rapport Community")


async def test_the_flood_warning_speaks_the_language_last_written(bot: BotHarness) -> None:
    wang = bot.user(5012, "Wang", language="en")
    await bot.say(wang, "专业版多少钱？")
    for i in range(bot.settings.flood_max_messages + 5):
        bot.api.user_says(wang, str(i))  # digits: no language of their own
    await bot.idle()
    replies = [r.text for r in bot.api.sent if r.chat_id == 5012]
    assert t("flood", "zh") in replies
    assert t("flood", "en") not in replies


async def test_a_photo_captioned_in_chinese_gets_the_hint_in_chinese(bot: BotHarness) -> None:
    alice = bot.user(5013, "Alice", language="en")
    since = bot.mark()
    bot.api.user_photo(alice, caption="这个报错是什么意思？")
    hint = await bot.reply_to(5013, since)
    assert hint.text == t("non_text", "zh")
    helped = await bot.command(alice, "help")
    assert helped.text == t("help", "zh")


async def test_the_apology_for_a_failed_answer_is_in_the_questions_language(bot: BotHarness) -> None:
    wang = bot.user(5014, "Wang", language="en")
    bot.api.faults.server_error(502, method="sendMessage", times=1)
    since = bot.mark()
    bot.api.user_says(wang, "怎么创建 API 密钥？")
    apology = await bot.reply_to(5014, since)
    assert apology.text == t("error", "zh")


async def test_pushes_are_planned_in_the_language_written(bot: BotHarness) -> None:
    wang = bot.user(5015, "Wang", language="en-US")
    alice = bot.user(5016, "Alice", language="en-US")
    await bot.say(wang, "专业版多少钱？")
    await bot.say(alice, "How much does the Pro plan cost?")
    await bot.idle()
    recipients = await asyncio.to_thread(reachable_recipients, bot.engine, [5015, 5016])
    languages = {recipient.user_id: recipient.language for recipient in recipients}
    assert languages == {5015: "zh", 5016: "en-US"}
    message = load_catalogue().messages[0]  # what the scheduler sends: message.text(recipient.language)
    assert message.text(languages[5015]) == message.text_zh
    assert message.text(languages[5016]) == message.text_en
