"""Reliability under load: a reply burst, broadcast rate against latency, clean stops mid-broadcast.

Usage:
    python -m bench.bench_reliability [--burst 500] [--users 300] [--stops 10] [--stop-users 200]

All against the local Bot API with Telegram's limits enforced (30 messages/s overall, 1/s per
private chat with bursts of 3), on SQLite:
- burst: `--burst` users each send one question at once; every reply must arrive, none may
  meet a 429; p50/p99 reply latency against the floor `n / 30 s` that the limit allows;
- broadcast rate: a broadcast to `--users` users at 0, 80 and 250 ms of injected round trip,
  against the allowed 30/s, and the single send lane of before (peer) at the same latency;
- clean stops: `--stops` times, the bot is stopped cleanly (what SIGTERM does) at a random
  point of a broadcast at 80 ms latency, and a fresh process sends the rest; duplicates
  (a user with two copies), ambiguous rows and losses are counted (target: 0 duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from bot.app import attach_scheduler, build_application
from bot.delivery import TelegramSender
from bot.runner import running
from cli.common import install_token_filter
from fakeapi import LocalBotAPI, RateLimits
from nlu import load_or_train_default
from scheduler.engine import DeliveryEngine, EngineConfig
from scheduler.planning import create_broadcast
from store import Settings, UserInfo, create_db_engine, load_settings, upgrade, upsert_user
from store.db import unit_of_work
from store.models import Delivery

ALLOWED_RATE = 30.0
QUESTIONS = [
    "How much does the Pro plan cost?",
    "how do I create an API key",
    "what are the rate limits?",
    "which models do you have",
    "I was charged twice on my invoice",
    "hello!",
]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _settings(api: LocalBotAPI, workdir: Path, name: str) -> Settings:
    return load_settings(
        telegram_bot_token=api.token,
        telegram_api_base_url=api.base_url,
        telegram_api_file_url=api.base_file_url,
        data_dir=workdir / name,
        database_url=f"sqlite:///{workdir / f'{name}.db'}",
        quiet_hours_start=0,
        quiet_hours_end=0,
    )


def _engine(settings: Settings) -> Engine:
    engine = create_db_engine(settings.resolved_database_url)
    upgrade(engine)
    return engine


def _users(api: LocalBotAPI, engine: Engine | None, first: int, count: int) -> list[int]:
    ids = list(range(first, first + count))
    for user_id in ids:
        api.add_user(user_id, f"U{user_id}", language_code="en")
        if engine is not None:
            upsert_user(engine, UserInfo(id=user_id))
    return ids


# ---- the burst ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BurstResult:
    """A burst of questions, each from another user."""

    updates: int
    answered: int
    rate_limited: int
    p50_s: float
    p99_s: float

    @property
    def floor_s(self) -> float:
        """When the last reply can arrive at the allowed rate."""
        return self.updates / ALLOWED_RATE


async def burst(parser: Any, workdir: Path, count: int) -> BurstResult:
    """`count` users ask at once; every reply is awaited (up to a generous limit)."""
    api = LocalBotAPI()
    with api.serve_in_thread():
        api.enforce_rate_limits(RateLimits())
        settings = _settings(api, workdir, "burst")
        engine = _engine(settings)
        application = build_application(settings, engine=engine, parser=parser)
        users = _users(api, None, 200_000, count)
        async with running(application):
            while api.state.allowed_updates is None:  # noqa: ASYNC110 - until the first getUpdates
                await asyncio.sleep(0.005)
            since = len(api.sent)
            asked: dict[int, float] = {}
            for i, user_id in enumerate(users):
                asked[user_id] = time.time()
                api.user_says(api.state.users[user_id], QUESTIONS[i % len(QUESTIONS)])
            deadline = time.monotonic() + count / ALLOWED_RATE * 3 + 30
            while len(api.sent) - since < count and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            records = api.sent.items()[since:]
        engine.dispose()
    latencies = [r.time - asked[r.chat_id] for r in records if r.chat_id in asked]
    return BurstResult(
        count,
        len({r.chat_id for r in records}),
        api.rate_limited_count,
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
    )


# ---- broadcast rate ----------------------------------------------------------------------
async def broadcast_rate(workdir: Path, users: int, latency_s: float, *, lanes: int | None = None) -> float:
    """Messages/s of one broadcast at this round trip (first to last delivery); asserts 0 x 429."""
    api = LocalBotAPI()
    with api.serve_in_thread():
        api.enforce_rate_limits(RateLimits())
        name = f"rate-{int(latency_s * 1000)}-{lanes or 'default'}"
        settings = _settings(api, workdir, name)
        engine = _engine(settings)
        _users(api, engine, 300_000, users)
        now = datetime.now(UTC)
        create_broadcast(engine, segment="all", text="Rate test", at=now, now=now)
        config = EngineConfig.from_settings(settings)
        if lanes is not None:
            config = EngineConfig(rate_per_s=config.rate_per_s, lanes=lanes, quiet_hours=config.quiet_hours)
        async with TelegramSender.from_settings(settings) as sender:
            api.latency = latency_s
            await DeliveryEngine(engine, sender, owner="bench", config=config).drain(max_idle_wait_s=0)
        engine.dispose()
        times = sorted(r.time for r in api.sent.items() if r.text == "Rate test")
        if api.rate_limited_count:
            raise RuntimeError(f"{api.rate_limited_count} sends met a 429")
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


# ---- clean stops -------------------------------------------------------------------------
@dataclass
class StopCounts:
    """What clean stops mid-broadcast left behind, summed over the rounds."""

    rounds: int = 0
    stopped_after: list[int] | None = None
    duplicates: int = 0
    ambiguous: int = 0
    lost: int = 0


async def clean_stops(parser: Any, workdir: Path, rounds: int, users: int, seed: int) -> StopCounts:
    """Stop the bot cleanly at a random point of a broadcast, let a fresh sender finish it."""
    rng = random.Random(seed)
    counts = StopCounts(stopped_after=[])
    for number in range(rounds):
        api = LocalBotAPI()
        with api.serve_in_thread():
            api.enforce_rate_limits(RateLimits())
            settings = _settings(api, workdir, f"stop-{number}")
            engine = _engine(settings)
            ids = _users(api, engine, 400_000, users)
            application = build_application(settings, engine=engine, parser=parser)
            service = attach_scheduler(application, settings)
            stop_after = rng.randint(5, users // 2)
            async with running(application):
                if not await service.wait_active(30.0):
                    raise RuntimeError("the scheduler did not take its lease")
                api.latency = 0.08
                now = datetime.now(UTC)
                await asyncio.to_thread(
                    create_broadcast, engine, segment="all", text="Stop test", at=now, now=now
                )
                service.wake()
                await api.sent.wait_for(lambda r: r.text == "Stop test", 60.0, since=0)
                while sum(1 for r in api.sent.items() if r.text == "Stop test") < stop_after:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            assert counts.stopped_after is not None
            counts.stopped_after.append(sum(1 for r in api.sent.items() if r.text == "Stop test"))
            async with TelegramSender.from_settings(settings) as sender:  # the next process
                await DeliveryEngine(engine, sender, owner="next").drain(max_idle_wait_s=0)
            with unit_of_work(engine) as session:
                ambiguous = {
                    d.user_id for d in session.scalars(select(Delivery).where(Delivery.status == "ambiguous"))
                }
            engine.dispose()
            per_chat = api.messages_per_chat
            counts.rounds += 1
            counts.duplicates += sum(1 for user in ids if per_chat.get(user, 0) > 1)
            counts.ambiguous += len(ambiguous)
            counts.lost += sum(1 for user in ids if per_chat.get(user, 0) == 0 and user not in ambiguous)
    return counts


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="rapport-reliability-"))
    parser = load_or_train_default(workdir / "nlu")

    result = await burst(parser, workdir, args.burst)
    print(f"burst: {result.answered}/{result.updates} answered, {result.rate_limited} x 429")
    print(
        f"burst: reply latency p50 {result.p50_s:.2f} s, p99 {result.p99_s:.2f} s; floor at "
        f"{ALLOWED_RATE:.0f}/s {result.floor_s:.2f} s (p99 / floor {result.p99_s / result.floor_s:.2f})"
    )

    print(f"broadcast to {args.users} users (allowed {ALLOWED_RATE:.0f}/s; default lanes vs 1 lane):")
    for latency in (0.0, 0.08, 0.25):
        rate = await broadcast_rate(workdir, args.users, latency)
        single = await broadcast_rate(workdir, args.peer_users, latency, lanes=1)
        print(
            f"  {latency * 1000:>4.0f} ms: {rate:5.1f} msg/s ({rate / ALLOWED_RATE:.0%} of allowed); "
            f"1 lane {single:5.1f} msg/s (ratio {rate / single:.1f}x)"
        )

    stops = await clean_stops(parser, workdir, args.stops, args.stop_users, args.seed)
    print(
        f"clean stops mid-broadcast: {stops.rounds} rounds, stopped after {stops.stopped_after} sends; "
        f"duplicates {stops.duplicates} (target 0), ambiguous {stops.ambiguous}, lost {stops.lost}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=500, help="updates in the burst")
    parser.add_argument("--users", type=int, default=300, help="recipients of each rate broadcast")
    parser.add_argument("--peer-users", type=int, default=60, help="recipients of the 1-lane peer broadcast")
    parser.add_argument("--stops", type=int, default=10, help="clean stops mid-broadcast")
    parser.add_argument("--stop-users", type=int, default=200, help="recipients of each stopped broadcast")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    install_token_filter()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
