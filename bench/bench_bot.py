"""End-to-end bot benchmark against the local Bot API: Rapport vs a bare PTB echo bot.

Usage:
    python -m bench.bench_bot [--db sqlite|postgresql|both] [--updates 2000] [--rate 100] [--seconds 10]

For each bot it measures
- throughput: a burst of `--updates` private text messages from many users is queued at
  once; updates/s = messages / time until the last reply was recorded by the server;
- latency at a fixed rate: `--rate` messages/s for `--seconds`, reply latency = time the
  server recorded the reply - time the message was queued (p50/p99).
Rapport's path is the full one: observer (NLU + event row through the EventWriter),
knowledge-base answer, reply. The echo bot only replies with the same text.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.app import build_application
from bot.runner import running
from cli.common import install_token_filter
from fakeapi import LocalBotAPI
from nlu import load_or_train_default
from store import count_events, create_db_engine, load_settings, upgrade

POSTGRES_URL = os.environ.get(
    "RAPPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
QUESTIONS = [
    "How much does the Pro plan cost?",
    "how do I create an API key",
    "what are the rate limits?",
    "which models do you have",
    "I was charged twice on my invoice",
    "how can I delete my account",
    "do you train on my data?",
    "the API returns 500 errors",
    "专业版多少钱？",
    "can I fine-tune rapport-mini?",
    "what's the weather tomorrow",
    "hello!",
]


@dataclass(frozen=True)
class Result:
    """Figures of one bot on one database."""

    name: str
    throughput: float
    p50_ms: float
    p99_ms: float
    replies: int


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message is not None and update.effective_message.text:
        await update.effective_message.reply_text(update.effective_message.text)


class Driver:
    """Queues messages from many simulated users and measures the replies."""

    def __init__(self, api: LocalBotAPI, users: int, first_id: int) -> None:
        self.api = api
        self.users = [api.add_user(first_id + i, f"U{i}", language_code="en") for i in range(users)]

    async def _wait_replies(self, since: int, count: int, limit_s: float) -> float:
        deadline = time.monotonic() + limit_s
        while len(self.api.sent) - since < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.api.sent) - since}/{count} replies after {limit_s}s")
            await asyncio.sleep(0.005)
        return time.time()

    async def burst(self, count: int) -> float:
        """Queue `count` messages at once; updates/s until the last reply."""
        since = len(self.api.sent)
        started = time.time()
        for i in range(count):
            self.api.user_says(self.users[i % len(self.users)], QUESTIONS[i % len(QUESTIONS)])
        finished = await self._wait_replies(since, count, limit_s=max(60.0, count / 5))
        return count / (finished - started)

    async def paced(self, rate: float, seconds: float) -> list[float]:
        """Queue messages at `rate`/s; reply latencies in ms (replies matched per chat, in order)."""
        since = len(self.api.sent)
        queued: dict[int, list[float]] = {}
        total = int(rate * seconds)
        start = time.monotonic()
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            user = self.users[i % len(self.users)]
            self.api.user_says(user, QUESTIONS[i % len(QUESTIONS)])
            queued.setdefault(user.id, []).append(time.time())
        await self._wait_replies(since, total, limit_s=60.0)
        latencies = []
        for record in self.api.sent.items()[since:]:
            pending = queued.get(record.chat_id)
            if pending:
                latencies.append((record.time - pending.pop(0)) * 1000)
        return latencies

    async def greet_all(self) -> None:
        """One message from every user first, so the measured phases see known users."""
        since = len(self.api.sent)
        for user in self.users:
            self.api.user_says(user, "hello")
        await self._wait_replies(since, len(self.users), limit_s=120.0)


async def _measure(
    name: str, app: Application, api: LocalBotAPI, driver: Driver, args: argparse.Namespace
) -> Result:  # type: ignore[type-arg]
    async with running(app):
        while api.state.allowed_updates is None:  # noqa: ASYNC110 - until the first getUpdates
            await asyncio.sleep(0.005)
        await driver.greet_all()  # warm-up: every user known, code paths hot
        throughput = await driver.burst(args.updates)
        latencies = await driver.paced(args.rate, args.seconds)
    return Result(name, throughput, _percentile(latencies, 0.5), _percentile(latencies, 0.99), len(latencies))


def _fresh_postgres() -> tuple[str, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", drop


async def run(args: argparse.Namespace) -> list[tuple[str, Result, Result]]:
    workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    parser = load_or_train_default(workdir / "nlu")
    outcomes = []
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for backend in backends:
        cleanup: Callable[[], None] = lambda: None  # noqa: E731
        if backend == "sqlite":
            url = f"sqlite:///{workdir / f'bench-{backend}.db'}"
        else:
            url, cleanup = _fresh_postgres()
        engine = create_db_engine(url)
        upgrade(engine)
        api = LocalBotAPI()
        with api.serve_in_thread():
            settings = load_settings(
                telegram_bot_token=api.token,
                telegram_api_base_url=api.base_url,
                telegram_api_file_url=api.base_file_url,
                data_dir=workdir / backend,
                database_url=url,
                # This measures the bot's own work, not Telegram's limits (the local server
                # enforces none here): the outbound budget is raised out of the way.
                send_rate_per_s=1_000_000.0,
                per_chat_rate_per_s=1_000.0,
            )
            driver = Driver(api, users=args.users, first_id=10_000)
            echo = Application.builder().token(api.token).base_url(api.base_url).build()
            echo.add_handler(MessageHandler(filters.TEXT, _echo))
            echo_result = await _measure("echo", echo, api, driver, args)
            rapport = build_application(settings, engine=engine, parser=parser)
            rapport_result = await _measure("rapport", rapport, api, driver, args)
            events = count_events(engine)
        engine.dispose()
        cleanup()
        print(f"[{backend}] events logged: {events}", file=sys.stderr)
        outcomes.append((backend, echo_result, rapport_result))
    return outcomes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--updates", type=int, default=2000, help="messages in the throughput burst")
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s in the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument("--users", type=int, default=1000, help="simulated users (flood limit is per user)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    install_token_filter()
    outcomes = asyncio.run(run(args))
    print(f"bench_bot: {args.updates} burst updates, {args.rate:.0f} updates/s for {args.seconds:.0f} s")
    print(f"{'db':<11}{'bot':<9}{'updates/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    for backend, echo, rapport in outcomes:
        for result in (echo, rapport):
            ratio = result.throughput / echo.throughput
            print(
                f"{backend:<11}{result.name:<9}{result.throughput:>10.0f}{result.p50_ms:>9.1f}"
                f"{result.p99_ms:>9.1f}{ratio:>8.2f}"
            )
        ok = rapport.throughput >= 0.5 * echo.throughput and rapport.p99_ms <= 50.0
        print(f"{backend:<11}target (>= 0.5x echo, p99 <= 50 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
