"""The composition root: `build_application(settings)` wires the whole bot together."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import ssl

import httpx
from sqlalchemy import Engine
from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import TelegramError
from telegram.ext import ApplicationBuilder

from bot.callbacks import CallbackCodec, secret_for_token
from bot.context import CONTEXT_TYPES, RapportApp
from bot.context import services_for as services_for  # re-exported: hooks, the demo and tests use it
from bot.delivery import TelegramSender
from bot.errors import BotStartupError
from bot.knowledge import KnowledgeBase, load_knowledge_base, with_topics
from bot.nlu_reload import ModelReloader
from bot.outbound import OutboundLimiter
from bot.routing import register_handlers
from bot.services import BotServices
from bot.transport import BotApiRequest
from nlu import (
    FALLBACK_INTENT,
    IntentParser,
    NLUModel,
    RemoteRasaParser,
    default_data_paths,
    load_or_train_default,
)
from nlu.additions import TOPICS_FILE, DeploymentData
from scheduler import SchedulerService
from store import EventWriter, Settings, create_db_engine, replay_spool

logger = logging.getLogger(__name__)

ALLOWED_UPDATES: list[str] = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CALLBACK_QUERY,
    Update.POLL_ANSWER,
    Update.MESSAGE_REACTION,
    Update.CHAT_MEMBER,
    Update.MY_CHAT_MEMBER,
]
QUIET_LOGGERS = ("httpx", "httpcore")
WRITER_BATCH_DELAY_S = 0.05
CONCURRENT_UPDATES = 4  # more only adds HTTP-pool overhead on small machines (see bench_bot)
MAX_SEND_POOL = 256  # connections for the calls the outbound limiter lets through at once

USER_COMMANDS = {
    "en": [
        ("start", "Welcome and what I can do"),
        ("help", "What I can do"),
        ("privacy", "What data I keep"),
        ("feedback", "Rate my answers"),
        ("stop", "No more tips or announcements"),
        ("forget", "Delete everything about me"),
    ],
    "zh": [
        ("start", "欢迎与功能介绍"),
        ("help", "我能做什么"),
        ("privacy", "我保存哪些数据"),
        ("feedback", "给我的回答评分"),
        ("stop", "不再接收提示和公告"),
        ("forget", "删除关于我的全部数据"),
    ],
}
ADMIN_COMMANDS = [
    ("stats", "Activity: DAU/WAU/MAU, intents, fallbacks"),
    ("segments", "Current user segments"),
    ("insights", "Top behaviour rules"),
    ("broadcast", "Send a message to a segment"),
    ("campaigns", "Recent sends and delivery"),
    ("dashboard", "A one-time login link to the dashboard"),
]


def deployment_data(settings: Settings) -> DeploymentData:
    """The NLU data of this deployment: RAPPORT_NLU_DATA (else the bundled files) and the examples
    managers added in the dashboard and a retraining accepted (`<data_dir>/nlu`)."""
    return DeploymentData(settings.nlu_additions_dir, settings.nlu_data or default_data_paths())


def default_knowledge(settings: Settings) -> KnowledgeBase:
    """The knowledge base (RAPPORT_KNOWLEDGE_BASE or the bundled one) plus the dashboard's topics."""
    return with_topics(load_knowledge_base(settings.knowledge_base), settings.nlu_additions_dir / TOPICS_FILE)


