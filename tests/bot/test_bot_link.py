"""`/start <payload>` deep links against the local Bot API: link once, refuse politely, log it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from store import forget_user
from store.links import sign_payload
from store.product import ProductMessage, account_of, ingest
from store.vocabulary import EventKind

if TYPE_CHECKING:
    from conftest import BotHarness

    from fakeapi.records import SentRecord

SECRET = "bot-test-secret"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"link_secret": SECRET}


def _payload(account: str, *, days: float = 7) -> str:
    return sign_payload(account, SECRET, expires_at=datetime.now(UTC) + timedelta(days=days))


async def _second_reply(bot: BotHarness, user_id: int, payload: str, language: str = "en") -> SentRecord:
    """The reply after the welcome: the linking outcome."""
    person = bot.user(user_id, "Ann", language=language)
    since = bot.mark()
    bot.api.user_command(person, "start", payload)
    welcome = await bot.reply_to(user_id, since)
    return await bot.reply_to(user_id, since, lambda r: r.message_id != welcome.message_id)


async def _link_outcomes(bot: BotHarness, user_id: int) -> list[Any]:
    return [
        e.attributes and e.attributes["outcome"]
        for e in await bot.events(user_id)
        if e.kind == EventKind.ACCOUNT_LINK
    ]


async def test_start_with_a_payload_links_once_and_attaches_waiting_events(bot: BotHarness) -> None:
    await asyncio.to_thread(
        ingest,
        bot.engine,
        [ProductMessage("track", "acct_77", datetime.now(UTC), event="signup")],
        key_id="k",
    )
    payload = _payload("acct_77")
    reply = await _second_reply(bot, 3001, payload)
    assert reply.text is not None and reply.text.startswith("Done: this Telegram account is now linked")
    assert await asyncio.to_thread(account_of, bot.engine, 3001) == "acct_77"
    events = await bot.events(3001)
    assert [e.attributes and e.attributes.get("event") for e in events if e.kind == EventKind.PRODUCT] == [
        "signup"
    ]
    again = await _second_reply(bot, 3001, payload)
    assert again.text is not None and "already linked" in again.text
    assert await _link_outcomes(bot, 3001) == ["linked", "already_linked"]


async def test_reused_forged_and_expired_payloads_are_refused_politely(bot: BotHarness) -> None:
    payload = _payload("acct_1")
    await _second_reply(bot, 3002, payload)
    reused = await _second_reply(bot, 3003, payload)
    forged = await _second_reply(
        bot, 3003, sign_payload("acct_2", "not-our-secret", expires_at=datetime.now(UTC) + timedelta(days=1))
    )
    expired = await _second_reply(bot, 3003, _payload("acct_3", days=-1))
    for reply in (reused, forged, expired):
        assert reply.text is not None and reply.text.startswith("Sorry, I can't use this link")
    assert await asyncio.to_thread(account_of, bot.engine, 3003) is None
    assert await _link_outcomes(bot, 3003) == ["reused", "forged", "expired"]


async def test_refusal_in_chinese_and_a_taken_account(bot: BotHarness) -> None:
    await _second_reply(bot, 3004, _payload("acct_z"))
    taken = await _second_reply(bot, 3005, _payload("acct_z", days=2), language="zh-hans")
    assert taken.text is not None and taken.text.startswith("抱歉，无法关联")


async def test_a_payload_that_is_no_link_gets_only_the_welcome(bot: BotHarness) -> None:
    person = bot.user(3006, "Ann")
    reply = await bot.command(person, "start", "ref_campaign")
    assert reply.text is not None and reply.text.startswith("Hi Ann!")
    await bot.idle()
    assert [r.text for r in bot.api.sent if r.chat_id == 3006] == [reply.text]
    assert await _link_outcomes(bot, 3006) == ["malformed"]


async def test_forget_removes_the_link(bot: BotHarness) -> None:
    await _second_reply(bot, 3007, _payload("acct_f"))
    await bot.idle()
    report = await asyncio.to_thread(forget_user, bot.engine, 3007)
    assert report.deleted["account_links"] == 1
    assert await asyncio.to_thread(account_of, bot.engine, 3007) is None
