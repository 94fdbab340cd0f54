"""Webhook replicas on one database: each update logged and answered once, events in Telegram's order.

The first tests run two bot applications in this process on one SQLite file and post updates to
their receivers directly; the last one runs real `rapport run --webhook` replicas on PostgreSQL
behind nginx, fed by the local Bot API's webhook delivery, and kills one of them mid-stream.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import Engine, create_engine, func, select, text, update
from telegram import Update

from bench.replicas_cluster import NGINX, ReplicaCluster, nginx_config
from bot.app import build_application
from bot.replicas import telegram_time
from bot.runner import WebhookOptions, running
from bot.webhook import SECRET_HEADER, derived_secret
from cli.run import webhook_url_problem
from fakeapi import LocalBotAPI
from scheduler.planning import create_broadcast
from store import EventRecord, append_events, count_events, create_db_engine, upgrade, user_events
from store.db import unit_of_work
from store.models import Event, ProcessedUpdate
from store.updates import Claim, claim_update

SECRET = "replica-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _replicas(
    count: int, bot_settings: Callable[..., Any], engine: Engine, parser: Any, *, reply: bool = True
) -> AsyncIterator[list[str]]:
    """`count` bot applications with claiming webhook receivers on one database; their URLs."""
    urls: list[str] = []
    async with AsyncExitStack() as stack:
        for _ in range(count):
            application = build_application(bot_settings(), engine=engine, parser=parser)
            port = _free_port()
            url = f"http://127.0.0.1:{port}/telegram"
            options = WebhookOptions(
                url=url, listen="127.0.0.1", port=port, secret_token=SECRET, dedup=True, reply=reply
            )
            await stack.enter_async_context(running(application, webhook=options))
            urls.append(url)
        yield urls


def _take_pending(api: LocalBotAPI) -> list[dict[str, Any]]:
    """The updates the simulated users caused, taken out of the server (posted by the test instead)."""
    with api.state.lock:
        taken, api.state.pending = list(api.state.pending), []
    return taken


async def _deliver(
    api: LocalBotAPI, session: aiohttp.ClientSession, url: str, body: dict[str, Any], *, lost: bool = False
) -> tuple[int, bytes]:
    """POST as Telegram does: a 2xx response's Bot API call is executed, unless the answer is `lost`."""
    async with session.post(url, json=body, headers={SECRET_HEADER: SECRET}) as response:
        reply = await response.read()
        if 200 <= response.status < 300 and not lost:
            api.execute_webhook_reply(reply, response.content_type)
        return response.status, reply


async def _post(
    api: LocalBotAPI, session: aiohttp.ClientSession, url: str, body: dict[str, Any], *, lost: bool = False
) -> int:
    status, _ = await _deliver(api, session, url, body, lost=lost)
    return status


def _replies(api: LocalBotAPI, chat_id: int) -> int:
    return sum(1 for record in api.sent if record.chat_id == chat_id)


