"""A real bot `Application` running against the local Bot API server, per test."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.app import build_application, services_for
from bot.knowledge import KnowledgeBase, load_knowledge_base
from bot.runner import running
from bot.services import BotServices
from fakeapi import CallRecord, LocalBotAPI, SentRecord, SimUser
from nlu import IntentParser, load_or_train_default
from store import Settings, StoredEvent, create_db_engine, load_settings, upgrade, user_events

ADMIN_ID = 900_001
WAIT_S = 5.0


@pytest.fixture(scope="session")
def knowledge() -> KnowledgeBase:
    """The bundled knowledge base, read once."""
    return load_knowledge_base()


@pytest.fixture(scope="session")
def nlu_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's NLU model is saved (a `rapport run` subprocess can load it)."""
    return tmp_path_factory.mktemp("nlu-model")


@pytest.fixture(scope="session")
def nlu_parser(nlu_model_dir: Path) -> IntentParser:
    """The real default NLU, trained once per test session."""
    return load_or_train_default(nlu_model_dir)  # type: ignore[no-any-return]


@dataclass
class BotHarness:
    """The running bot, the simulated Telegram around it, and the database behind it."""

    api: LocalBotAPI
    app: Any
    engine: Engine
    settings: Settings

    @property
    def services(self) -> BotServices:
        return services_for(self.app)

    def user(self, user_id: int, name: str = "Alice", language: str | None = "en", **kw: Any) -> SimUser:
        return self.api.add_user(user_id, name, language_code=language, **kw)

    def mark(self) -> int:
        """Index of the next sent message (wait only for what comes after)."""
        return len(self.api.sent)

    def call_mark(self) -> int:
        return len(self.api.calls)

    async def reply_to(
        self, chat_id: int, since: int, predicate: Callable[[SentRecord], bool] | None = None
    ) -> SentRecord:
        return await self.api.wait_for(
            lambda r: r.chat_id == chat_id and (predicate is None or predicate(r)), WAIT_S, since=since
        )

    async def say(self, user: SimUser, text: str, chat: int | None = None) -> SentRecord:
        since = self.mark()
        self.api.user_says(user, text, chat)
        return await self.reply_to(chat if chat is not None else user.id, since)

    async def command(
        self, user: SimUser, command: str, args: str = "", chat: int | None = None
    ) -> SentRecord:
        since = self.mark()
        self.api.user_command(user, command, args, chat)
        return await self.reply_to(chat if chat is not None else user.id, since)

    async def press(
        self, user: SimUser, message: SentRecord, data: str, *, forged: bool = False
    ) -> CallRecord:
        """Press a button and wait for the bot's answerCallbackQuery."""
        since = self.call_mark()
        update = self.api.press_button(user, message, data, forged=forged)
        query_id = update["callback_query"]["id"]
        return await self.api.wait_for_call(
            lambda c: c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id,
            WAIT_S,
            since=since,
        )

    async def idle(self) -> None:
        """Wait until every queued update is handled and the event log is written."""
        for _ in range(200):
            if not self.api.pending_updates:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        for _ in range(200):
            if (
                not self.app.update_queue.qsize()
                and self.app.update_processor.current_concurrent_updates == 0
            ):
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(self.services.writer.flush)

    async def events(self, user_id: int) -> list[StoredEvent]:
        await self.idle()
        return await asyncio.to_thread(user_events, self.engine, user_id)


def make_settings(api: LocalBotAPI, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": api.token,
        "telegram_api_base_url": api.base_url,
        "telegram_api_file_url": api.base_file_url,
        "data_dir": data_dir,
        "admin_ids": [ADMIN_ID],
        **overrides,
    }
    return load_settings(**values)


@pytest.fixture
def bot_settings(api: LocalBotAPI, tmp_path: Path) -> Callable[..., Settings]:
    """Build bot settings pointing at the local server: `bot_settings(store_text=True)`."""
    return lambda **overrides: make_settings(api, tmp_path / "data", **overrides)


@pytest.fixture
def admin_id() -> int:
    """The Telegram id configured as community manager."""
    return ADMIN_ID


@pytest.fixture
async def api() -> AsyncIterator[LocalBotAPI]:
    """The local Bot API server in this test's event loop."""
    server = LocalBotAPI()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once; each test copies it (much faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "bot.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def bot_engine(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Engine]:
    """A fresh migrated SQLite database for one test."""
    path = tmp_path / "bot.db"
    shutil.copyfile(migrated_sqlite, path)
    engine = create_db_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings (e.g. store_text)."""
    return {}


@asynccontextmanager
async def _running_bot(
    api: LocalBotAPI, engine: Engine, parser: IntentParser, knowledge: KnowledgeBase, settings: Settings
) -> AsyncIterator[BotHarness]:
    app = build_application(settings, engine=engine, parser=parser, knowledge=knowledge)
    async with running(app):
        # The first getUpdates carries allowed_updates; updates queued before it would not be filtered.
        for _ in range(500):
            if api.state.allowed_updates is not None:
                break
            await asyncio.sleep(0.002)
        yield BotHarness(api=api, app=app, engine=engine, settings=settings)


@pytest.fixture
async def bot(
    api: LocalBotAPI,
    bot_engine: Engine,
    nlu_parser: IntentParser,
    knowledge: KnowledgeBase,
    tmp_path: Path,
    settings_overrides: dict[str, Any],
) -> AsyncIterator[BotHarness]:
    """The bot running with long polling against the local server, on SQLite."""
    settings = make_settings(api, tmp_path / "data", **settings_overrides)
    async with _running_bot(api, bot_engine, nlu_parser, knowledge, settings) as harness:
        yield harness


@pytest.fixture
async def bot_any_db(
    api: LocalBotAPI, engine: Engine, nlu_parser: IntentParser, knowledge: KnowledgeBase, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    """The running bot on SQLite and on PostgreSQL (the root `engine` fixture's backends)."""
    settings = make_settings(api, tmp_path / "data")
    async with _running_bot(api, engine, nlu_parser, knowledge, settings) as harness:
        yield harness
