"""Flood limits counted in the database hold across webhook replicas (`bot.flood.SharedFloodGuard`)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Engine, create_engine, func, select

from bot.app import build_application
from bot.flood import FloodGuard, FloodVerdict, SharedFloodGuard
from bot.runner import WebhookOptions, running
from bot.webhook import SECRET_HEADER
from fakeapi import LocalBotAPI
from store import user_events
from store.db import unit_of_work
from store.flood import count_message
from store.models import FloodCounter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _replicas(
    engine: Engine, clock: Clock, *, limit: int = 3, window_s: float = 10.0
) -> list[SharedFloodGuard]:
    return [
        SharedFloodGuard(engine, scope="user", max_messages=limit, window_s=window_s, clock=clock)
        for _ in range(3)
    ]


def test_a_users_limit_holds_across_replicas(engine: Engine) -> None:
    clock = Clock(1_000_000.0)  # the start of a window: the previous one is empty
    replicas = _replicas(engine, clock)

    async def send(n: int) -> list[FloodVerdict]:
        verdicts = []
        for i in range(n):
            clock.now += 0.1
            verdicts.append(await replicas[i % 3].acheck(42))
        return verdicts

    verdicts = asyncio.run(send(8))
    # One in-memory guard per replica would have let all 8 through (at most 3 reach each).
    assert verdicts[:3] == [FloodVerdict.OK] * 3
    assert verdicts[3] is FloodVerdict.WARN
    assert verdicts[4:] == [FloodVerdict.DROP] * 4
    # Another user is not affected.
    assert asyncio.run(replicas[1].acheck(43)) is FloodVerdict.OK


def test_the_limit_slides_and_lets_a_calm_user_through_again(engine: Engine) -> None:
    clock = Clock(2_000_000.0)
    replicas = _replicas(engine, clock, limit=4, window_s=10.0)

    async def run() -> None:
        for i in range(4):
            clock.now += 1.0
            assert await replicas[i % 3].acheck(7) is FloodVerdict.OK
        clock.now += 1.0
        assert await replicas[0].acheck(7) is FloodVerdict.WARN
        # Half way into the next window half the previous window's 5 messages still count:
        # 2.5 + 1 = 3.5 <= 4.
        clock.now = 2_000_015.0
        assert await replicas[2].acheck(7) is FloodVerdict.OK
        # Two windows later nothing of the burst is left.
        clock.now = 2_000_040.0
        for i in range(4):
            assert await replicas[i % 3].acheck(7) is FloodVerdict.OK

    asyncio.run(run())


def test_old_windows_are_pruned(sqlite_engine: Engine) -> None:
    clock = Clock(3_000_000.0)
    guard = SharedFloodGuard(sqlite_engine, scope="user", max_messages=5, window_s=10.0, clock=clock)

    async def run() -> None:
        for user in range(20):
            await guard.acheck(user)
        clock.now += 100.0  # past the prune interval and 10 windows later
        await guard.acheck(999)

    asyncio.run(run())
    with unit_of_work(sqlite_engine) as session:
        assert session.scalar(select(func.count()).select_from(FloodCounter)) == 1


@pytest.mark.postgres
def test_racing_replicas_send_exactly_one_warning(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a race between connections is a PostgreSQL question")
    engine = create_engine(db_url, pool_size=8)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda _: count_message(engine, "user", 5, now_s=4_000_000.0, window_s=10.0, limit=10),
                    range(40),
                )
            )
    finally:
        engine.dispose()
    assert sorted(round(r.estimate) for r in results) == list(range(1, 41))
    assert sum(r.first_over for r in results) == 1


def test_a_database_that_is_down_falls_back_to_this_replicas_window(caplog: pytest.LogCaptureFixture) -> None:
    broken = create_engine("sqlite:////nonexistent-dir/rapport.db")
    clock = Clock(5_000_000.0)
    guard = SharedFloodGuard(broken, scope="user", max_messages=2, window_s=10.0, clock=clock)
    local = FloodGuard(2, 10.0)

    async def run() -> list[FloodVerdict]:
        return [await guard.acheck(1) for _ in range(4)]

    with caplog.at_level(logging.WARNING, logger="bot.flood"):
        verdicts = asyncio.run(run())
    assert verdicts == [local.check(1) for _ in range(4)]
    assert verdicts == [FloodVerdict.OK, FloodVerdict.OK, FloodVerdict.WARN, FloodVerdict.DROP]
    warnings = [r for r in caplog.records if "flood counters unavailable" in r.getMessage()]
    assert len(warnings) == 1  # said once a minute, not per message


async def test_two_webhook_replicas_throttle_a_flooder_as_one_bot(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    """Six messages spread over two replicas with a limit of 3: three answers and one warning."""
    secret = "flood-secret"
    async with AsyncExitStack() as stack:
        urls = []
        for _ in range(2):
            application = build_application(
                bot_settings(flood_max_messages=3, flood_window_s=60.0), engine=bot_engine, parser=nlu_parser
            )
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            url = f"http://127.0.0.1:{port}/telegram"
            options = WebhookOptions(url=url, listen="127.0.0.1", port=port, secret_token=secret, dedup=True)
            await stack.enter_async_context(running(application, webhook=options))
            urls.append(url)
        api.state.webhook = None  # the test posts the updates itself
        flooder = api.add_user(8301, "Flo", language_code="en")
        for i in range(6):
            api.user_says(flooder, f"hello number {i}")
        with api.state.lock:
            updates, api.state.pending = list(api.state.pending), []
        async with aiohttp.ClientSession() as session:
            for i, body in enumerate(updates):
                async with session.post(urls[i % 2], json=body, headers={SECRET_HEADER: secret}) as response:
                    assert response.status == 200
                    # As Telegram does: the call in a 2xx answer (the webhook reply) is executed.
                    api.execute_webhook_reply(await response.read(), response.content_type)
    assert len(updates) == 6
    assert sum(1 for record in api.sent if record.chat_id == 8301) == 4  # 3 answers + 1 "slow down"
    throttled = [e for e in user_events(bot_engine, 8301) if e.attributes.get("throttled")]
    assert len(throttled) == 3
