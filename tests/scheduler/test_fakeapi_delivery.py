"""The engine through the real `TelegramSender` against the local Bot API with Telegram's limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from bot.delivery import TelegramSender
from fakeapi import LocalBotAPI, RateLimits
from scheduler.engine import DeliveryEngine, EngineConfig
from scheduler.planning import create_broadcast
from store import load_settings
from store.db import unit_of_work
from store.models import Delivery, User
from tests.scheduler.conftest import add_users

USERS = range(5001, 5061)


@pytest.fixture
async def api() -> AsyncIterator[LocalBotAPI]:
    server = LocalBotAPI()
    for user_id in USERS:
        server.add_user(user_id, f"User {user_id}")
    async with server:
        yield server


def _sender(api: LocalBotAPI, rate: float) -> TelegramSender:
    settings = load_settings(
        telegram_bot_token=api.token,
        telegram_api_base_url=api.base_url,
        telegram_api_file_url=api.base_file_url,
        send_rate_per_s=rate,
    )
    return TelegramSender.from_settings(settings)


def _statuses(engine: Engine) -> dict[int, tuple[str, str | None]]:
    with unit_of_work(engine) as session:
        return {d.user_id: (d.status, d.reason) for d in session.scalars(select(Delivery))}


async def test_broadcast_within_telegram_limits_with_a_user_blocking_midway(
    sqlite_engine: Engine, api: LocalBotAPI
) -> None:
    api.enforce_rate_limits(RateLimits(global_per_second=30))
    add_users(sqlite_engine, USERS)
    now = datetime.now(UTC)
    create_broadcast(sqlite_engine, segment="all", text="Launch day!", at=now, now=now)

    async def block_when_halfway() -> None:
        await api.sent.wait_for(lambda _record: True, timeout=30, since=19)  # the 20th message
        api.block_bot(5050)

    async with _sender(api, 30) as sender:
        engine = DeliveryEngine(sqlite_engine, sender, owner="t", config=EngineConfig(rate_per_s=30))
        blocker = asyncio.create_task(block_when_halfway())
        await engine.drain()
        await blocker
    assert api.rate_limited_count == 0
    per_chat = api.messages_per_chat
    assert per_chat == {u: 1 for u in USERS if u != 5050}
    statuses = _statuses(sqlite_engine)
    assert statuses[5050] == ("blocked", "blocked")
    assert {s for u, s in statuses.items() if u != 5050} == {("sent", None)}
    with unit_of_work(sqlite_engine) as session:
        user = session.get(User, 5050)
        assert user is not None and user.blocked


async def test_a_429_storm_pauses_everything_and_loses_nothing(
    sqlite_engine: Engine, api: LocalBotAPI
) -> None:
    add_users(sqlite_engine, USERS[:20])
    now = datetime.now(UTC)
    create_broadcast(sqlite_engine, segment="all", text="Hi", at=now, now=now)
    api.faults.retry_after(1, method="sendMessage", times=3)
    async with _sender(api, 200) as sender:
        engine = DeliveryEngine(
            sqlite_engine, sender, owner="t", config=EngineConfig(rate_per_s=200, max_retries=1)
        )
        await engine.drain()
    assert engine.stats.outcomes["rate_limited"] == 3
    assert api.messages_per_chat == {u: 1 for u in USERS[:20]}
    assert set(_statuses(sqlite_engine).values()) == {("sent", None)}
