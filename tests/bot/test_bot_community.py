"""Groups: welcomes, answering only when addressed, reactions, polls, and /feedback in private."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from bot.i18n import t
from store import StoredEvent, get_user, user_events

if TYPE_CHECKING:
    from conftest import BotHarness

GROUP = -100_555


def _group(bot: BotHarness) -> None:
    bot.api.add_chat(GROUP, "supergroup", title="Rapport Community", bot_status="administrator")


COMMENT = "Answers are great but I want more about fine-tuning"


async def _rate_and_comment(bot: BotHarness, user_id: int) -> list[StoredEvent]:
    """Rate 4 by button, write a comment, then ask a question; the user's feedback events."""
    alice = bot.user(user_id, "Alice")
    ask = await bot.command(alice, "feedback")
    assert ask.reply_markup is not None
    buttons = ask.reply_markup["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]
    since = bot.mark()
    await bot.press(alice, ask, buttons[3]["callback_data"])
    thanked = await bot.reply_to(user_id, since)
    assert thanked.text == t("feedback_thanks_rating", "en", rating=4)
    reply = await bot.say(alice, COMMENT)
    assert reply.text == t("feedback_thanks", "en")
    # the next message is a question again
    answer = await bot.say(alice, "how do I create an API key?")
    assert answer.text == bot.services.knowledge.topics["api_keys"].answer["en"]
    events = await bot.events(user_id)
    feedback = [e for e in events if e.kind == "feedback"]
    assert [e.attributes and e.attributes["rating"] for e in feedback] == [4, 4]
    return feedback


async def test_feedback_rating_is_stored_but_not_the_comment_while_text_storage_is_off(
    bot: BotHarness,
) -> None:
    assert not bot.settings.store_text
    feedback = await _rate_and_comment(bot, 3001)
    comment = feedback[1]
    assert comment.attributes is not None
    assert "comment" not in comment.attributes
    assert comment.attributes["commented"] is True
    assert comment.attributes["length"] == len(COMMENT)
    assert comment.text is None
    rows = await asyncio.to_thread(user_events, bot.engine, 3001)
    assert not any(COMMENT in json.dumps(row.attributes) or row.text == COMMENT for row in rows)


@pytest.mark.parametrize("settings_overrides", [{"store_text": True}])
async def test_feedback_comment_is_stored_when_text_storage_is_on(bot: BotHarness) -> None:
    feedback = await _rate_and_comment(bot, 3014)
    assert feedback[1].attributes is not None
    assert feedback[1].attributes["comment"] == COMMENT
    assert feedback[1].text == COMMENT


async def test_feedback_skip(bot: BotHarness) -> None:
    alice = bot.user(3002, "Alice")
    ask = await bot.command(alice, "feedback")
    assert ask.reply_markup is not None
    since = bot.mark()
    await bot.press(alice, ask, ask.reply_markup["inline_keyboard"][0][0]["callback_data"])
    await bot.reply_to(3002, since)
    skipped = await bot.command(alice, "skip")
    assert skipped.text == t("feedback_skipped", "en")
    answer = await bot.say(alice, "how do I create an API key?")
    assert answer.text == bot.services.knowledge.topics["api_keys"].answer["en"]


async def test_new_member_is_welcomed_and_join_logged(bot: BotHarness) -> None:
    _group(bot)
    carol = bot.user(3003, "Carol", language="zh-CN")
    since = bot.mark()
    bot.api.member_joins(carol, GROUP)
    welcome = await bot.reply_to(GROUP, since)
    assert welcome.text is not None and welcome.text.startswith("欢迎加入 Rapport Community")
    kinds = [e.kind for e in await bot.events(3003)]
    assert "join" in kinds


async def test_group_title_and_member_name_are_escaped_in_the_html_welcome(bot: BotHarness) -> None:
    # The local server parses HTML like Telegram: an unescaped `<Dev>` is refused outright.
    bot.api.add_chat(GROUP, "supergroup", title="R&D <Dev> Team", bot_status="administrator")
    mallory = bot.user(3015, "<b>x</b>", language="en")
    since = bot.mark()
    bot.api.member_joins(mallory, GROUP)
    welcome = await bot.reply_to(GROUP, since)
    assert welcome.text == t("group_welcome", "en", chat="R&D <Dev> Team", name="<b>x</b>")
    [mention] = welcome.message["entities"]
    assert mention["type"] == "text_mention" and mention["user"]["id"] == 3015
    assert welcome.text[mention["offset"] : mention["offset"] + mention["length"]] == "<b>x</b>"


async def test_group_chatter_is_logged_but_not_answered(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3004, "Dave")
    bot.api.user_says(dave, "anyone know how much the pro plan costs?", GROUP)
    [event] = await bot.events(3004)
    assert event.kind == "message"
    assert event.chat_id == GROUP
    assert event.attributes is not None and event.attributes["addressed"] is False
    assert event.intent is None
    assert [r for r in bot.api.sent if r.chat_id == GROUP] == []


async def test_mention_in_group_is_answered(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3005, "Dave")
    since = bot.mark()
    bot.api.user_mentions_bot(dave, GROUP, "how do I create an API key?")
    reply = await bot.reply_to(GROUP, since)
    assert reply.text == bot.services.knowledge.topics["api_keys"].answer["en"]
    assert reply.message.get("reply_to_message", {}).get("from", {}).get("id") == 3005
    [event] = await bot.events(3005)
    assert event.intent == "api_keys"
    assert event.attributes is not None and event.attributes["addressed"] is True


async def test_reply_to_the_bot_in_group_is_answered(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3006, "Dave")
    since = bot.mark()
    bot.api.user_mentions_bot(dave, GROUP, "hello")
    first = await bot.reply_to(GROUP, since)
    since = bot.mark()
    bot.api.user_replies(dave, first, "how do I create an API key?")
    reply = await bot.reply_to(GROUP, since)
    assert reply.text == bot.services.knowledge.topics["api_keys"].answer["en"]


async def test_private_commands_in_group_point_to_private_chat(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3007, "Dave")
    reply = await bot.command(dave, "forget", chat=GROUP)
    assert reply.text == t("private_only", "en")


async def test_reactions_are_logged(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3008, "Dave")
    since = bot.mark()
    bot.api.user_mentions_bot(dave, GROUP, "hello")
    reply = await bot.reply_to(GROUP, since)
    bot.api.react(dave, reply, ["👍"])
    events = await bot.events(3008)
    [reaction] = [e for e in events if e.kind == "reaction"]
    assert reaction.attributes is not None
    assert reaction.attributes["new"] == ["👍"]
    assert reaction.attributes["message_id"] == reply.message_id


async def test_manager_poll_is_non_anonymous_and_answers_are_logged(bot: BotHarness, admin_id: int) -> None:
    _group(bot)
    manager = bot.user(admin_id, "Manager")
    voter = bot.user(3009, "Eve")
    poll = await bot.command(manager, "poll", "Next event? | Hackathon | Office hours", chat=GROUP)
    assert poll.method == "sendPoll"
    assert poll.message["poll"]["is_anonymous"] is False
    assert poll.text == "Next event?"
    bot.api.vote_poll(voter, poll, [1])
    events = await bot.events(3009)
    [answer] = [e for e in events if e.kind == "poll_answer"]
    assert answer.attributes is not None
    assert answer.attributes["options"] == [1]
    assert answer.attributes["poll_id"] == poll.message["poll"]["id"]


async def test_poll_by_non_manager_is_refused_and_logged(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3010, "Dave")
    reply = await bot.command(dave, "poll", "Q? | a | b", chat=GROUP)
    assert reply.text == t("not_admin", "en")
    [event] = await bot.events(3010)
    assert event.kind == "command"
    assert event.attributes is not None and event.attributes["admin"] is False


async def test_poll_usage_on_bad_arguments(bot: BotHarness, admin_id: int) -> None:
    _group(bot)
    manager = bot.user(admin_id, "Manager")
    reply = await bot.command(manager, "poll", "only a question", chat=GROUP)
    assert reply.text == t("poll_usage", "en")


async def test_user_blocking_the_bot_is_marked_blocked(bot: BotHarness) -> None:
    alice = bot.user(3011, "Alice")
    await bot.command(alice, "start")
    bot.api.block_bot(alice)
    events = await bot.events(3011)
    assert events[-1].kind == "leave"
    assert events[-1].attributes is not None and events[-1].attributes["blocked_bot"] is True
    state = get_user(bot.engine, 3011)
    assert state is not None and state.blocked


async def test_the_bot_never_floods_a_group(bot: BotHarness) -> None:
    _group(bot)
    users = [bot.user(3100 + i, f"U{i}") for i in range(4)]
    for i in range(24):  # 24 mentions from four people: under each user's flood limit
        bot.api.user_mentions_bot(users[i % 4], GROUP, "how do I create an API key?")
    await bot.idle()
    replies = [r for r in bot.api.sent if r.chat_id == GROUP]
    assert len(replies) == 15  # the per-group reply budget, well under Telegram's 20/min
    events = [e for u in users for e in await bot.events(u.id)]
    assert len(events) == 24  # every message is still logged
    assert {e.attributes["addressed"] for e in events if e.attributes} == {True}


async def test_replies_in_groups_are_logged_with_what_they_reply_to(bot: BotHarness) -> None:
    _group(bot)
    dave = bot.user(3012, "Dave")
    erin = bot.user(3013, "Erin")
    first = bot.api.user_says(dave, "Has anyone tried rapport-vision?", GROUP)
    bot.api.user_replies(erin, first["message"], "yes, works well")
    [event] = await bot.events(3013)
    assert event.attributes is not None
    assert event.attributes["reply_to"] == first["message"]["message_id"]
    assert event.attributes["addressed"] is False