async def test_a_retry_reaching_another_replica_is_acknowledged_without_handling(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    async with _replicas(2, bot_settings, bot_engine, nlu_parser) as (first, second):
        api.state.webhook = None  # the test posts the updates itself
        alice = api.add_user(8101, "Alice", language_code="en")
        api.user_command(alice, "help")
        (help_update,) = _take_pending(api)
        async with aiohttp.ClientSession() as session:
            # Telegram retries a delivery whose answer it did not get: the first two answers are lost.
            answers = [
                await _deliver(api, session, first, help_update, lost=True),
                await _deliver(api, session, second, help_update, lost=True),  # the retry, elsewhere
                await _deliver(api, session, first, help_update),
            ]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert answers[0][1] == answers[1][1] == answers[2][1]  # the stored reply, given again
    assert json.loads(answers[0][1])["method"] == "sendMessage"
    assert _replies(api, 8101) == 1
    assert [e.update_id for e in user_events(bot_engine, 8101)] == [help_update["update_id"]]


async def test_with_the_webhook_reply_off_the_answer_goes_over_http_and_a_retry_gets_an_empty_200(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    async with _replicas(1, bot_settings, bot_engine, nlu_parser, reply=False) as (url,):
        api.state.webhook = None
        alice = api.add_user(8105, "Alice", language_code="en")
        api.user_command(alice, "help")
        (help_update,) = _take_pending(api)
        async with aiohttp.ClientSession() as session:
            first = await _deliver(api, session, url, help_update, lost=True)
            assert _replies(api, 8105) == 1  # sent over HTTP while handling
            retry = await _deliver(api, session, url, help_update)
    assert first == retry == (200, b"")
    assert _replies(api, 8105) == 1


async def test_two_updates_handled_in_reverse_order_by_two_replicas_read_back_in_telegram_order(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    async with _replicas(2, bot_settings, bot_engine, nlu_parser) as (first, second):
        api.state.webhook = None
        alice = api.add_user(8102, "Alice", language_code="en")
        api.user_command(alice, "help")
        api.user_command(alice, "privacy")
        earlier, later = _take_pending(api)
        assert earlier["update_id"] < later["update_id"]
        later["message"]["date"] = earlier["message"]["date"]  # one Telegram second
        async with aiohttp.ClientSession() as session:
            assert await _post(api, session, second, later) == 200  # written first, by the other replica
            assert await _post(api, session, first, earlier) == 200
    events = user_events(bot_engine, 8102)
    assert [e.attributes["command"] for e in events if e.attributes] == ["help", "privacy"]
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)  # inserted the other way
    assert events[0].ts == datetime.fromtimestamp(earlier["message"]["date"], UTC)


async def test_a_fresh_claim_elsewhere_answers_503_and_a_stale_one_is_taken_over_without_relogging(
    api: LocalBotAPI, bot_engine: Engine, nlu_parser: Any, bot_settings: Callable[..., Any]
) -> None:
    async with _replicas(1, bot_settings, bot_engine, nlu_parser) as (url,):
        api.state.webhook = None
        bob = api.add_user(8103, "Bob", language_code="en")
        api.user_command(bob, "help")
        api.user_command(bob, "privacy")
        busy, logged = _take_pending(api)
        now = datetime.now(UTC)
        long_ago = now - timedelta(minutes=5)
        stale = timedelta(seconds=30)
        assert claim_update(bot_engine, busy["update_id"], "other", now=now, stale_after=stale) is Claim.NEW
        assert (
            claim_update(bot_engine, logged["update_id"], "dead", now=long_ago, stale_after=stale)
            is Claim.NEW
        )
        # The dead replica had written the event of `logged` (not answered, not finished).
        ts = datetime.fromtimestamp(logged["message"]["date"], UTC)
        append_events(
            bot_engine,
            [EventRecord(user_id=8103, ts=ts, kind="command", update_id=logged["update_id"], attributes={})],
        )
        async with aiohttp.ClientSession() as session:
            assert await _post(api, session, url, busy) == 503  # "other" is on it: Telegram retries later
            assert _replies(api, 8103) == 0
            with unit_of_work(bot_engine) as db:
                db.execute(
                    update(ProcessedUpdate)
                    .where(ProcessedUpdate.update_id == busy["update_id"])
                    .values(claimed_at=long_ago)
                )
            assert await _post(api, session, url, busy) == 200  # "other" died: taken over and handled
            assert await _post(api, session, url, logged) == 200  # taken over: answered, not logged again
    assert _replies(api, 8103) == 2
    assert sorted(e.update_id or 0 for e in user_events(bot_engine, 8103)) == sorted(
        [busy["update_id"], logged["update_id"]]
    )
    with unit_of_work(bot_engine) as db:
        done = db.scalars(select(ProcessedUpdate).where(ProcessedUpdate.done_at.is_not(None))).all()
        assert {row.update_id for row in done} == {busy["update_id"], logged["update_id"]}


async def test_the_database_down_while_claiming_answers_503_and_handles_nothing(
    api: LocalBotAPI,
    bot_engine: Engine,
    nlu_parser: Any,
    bot_settings: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with _replicas(1, bot_settings, bot_engine, nlu_parser) as (url,):
        api.state.webhook = None
        carol = api.add_user(8104, "Carol", language_code="en")
        api.user_command(carol, "help")
        (body,) = _take_pending(api)

        def down(*_: Any, **__: Any) -> Claim:
            raise ConnectionError("database is down")

        monkeypatch.setattr("bot.replicas.claim_update", down)
        async with aiohttp.ClientSession() as session:
            assert await _post(api, session, url, body) == 503
            monkeypatch.undo()
            assert await _post(api, session, url, body) == 200  # Telegram's retry, once it is back
    assert _replies(api, 8104) == 1
    assert count_events(bot_engine) == 1


def test_telegram_time_is_the_update_date_in_whole_seconds_else_the_received_second() -> None:
    received = datetime(2026, 12, 1, 12, 0, 5, 700_000, tzinfo=UTC)
    message = Update.de_json(
        {
            "update_id": 1,
            "message": {"message_id": 1, "date": 1_700_000_000, "chat": {"id": 1, "type": "private"}},
        },
        None,
    )
    assert message is not None
    assert telegram_time(message, received) == datetime.fromtimestamp(1_700_000_000, UTC)
    poll_answer = Update.de_json(
        {
            "update_id": 2,
            "poll_answer": {
                "poll_id": "p",
                "option_ids": [0],
                "option_persistent_ids": ["0"],
                "user": {"id": 1, "is_bot": False, "first_name": "A"},
            },
        },
        None,
    )
    assert poll_answer is not None
    assert telegram_time(poll_answer, received) == received.replace(microsecond=0)


# ---- real replicas behind nginx -------------------------------------------------------------
USERS = 30
UPDATES_PER_USER = 4
LEASE_S = 2.0
CLAIM_TIMEOUT_S = 3.0
PUSH_TEXT = "Replica push: exactly once"


@pytest.fixture
def replica_db(postgres_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL schema for the replicas."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def _unfinished(engine: Engine, pid: int) -> set[int]:
    """The updates the replica with process id `pid` has claimed and not finished."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(ProcessedUpdate.update_id).where(
                    ProcessedUpdate.replica.like(f"%:{pid}:%"), ProcessedUpdate.done_at.is_(None)
                )
            ).scalars()
        )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)")
def test_three_replicas_behind_nginx_lose_nothing_and_double_nothing_when_one_is_killed(
    replica_db: str, nlu_model_dir: Path, nlu_parser: Any, tmp_path: Path
) -> None:
    api = LocalBotAPI(webhook_retry_delay=0.3)
    engine = create_db_engine(replica_db)
    with api.serve_in_thread():
        cluster = ReplicaCluster(
            database_url=replica_db,
            api_base_url=api.base_url,
            api_file_url=api.base_file_url,
            token=api.token,
            workdir=tmp_path,
            nlu_model_dir=nlu_model_dir,
            env={
                "RAPPORT_SCHEDULER_LEASE_S": str(LEASE_S),
                "RAPPORT_WEBHOOK_CLAIM_TIMEOUT_S": str(CLAIM_TIMEOUT_S),
                "RAPPORT_PER_CHAT_RATE_PER_S": "50",
                "RAPPORT_SEND_RATE_PER_S": "1000",
            },
        )
        try:
            started = time.monotonic()
            cluster.start(3)
            print(f"replicas up in {time.monotonic() - started:.1f} s")
            _wait(lambda: cluster.holder(engine) is not None, 30, "a scheduler lease holder")
            api.state.webhook_redeliver_every = 7  # Telegram re-sends every 7th update once more
            users = [api.add_user(9000 + i, f"User{i}", language_code="en") for i in range(USERS)]
            chat_of: dict[int, int] = {}
            sent_updates = 0
            victim: Any = None
            in_flight: set[int] = set()
            watcher: Any = None
            for round_ in range(UPDATES_PER_USER):
                for user in users:
                    queued = api.user_command(user, "help" if round_ % 2 == 0 else "privacy")
                    chat_of[queued["update_id"]] = user.id
                    sent_updates += 1
                    if victim is not None or api.state.webhook_acked < USERS:
                        time.sleep(0.01)  # (a burst while looking for the moment to kill)
                    if victim is None and api.state.webhook_acked >= USERS:  # mid-stream: kill the holder
                        holder = cluster.holder(engine)
                        assert holder is not None
                        last = round_ == UPDATES_PER_USER - 1 and user is users[-1]
                        # Preferably while it has an update in hand (claimed, not done): the case
                        # that answered twice when answers went over HTTP before the claim was done.
                        if not last and not _unfinished(engine, holder.pid):
                            continue
                        victim = holder
                        cluster.kill(victim)
                        watcher = cluster.watch_takeover(engine, victim)
                        in_flight = _unfinished(engine, victim.pid)
            assert victim is not None, "the stream ended before the kill"
            drained = _wait(lambda: not api.pending_updates, 40, "every update acknowledged")
            print(f"{sent_updates} updates, drained in {drained:.1f} s, {len(in_flight)} in flight at kill")
            watcher.join()
            takeover_s = cluster.takeover_s
            print(f"lease taken over {takeover_s} s after the kill")
            new_holder = cluster.holder(engine)
            assert new_holder is not None and new_holder is not victim
            now = datetime.now(UTC)
            create_broadcast(engine, segment="all", text=PUSH_TEXT, at=now, now=now)
            pushed = lambda: {r.chat_id for r in api.sent if r.text == PUSH_TEXT}  # noqa: E731
            _wait(lambda: len(pushed()) == USERS, 20, "the broadcast to every user")
            time.sleep(1.0)  # a second sender would show up now
        finally:
            cluster.stop()
    replies: dict[int, int] = {}
    pushes: dict[int, int] = {}
    for record in api.sent:
        counts = pushes if record.text == PUSH_TEXT else replies
        counts[record.chat_id] = counts.get(record.chat_id, 0) + 1
    assert api.state.webhook_redelivered > 0
    assert pushes == {user.id: 1 for user in users}
    # Answers: exactly once, also for the updates in flight at the kill: an answer travels in
    # the webhook response, which the killed replica never gave (the update is taken over and
    # answered by another) or gave after marking the claim done (a retry gets the stored reply).
    extra = {chat: replies.get(chat, 0) - UPDATES_PER_USER for chat in chat_of.values()}
    print(f"answered twice: {sum(extra.values())} of the {len(in_flight)} in flight at the kill")
    assert extra == {chat: 0 for chat in chat_of.values()}, extra
    with engine.connect() as connection:
        per_update = dict(
            connection.execute(
                select(Event.update_id, func.count())
                .where(Event.update_id.is_not(None))
                .group_by(Event.update_id)
            ).all()
        )
    engine_events = {
        user.id: [e.update_id for e in user_events(engine, user.id) if e.update_id is not None]
        for user in users
    }
    engine.dispose()
    assert per_update == {update_id: 1 for update_id in chat_of}  # each event logged exactly once
    for user_id, update_ids in engine_events.items():
        assert update_ids == sorted(update_ids), user_id  # per-user order is Telegram's
    # The standby takes the lease over once it expires (LEASE_S after the last renewal, at most a
    # third of it before the kill) on its next try (every third): within LEASE_S * 4/3, plus slack.
    assert takeover_s is not None and takeover_s <= LEASE_S * 4 / 3 + 1.5, takeover_s


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)")
def test_the_load_balancer_configuration_passes_nginx_t(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(tmp_path, port=18080, upstreams=[18081, 18082]))
    assert NGINX is not None
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert conf.read_text().count("server 127.0.0.1:1808") == 2


def test_a_local_bot_api_takes_plain_http_webhooks_on_any_port_and_telegram_does_not() -> None:
    url = "http://127.0.0.1:18080/telegram"
    assert webhook_url_problem(url, local_api=True) is None
    assert "https://" in (webhook_url_problem(url) or "")
    assert "invalid port" in (webhook_url_problem("http://127.0.0.1:99999/x", local_api=True) or "")
    assert "must be a URL" in (webhook_url_problem("example.org/hook", local_api=True) or "")


def test_every_replica_derives_the_same_valid_webhook_secret_from_the_token() -> None:
    secret = derived_secret("123:abc")
    assert secret == derived_secret("123:abc") != derived_secret("123:abd")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret)
    assert "abc" not in secret
