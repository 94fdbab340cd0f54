"""A clean stop mid-broadcast (every deploy): the sends in flight finish, nothing goes out twice.

The local Bot API answers with a round trip of latency, so when the bot stops several messages
have reached the users while their answers are still on the way. Issue 14 items 1 and 2:
stopping used to close PTB's HTTP client under those sends, which then failed with a read
error, were requeued, and were sent again by the next process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from bot.app import attach_scheduler, build_application
from bot.delivery import TelegramSender
from bot.runner import running
from fakeapi import LocalBotAPI
from scheduler.engine import DeliveryEngine
from scheduler.planning import create_broadcast
from scheduler.service import SchedulerService
from store import UserInfo, upsert_user
from store.db import unit_of_work
from store.models import Delivery

USERS = list(range(70_001, 70_061))
TEXT = "Launch day!"


def _statuses(engine: Engine) -> dict[int, str]:
    with unit_of_work(engine) as session:
        return {d.user_id: d.status for d in session.scalars(select(Delivery))}


def _prepare(api: LocalBotAPI, engine: Engine) -> None:
    for user_id in USERS:
        api.add_user(user_id, f"U{user_id}")
        upsert_user(engine, UserInfo(id=user_id))


async def _stop_mid_broadcast(
    api: LocalBotAPI, engine: Engine, settings: Any, parser: Any, *, standby: SchedulerService | None = None
) -> None:
    """Run the bot with its scheduler, start a broadcast, stop cleanly after the 5th delivery."""
    application = build_application(settings, engine=engine, parser=parser)
    service = attach_scheduler(application, settings)
    async with running(application):
        assert await service.wait_active(10.0)
        if standby is not None:
            await standby.start()
        api.latency = 0.3
        now = datetime.now(UTC)
        await asyncio.to_thread(create_broadcast, engine, segment="all", text=TEXT, at=now, now=now)
        service.wake()
        await api.wait_for(lambda r: r.text == TEXT, 20.0, since=0)
        await api.sent.wait_for(lambda r: r.text == TEXT, 20.0, since=len(api.sent) + 3)
    assert not service.active


async def test_a_clean_stop_mid_broadcast_finishes_the_sends_in_flight(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    settings = bot_settings(quiet_hours_start=0, quiet_hours_end=0)
    _prepare(api, bot_engine)
    await _stop_mid_broadcast(api, bot_engine, settings, nlu_parser)
    statuses = _statuses(bot_engine)
    delivered = {chat for chat, n in api.messages_per_chat.items() if chat in statuses and n}
    assert delivered  # the stop came mid-broadcast ...
    assert len(delivered) < len(USERS)
    assert {statuses[user] for user in delivered} == {"sent"}  # ... and every delivery was recorded
    assert "sending" not in statuses.values()
    assert "ambiguous" not in statuses.values()

    api.latency = 0.0  # the next process sends the rest
    async with TelegramSender.from_settings(settings) as sender:
        await DeliveryEngine(bot_engine, sender, owner="next").drain(max_idle_wait_s=0)
    assert {user: api.messages_per_chat.get(user, 0) for user in USERS} == dict.fromkeys(USERS, 1)


async def test_handing_over_to_a_standby_on_a_clean_stop_duplicates_nothing(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    settings = bot_settings(quiet_hours_start=0, quiet_hours_end=0)
    _prepare(api, bot_engine)
    async with TelegramSender.from_settings(settings) as sender:
        standby = SchedulerService(
            bot_engine, settings, sender, owner="standby", lease_ttl_s=1.5, poll_s=0.05, use_apscheduler=False
        )
        await _stop_mid_broadcast(api, bot_engine, settings, nlu_parser, standby=standby)
        try:
            assert await standby.wait_active(10.0)  # took over as soon as the lease was given up
            for _ in range(400):
                if sum(api.messages_per_chat.get(user, 0) for user in USERS) >= len(USERS):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        finally:
            await standby.stop()
    assert standby.ambiguous == []
    assert {user: api.messages_per_chat.get(user, 0) for user in USERS} == dict.fromkeys(USERS, 1)
    assert set(_statuses(bot_engine).values()) == {"sent"}
