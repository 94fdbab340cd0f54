"""The bot with the real scheduler attached: a manager's broadcast reaches users via TelegramSender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine

from bot.app import attach_scheduler, build_application
from bot.runner import running
from fakeapi import LocalBotAPI
from scheduler import SchedulerService, campaign_report
from store import get_user

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture
async def scheduled_bot(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> AsyncIterator[tuple[Any, SchedulerService]]:
    settings = bot_settings(quiet_hours_start=0, quiet_hours_end=0)
    app = build_application(settings, engine=bot_engine, parser=nlu_parser)
    service = attach_scheduler(app, settings)
    async with running(app):
        assert await service.wait_active(10.0)
        yield app, service
    assert not service.active  # post_shutdown stopped it and gave the lease up


async def test_broadcast_is_delivered_and_blocked_users_are_marked(
    api: LocalBotAPI, bot_engine: Engine, scheduled_bot: tuple[Any, SchedulerService], admin_id: int
) -> None:
    _app, service = scheduled_bot
    manager = api.add_user(admin_id, "Manager", language_code="en")
    users = [api.add_user(uid, f"U{uid}", language_code="en") for uid in (7101, 7102, 7103)]
    for user in [manager, *users]:
        since = len(api.sent)
        api.user_command(user, "start")
        await api.wait_for(lambda r, uid=user.id: r.chat_id == uid, 5.0, since=since)
    api.faults.forbidden(method="sendMessage", chat_ids=[7103])

    since = len(api.sent)
    api.user_command(manager, "broadcast")
    pick = await api.wait_for(lambda r: r.chat_id == admin_id, 5.0, since=since)
    assert pick.reply_markup is not None
    everyone = pick.reply_markup["inline_keyboard"][0][0]
    assert everyone["text"] == "Everyone (4)"
    since = len(api.sent)
    api.press_button(manager, pick, everyone["callback_data"])
    await api.wait_for(lambda r: r.chat_id == admin_id and r.method == "editMessageText", 5.0, since=since)
    since = len(api.sent)
    api.user_says(manager, "Office hours today at 16:00 UTC!")
    preview = await api.wait_for(lambda r: (r.text or "").startswith("↑ Preview"), 5.0, since=since)
    assert preview.reply_markup is not None
    send_now = preview.reply_markup["inline_keyboard"][0][0]
    assert send_now["text"] == "Send now"
    since = len(api.sent)
    api.press_button(manager, preview, send_now["callback_data"])
    done = await api.wait_for(lambda r: (r.text or "").startswith("Broadcast #"), 5.0, since=since)
    assert done.text is not None
    campaign_id = int(done.text.split("#", 1)[1].split(" ", 1)[0])

    for uid in (7101, 7102):
        record = await api.wait_for(
            lambda r, uid=uid: r.chat_id == uid and r.text == "Office hours today at 16:00 UTC!", 10.0
        )
        assert record.method == "sendMessage"
    for _ in range(200):
        state = await asyncio.to_thread(get_user, bot_engine, 7103)
        if state is not None and state.blocked:
            break
        await asyncio.sleep(0.05)
    assert state is not None and state.blocked  # 403: never sent to again
    for _ in range(200):
        report = await asyncio.to_thread(
            campaign_report, bot_engine, campaign_id, now=service.clock.now(), rate_per_s=30.0
        )
        if not report.counts.remaining:
            break
        await asyncio.sleep(0.05)
    assert report.counts.by_status.get("blocked") == 1
    assert report.counts.by_status.get("sent") == 3  # two users and the manager
