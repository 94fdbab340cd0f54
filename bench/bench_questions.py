"""Grouping unanswered questions by meaning: how long the Questions page's grouping takes.

Usage: python -m bench.bench_questions [--questions 5000] [--repeat 10]

It writes `--questions` unanswered messages (English and Chinese paraphrases of 60 made-up
questions, with typos and filler words, so most texts are distinct) into a fresh SQLite file, then
times `dashboard.question_groups.group_questions` on all of them against the bundled training data:
cold (every text embedded by the sentence encoder) and warm (embeddings cached: the clustering and
nearest-intent search alone). Its peer, measured in the same run, is the grouping by identical text
the page did before (`store.analytics_queries.unanswered_texts`, one GROUP BY). Then the page itself
through the ASGI app: its first request (which starts grouping its sample of the most recent
messages in the background and waits at most 2 s for it), when the groups appear, and the requests
after that.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.exceptions import StarletteDeprecationWarning
from threadpoolctl import threadpool_limits

from dashboard import DashboardConfig, create_app
from dashboard.question_groups import SAMPLE, group_questions
from nlu import default_data_paths, load_training_data
from nlu.encoder import USE_MULTILINGUAL_V3, get_encoder
from nlu.grouping import DEFAULT_MIN_SIMILARITY, EmbeddingCache
from store import EventRecord, append_events, create_db_engine, upgrade
from store.analytics_queries import unanswered_texts
from store.db import read_snapshot
from store.logins import issue_login_token
from store.questions import recent_unanswered

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ADMIN = 1
SUBJECTS_EN = [
    "ship to {x}", "deliver to {x}", "a discount for {x}", "an office in {x}", "support in {x}",
    "pay with {x}", "an invoice in {x}", "a plan for {x}", "a webinar about {x}", "a guide to {x}",
]  # fmt: skip
PLACES = ["mars", "students", "paypal", "berlin", "euros", "teams", "bitcoin", "tokyo", "schools", "tuning"]
FORMS_EN = ["do you have {s}?", "can i get {s}", "is there {s}", "any chance of {s}", "how do i get {s}"]
SUBJECTS_ZH = ["寄到{x}", "{x}优惠", "在{x}的办公室", "用{x}付款", "{x}的发票", "关于{x}的教程"]
PLACES_ZH = ["火星", "学生", "柏林", "东京", "学校", "比特币"]
FORMS_ZH = ["你们有{s}吗", "可以{s}吗", "请问有没有{s}", "怎么才能{s}"]
FILLERS = ["", "", "please", "thanks", "asap", "pls", "hi,", "quick question:", "hey"]


def _questions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        if rng.random() < 0.3:
            subject = rng.choice(SUBJECTS_ZH).format(x=rng.choice(PLACES_ZH))
            text = rng.choice(FORMS_ZH).format(s=subject) + rng.choice(["", "？", "呢", "啊"])
        else:
            subject = rng.choice(SUBJECTS_EN).format(x=rng.choice(PLACES))
            text = f"{rng.choice(FILLERS)} {rng.choice(FORMS_EN).format(s=subject)} {rng.choice(FILLERS)}"
            if rng.random() < 0.3:  # a typo
                i = rng.randrange(len(text))
                text = text[:i] + text[i + 1 :]
            text = f"{text} #{rng.randrange(1000)}" if rng.random() < 0.5 else text
        texts.append(" ".join(text.split()))
    return texts


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        texts = _questions(args.questions, seed=7)
        append_events(
            engine,
            [
                EventRecord(
                    user_id=1000 + i % 700,
                    chat_id=1000 + i % 700,
                    ts=now - timedelta(minutes=5 * i + 1),
                    kind="fallback",
                    intent="nlu_fallback",
                    text=text,
                )
                for i, text in enumerate(texts)
            ],
        )
        since = now - timedelta(days=366)
        with read_snapshot(engine) as db:
            questions = recent_unanswered(db, since=since, until=now, limit=args.questions)
        examples = load_training_data(default_data_paths()).examples
        started = time.perf_counter()
        get_encoder(USE_MULTILINGUAL_V3).encode(["warm-up"])
        load_s = time.perf_counter() - started
        cache = EmbeddingCache()
        started = time.perf_counter()
        with threadpool_limits(limits=1, user_api="blas"):  # as group_questions embeds
            cache.embed([e.text for e in examples])
        examples_s = time.perf_counter() - started

        started = time.perf_counter()
        grouping = group_questions(
            questions, cache=cache, examples=examples, min_similarity=DEFAULT_MIN_SIMILARITY
        )
        cold_s = time.perf_counter() - started
        warm = []
        for _ in range(max(1, args.repeat // 3)):
            started = time.perf_counter()
            group_questions(questions, cache=cache, examples=examples, min_similarity=DEFAULT_MIN_SIMILARITY)
            warm.append(time.perf_counter() - started)
        peer = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            with read_snapshot(engine) as db:
                unanswered_texts(db, since=since, until=now, limit=50)
            peer.append(time.perf_counter() - started)
        warm_s, peer_s = statistics.median(warm), statistics.median(peer)
        print(
            f"{len(questions)} questions, {grouping.distinct} distinct texts -> "
            f"{len(grouping.groups)} groups (largest {grouping.groups[0].asked if grouping.groups else 0})"
        )
        print(f"encoder load {_ms(load_s)}; {len(examples)} training examples embedded: {_ms(examples_s)}")
        print(
            f"group by meaning, cold (embed every text): {_ms(cold_s)}; warm (cached embeddings): "
            f"{_ms(warm_s)} (median of {len(warm)})"
        )
        print(
            f"peer, grouping by identical text in SQL: {_ms(peer_s)}; ratio cold {cold_s / peer_s:,.0f}x, "
            f"warm {warm_s / peer_s:,.0f}x"
        )

        config = DashboardConfig(
            engine=engine, secret=b"bench", admin_ids=frozenset({ADMIN}), base_url="http://testserver"
        )
        client = TestClient(create_app(config), follow_redirects=False)
        token = issue_login_token(engine, config.secret, user_id=ADMIN, now=datetime.now(UTC))
        assert client.post("/login", data={"token": token}).status_code == 303
        started = time.perf_counter()
        first = client.get("/questions?days=366")
        first_s = time.perf_counter() - started
        assert first.status_code == 200
        while "Grouping the latest questions" in client.get("/questions?days=366").text:
            time.sleep(0.25)
        ready_s = time.perf_counter() - started
        cached = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            assert client.get("/questions?days=366").status_code == 200
            cached.append(time.perf_counter() - started)
        cached.sort()
        p95 = cached[min(len(cached) - 1, round(0.95 * (len(cached) - 1)))]
        print(
            f"page /questions (sample of the {SAMPLE:,} most recent): first request {_ms(first_s)}, "
            f"groups shown after {_ms(ready_s)} (cold: the worker embeds the sample and the training "
            f"examples), then p50 {_ms(statistics.median(cached))} p95 {_ms(p95)}"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
