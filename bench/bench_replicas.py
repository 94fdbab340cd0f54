"""Webhook replicas behind nginx: updates/s answered by 1, 2 and 3 replicas beside one process.

Usage: python -m bench.bench_replicas [--updates 600] [--users 150] [--replicas 1,2,3]

Every configuration runs real `rapport run` processes on a fresh PostgreSQL schema against the
local Bot API in this process (`bench.replicas_cluster`):
- the peer: one process in long polling (the default deployment: no load balancer, no claims);
- 1, 2, 3 replicas behind nginx on 127.0.0.1, updates pushed by the Bot API's webhook
  delivery (40 connections, as Telegram's default `max_connections`), each claimed in the
  database, answered once its event is durable, acknowledged after;
- 3 replicas with forced retries: the Bot API re-sends every 5th acknowledged update, and nginx
  gives up on an answer after 300 ms (`--read-timeout`) and re-sends the POST to the next
  replica while the first is still on it. Duplicates (events or answers beyond one per update)
  must be 0.
A burst of `--updates` private /help commands from `--users` users is queued at once;
updates/s = updates / time until the last answer reached the Bot API. Each process is warmed
up first (its first updates load the NLU's lazy parts). On a machine with few cores the
replicas share them, so more replicas help only while an update's time is spent waiting (on
the database, on the Bot API) rather than computing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from bench.replicas_cluster import NGINX, ReplicaCluster
from fakeapi import LocalBotAPI
from nlu import load_or_train_default
from store import create_db_engine, upgrade
from store.models import Event

POSTGRES_URL = os.environ.get(
    "RAPPORT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ENV = {"RAPPORT_PER_CHAT_RATE_PER_S": "50", "RAPPORT_SEND_RATE_PER_S": "100000", "RAPPORT_SEND_LANES": "64"}


def _schema() -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(POSTGRES_URL).begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return schema, url


def _drop(schema: str) -> None:
    with create_engine(POSTGRES_URL).begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _wait(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not done after {timeout:.0f} s")
        time.sleep(0.01)
    return time.monotonic() - started


def _burst(api: LocalBotAPI, users: list[int], count: int) -> float:
    """Queue `count` /help commands round-robin over `users`; seconds until every one is answered."""
    before = len(api.sent)
    started = time.monotonic()
    for index in range(count):
        api.user_command(users[index % len(users)], "help")
    _wait(lambda: len(api.sent) - before >= count, 300)
    return time.monotonic() - started


def run_one(
    label: str,
    *,
    replicas: int,
    updates: int,
    users: int,
    model_dir: Path,
    retries: bool = False,
    read_timeout: str = "300ms",
) -> dict[str, float | str]:
    """One configuration (`replicas=0`: the long-polling peer); its figures."""
    schema, url = _schema()
    api = LocalBotAPI(webhook_retry_delay=0.2)
    try:
        with api.serve_in_thread(), tempfile.TemporaryDirectory() as workdir:
            cluster = ReplicaCluster(
                database_url=url,
                api_base_url=api.base_url,
                api_file_url=api.base_file_url,
                token=api.token,
                workdir=Path(workdir),
                nlu_model_dir=model_dir,
                env=ENV,
                read_timeout=read_timeout if retries else "30s",
            )
            try:
                if replicas == 0:
                    cluster.start_polling()
                    _wait(lambda: api.state.allowed_updates is not None, 120)
                else:
                    cluster.start(replicas, timeout=180)
                    _wait(lambda: api.state.webhook is not None, 60)
                ids = [api.add_user(70_000 + i, f"U{i}", language_code="en").id for i in range(users)]
                _burst(api, ids, min(updates, 4 * max(replicas, 1) * 10))  # warm-up
                if retries:
                    api.state.webhook_redeliver_every = 5
                first_update = api.state._next_update_id
                sent_before = len(api.sent)
                elapsed = _burst(api, ids, updates)
                _wait(lambda: not api.pending_updates, 60)
                time.sleep(1.0)  # late duplicates would land now
                answers = len(api.sent) - sent_before
                resent = cluster.nginx_resends()
            finally:
                cluster.stop()
        engine = create_db_engine(url)
        with engine.connect() as connection:
            counts = connection.execute(
                select(Event.update_id, func.count())
                .where(Event.update_id >= first_update)
                .group_by(Event.update_id)
            ).all()
        engine.dispose()
    finally:
        _drop(schema)
    duplicate_events = sum(n - 1 for _, n in counts if n > 1)
    return {
        "label": label,
        "updates_per_s": updates / elapsed,
        "elapsed_s": elapsed,
        "events": sum(n for _, n in counts),
        "duplicate_events": duplicate_events,
        "duplicate_answers": answers - updates,
        "telegram_resends": api.state.webhook_redelivered + api.state.webhook_failures,
        "nginx_resends": resent,
    }


def main() -> None:
    """Run every configuration and print one line each, with the ratio to the single process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--no-retries", action="store_true", help="Skip the forced-retries run.")
    parser.add_argument(
        "--read-timeout", default="300ms", help="nginx's proxy_read_timeout when forcing retries."
    )
    args = parser.parse_args()
    if NGINX is None:
        raise SystemExit("nginx is not installed (apt-get install nginx)")
    model_dir = Path(tempfile.mkdtemp(prefix="bench-nlu-"))
    load_or_train_default(model_dir)
    rows = [
        run_one(
            "single process (polling)",
            replicas=0,
            updates=args.updates,
            users=args.users,
            model_dir=model_dir,
        )
    ]
    for count in (int(n) for n in args.replicas.split(",")):
        label = f"{count} replica{'s' if count > 1 else ''} behind nginx"
        rows.append(
            run_one(label, replicas=count, updates=args.updates, users=args.users, model_dir=model_dir)
        )
    if not args.no_retries:
        rows.append(
            run_one(
                "3 replicas, forced retries",
                replicas=3,
                updates=args.updates,
                users=args.users,
                model_dir=model_dir,
                retries=True,
                read_timeout=args.read_timeout,
            )
        )
    peer = float(rows[0]["updates_per_s"])
    print(f"{args.updates} updates from {args.users} users, PostgreSQL, nginx {NGINX}")
    for row in rows:
        rate = float(row["updates_per_s"])
        print(
            f"{row['label']:<30} {rate:7.1f} updates/s ({rate / peer:4.2f}x the single process),"
            f" {row['events']} events, duplicate events {row['duplicate_events']},"
            f" duplicate answers {row['duplicate_answers']}; re-sent by the Bot API"
            f" {row['telegram_resends']}, by nginx {row['nginx_resends']}"
        )


if __name__ == "__main__":
    main()