def default_parser(settings: Settings) -> IntentParser:
    """The local NLU (trained from the bundled data when no model exists), remote if configured."""
    local = load_or_train_default(
        settings.resolved_nlu_model_dir, data_paths=deployment_data(settings).training_paths()
    )
    if settings.nlu_url:
        logger.info("using the Rasa server at %s, local NLU as fallback", settings.nlu_url)
        return RemoteRasaParser(
            settings.nlu_url,
            fallback=local,
            timeout_s=settings.nlu_timeout_s,
            auth_token=settings.nlu_auth_token,
        )
    return local


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verified TLS context per process: loading the CA bundle costs ~0.1 s per client."""
    return httpx.create_ssl_context()


def _request(*, pool_size: int) -> BotApiRequest:
    return BotApiRequest(connection_pool_size=pool_size, httpx_kwargs={"verify": _tls_context()})


def callback_secret(settings: Settings) -> str:
    """Key material for callback signatures: stable for one bot, unknown to everyone else."""
    return secret_for_token(f"{settings.telegram_bot_token}")


async def _set_commands(application: RapportApp, services: BotServices) -> None:
    bot = application.bot
    try:
        for lang, commands in USER_COMMANDS.items():
            await bot.set_my_commands(
                [BotCommand(name, text) for name, text in commands],
                scope=BotCommandScopeDefault(),
                language_code=None if lang == "en" else lang,
            )
    except TelegramError as exc:
        logger.warning("could not set the command menu: %s", exc)
    admin_menu = [BotCommand(n, d) for n, d in USER_COMMANDS["en"] + ADMIN_COMMANDS]
    for admin_id in services.admin_ids:
        try:
            await bot.set_my_commands(admin_menu, scope=BotCommandScopeChat(admin_id))
        except TelegramError as exc:  # the manager has not started a chat with the bot yet
            logger.info("no manager command menu for %d: %s", admin_id, exc)


async def _post_init(application: RapportApp) -> None:
    services = services_for(application)
    services.writer.start()
    spool = services.settings.data_dir / "spool"
    replayed = await asyncio.to_thread(replay_spool, services.engine, spool)
    if replayed:
        logger.info("replayed %d events spooled by an earlier run", replayed)
    await _set_commands(application, services)
    for hook in services.startup_hooks:
        await hook(application)
    # What start-up loaded (libraries, the NLU model, the knowledge base) lives as long as the
    # process. Left to the collector, every full pass walks those ~300k objects for over 100 ms
    # with the event loop stopped, which is what the slowest replies were waiting on.
    gc.collect()
    gc.freeze()
    logger.info("bot @%s ready", application.bot.username)


async def _post_shutdown(application: RapportApp) -> None:
    services = services_for(application)
    for hook in reversed(services.shutdown_hooks):
        try:
            await hook(application)
        except Exception:  # one failing hook must not keep the event log from being flushed
            logger.exception("shutdown hook %r failed", hook)
    await asyncio.to_thread(services.writer.close)
    gc.unfreeze()  # what was frozen at start can be collected again once the bot is gone
    logger.info("event log flushed: %d events written", services.writer.written)


def build_application(
    settings: Settings,
    *,
    engine: Engine | None = None,
    parser: IntentParser | None = None,
    knowledge: KnowledgeBase | None = None,
    concurrent_updates: int = CONCURRENT_UPDATES,
) -> RapportApp:
    """Build the bot: handlers, the observer, the event writer, NLU and knowledge base.

    Nothing talks to Telegram here; `post_init` starts the event writer, replays spooled
    events, sets the command menus and runs the startup hooks (the scheduler, in
    `rapport run`), and `post_shutdown` stops them and flushes the event log.

    Raises:
        BotStartupError: no bot token is configured.
    """
    token = settings.telegram_bot_token
    if not token:
        raise BotStartupError("TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and export it")
    # Bot API request URLs contain the token: whoever runs the bot, the HTTP client stays quiet.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
    engine = engine or create_db_engine(settings.resolved_database_url)
    services = BotServices(
        settings=settings,
        engine=engine,
        writer=EventWriter(
            engine,
            store_text=settings.store_text,
            spool_dir=settings.data_dir / "spool",
            # Gathering events for a moment means one transaction per batch instead of one per
            # update: far less work for the writer thread, which shares the GIL with the bot.
            max_delay_s=WRITER_BATCH_DELAY_S,
        ),
        parser=parser or default_parser(settings),
        knowledge=knowledge or default_knowledge(settings),
        codec=CallbackCodec(callback_secret(settings)),
    )
    # One outbound budget for replies and pushes (see bot.outbound); every call the limiter
    # lets through at once needs its own connection, or it would wait out the pool timeout.
    limiter = OutboundLimiter.from_settings(settings)
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_api_file_url)
        .rate_limiter(limiter)
        .request(
            _request(pool_size=max(8, 2 * concurrent_updates) + min(limiter.window_limit, MAX_SEND_POOL))
        )
        .get_updates_request(_request(pool_size=1))
        .context_types(CONTEXT_TYPES)
        .concurrent_updates(concurrent_updates)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data.services = services
    if parser is None:  # the bot's own model: pick up what the dashboard's retraining activates
        reloader = ModelReloader(
            services,
            model_dir=settings.resolved_nlu_model_dir,
            topics_path=settings.nlu_additions_dir / TOPICS_FILE,
            knowledge_base=settings.knowledge_base,
        )
        services.startup_hooks.append(reloader.start)
        services.shutdown_hooks.append(reloader.stop)
    register_handlers(application)
    return application


def nlu_labels(parser: IntentParser) -> frozenset[str] | None:
    """The intents the local NLU model can give (plus its fallback), for checking the follow-up
    catalogue's targets; None for a remote Rasa server, whose labels are not known here."""
    if isinstance(parser, NLUModel):
        return frozenset([*parser.labels, FALLBACK_INTENT])
    return None


def attach_scheduler(application: RapportApp, settings: Settings) -> SchedulerService:
    """Run the scheduler in this process: deliveries through the bot, broadcasts from /broadcast.

    The service starts in post_init and stops (finishing the sends in flight, then giving up
    its lease) in post_stop, while the bot's HTTP client is still open; the shutdown hook
    only makes sure. Only one process per database sends: the others stand by.
    """
    services = services_for(application)
    sender = TelegramSender.from_settings(settings, bot=application.bot)
    service = SchedulerService(
        services.engine,
        settings,
        sender,
        intents=nlu_labels(services.understander.parser),
        lease_ttl_s=settings.scheduler_lease_s,
    )
    services.broadcasts = service

    async def start(_: RapportApp) -> None:
        await service.start()

    async def stop(_: RapportApp) -> None:
        await service.stop()

    previous_post_stop = application.post_stop

    async def stop_before_close(app: RapportApp) -> None:
        await service.stop()
        if previous_post_stop is not None:
            await previous_post_stop(app)

    application.post_stop = stop_before_close
    services.startup_hooks.append(start)
    services.shutdown_hooks.append(stop)  # a no-op after post_stop; covers callers that skip it
    return service
