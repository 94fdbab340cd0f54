"""The Questions page: grouping by meaning, assigning to intents, new topics, and retraining the NLU."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from dashboard import DashboardConfig, create_app
from dashboard.nlu_training import NLU_MODEL_KIND, NLUTrainer, deployment_data
from dashboard.question_groups import Grouping, GroupingWorker
from dashboard.sessions import COOKIE_NAME
from nlu import TrainingConfig, load_training_data, read_metadata, train
from nlu.additions import DeploymentData
from nlu.grouping import EmbeddingCache, group_by_meaning
from nlu.model import NLUModel
from nlu.training_data import TrainingData
from store import EventRecord, append_events
from store.audit import list_actions
from store.db import read_snapshot
from store.model_runs import list_model_runs
from tests.dashboard.conftest import ADMIN, BOT_TOKEN, OTHER_ADMIN, Clock, Dash, TestClient, csrf_of

FAST = TrainingConfig(sentence_encoder=None, c_grid=(1.0,))
BASE = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - hey there
    - good morning
    - hello bot
    - hi, anyone here?
    - hey
    - good evening
    - 你好
    - 早上好
    - 嗨
    - 大家好
- intent: pricing
  examples: |
    - how much does it cost
    - what is the price of the pro plan
    - pricing please
    - how expensive is it
    - what are your prices
    - cost of the team plan
    - is there a free plan
    - how much per month
    - 多少钱
    - 价格是多少
    - 专业版多少钱
    - 收费标准
- intent: api_keys
  examples: |
    - where is my api key
    - how do i create an api key
    - regenerate my api key
    - my api key does not work
    - lost my api key
    - api key location
    - new api token please
    - rotate the key
    - 怎么创建 API 密钥
    - API 密钥在哪里
    - 密钥失效了
    - 重新生成密钥
- intent: refund
  examples: |
    - i want a refund
    - refund my payment
    - can i get my money back
    - how do refunds work
    - charge back please
    - money back
    - refund policy
    - i was charged twice, refund
    - 我要退款
    - 怎么退款
    - 退钱
    - 退款政策
"""
MARS = [
    "do you ship to mars?",
    "can you deliver to mars",
    "is delivery to mars possible",
    "你们能送货到火星吗",
    "可以寄到火星吗",
]
STUDENTS = [
    "is there a discount for students",
    "do students get a cheaper price",
    "student discount?",
    "学生有优惠吗",
    "学生可以打折吗",
]
PASSWORD = [
    "how do i reset my password",
    "i forgot my password",
    "password reset please",
    "忘记密码怎么办",
    "怎么重置密码",
]
TOPIC = {
    "new_intent": "shipping_to_mars",
    "title_en": "Shipping to Mars",
    "title_zh": "寄往火星",
    "answer_en": "We do not ship to Mars yet.",
    "answer_zh": "我们暂时不寄往火星。",
}


@dataclass
class QDash(Dash):
    """A dashboard with an NLU: base data, a model folder and the additions folder."""

    data: DeploymentData = None  # type: ignore[assignment]
    model_dir: Path = Path()

    def trainer(self) -> NLUTrainer:
        trainer: NLUTrainer = self.app.state.nlu_trainer  # type: ignore[attr-defined]
        return trainer


@pytest.fixture
def qdash(sqlite_engine: Engine, tmp_path: Path) -> Iterator[QDash]:
    base = tmp_path / "base.yml"
    base.write_text(BASE, encoding="utf-8")
    clock = Clock()
    config = DashboardConfig(
        engine=sqlite_engine,
        secret=b"test-secret",
        admin_ids=frozenset({ADMIN, OTHER_ADMIN}),
        base_url="http://testserver",
        bot_token=BOT_TOKEN,
        cache_ttl_s=0.0,
        nlu_model_dir=tmp_path / "models" / "nlu",
        nlu_data=(base,),
        nlu_additions_dir=tmp_path / "nlu",
    )
    app = create_app(config, now=clock)
    app.state.questions_wait_s = 120.0  # the first grouping loads the encoder: wait for it here
    data = deployment_data(config.nlu_data, tmp_path / "nlu")
    assert config.nlu_model_dir is not None
    app.state.nlu_trainer = NLUTrainer(
        sqlite_engine, data, model_dir=config.nlu_model_dir, now=clock, config=FAST
    )
    yield QDash(sqlite_engine, config, clock, app, data=data, model_dir=config.nlu_model_dir)


def _ask(dash: Dash, texts: list[str], *, first_user: int = 1) -> None:
    now = dash.clock.now
    append_events(
        dash.engine,
        [
            EventRecord(
                user_id=first_user + i,
                chat_id=first_user + i,
                ts=now - timedelta(hours=i + 1),
                kind="fallback",
                intent="nlu_fallback",
                text=text,
            )
            for i, text in enumerate(texts)
        ],
    )


def _form(client: TestClient, **fields: object) -> dict[str, object]:
    return {"csrf": csrf_of(client.get("/questions").text), "days": 30, **fields}


def test_paraphrases_in_english_and_chinese_group_together_and_other_questions_apart() -> None:
    texts = [*MARS, *STUDENTS, "what is the weather today", *PASSWORD]
    vectors = EmbeddingCache().embed(texts)
    groups = [{texts[i] for i in rows} for rows in group_by_meaning(vectors)]
    assert sorted(groups, key=sorted) == sorted(
        [set(MARS), set(STUDENTS), set(PASSWORD), {"what is the weather today"}], key=sorted
    )


def test_the_page_shows_each_group_with_its_size_examples_and_nearest_intent(qdash: QDash) -> None:
    _ask(qdash, [*MARS, MARS[0], *STUDENTS[:3], "where can i find my api key please"])
    html = qdash.logged_in().get("/questions").text
    groups = html.split('class="card qgroup"')[1:]
    assert len(groups) == 3
    assert "asked 6× · users: 6" in groups[0]  # the Mars group, "do you ship to mars?" twice
    assert "你们能送货到火星吗" in groups[0] and "can you deliver to mars" in groups[0]
    assert "do students get a cheaper price" in groups[1] and "asked 3×" in groups[1]
    assert "Nearest intent: <b>api_keys</b>" in groups[2]
    assert "similarity 0." in groups[2]


def test_questions_that_already_are_examples_are_left_out(qdash: QDash) -> None:
    _ask(qdash, ["refund my payment", *MARS[:2]])
    html = qdash.logged_in().get("/questions").text
    assert html.count('class="card qgroup"') == 1
    assert "refund my payment" not in html.split('class="card qgroup"')[1]


def test_posts_without_or_with_a_forged_csrf_token_are_refused(qdash: QDash) -> None:
    client = qdash.logged_in()
    for path, fields in (
        ("/questions/assign", {"intent": "pricing", "text": ["how pricey is it"]}),
        ("/questions/topic", {**TOPIC, "text": MARS}),
        ("/questions/retrain", {}),
    ):
        assert client.post(path, data={"days": 30, **fields}).status_code == 403
        forged = client.post(path, data={"days": 30, "csrf": "forged", **fields})
        assert forged.status_code == 403 and "security token" in forged.text
    assert not qdash.data.directory.exists()
    assert list_model_runs_nlu(qdash.engine) == []


def test_a_non_manager_is_refused(qdash: QDash) -> None:
    client = qdash.logged_in(OTHER_ADMIN)
    csrf = csrf_of(client.get("/questions").text)
    cookie = client.cookies[COOKIE_NAME]
    demoted = TestClient(
        create_app(replace(qdash.config, admin_ids=frozenset({ADMIN})), now=qdash.clock),
        follow_redirects=False,
    )
    demoted.cookies.set(COOKIE_NAME, cookie)
    for path in ("/questions/assign", "/questions/retrain"):
        response = demoted.post(path, data={"csrf": csrf, "days": 30, "intent": "pricing", "text": ["x y"]})
        assert response.status_code == 403 and "not a manager" in response.text
    assert qdash.client().post("/questions/assign", data={"intent": "pricing"}).status_code == 401
    assert not qdash.data.directory.exists()


@pytest.mark.parametrize(
    ("intent", "texts", "message"),
    [
        ("Bad Name!", ["how pricey is it"], "invalid intent name"),
        ("nlu_fallback", ["how pricey is it"], "reserved"),
        ("shipping", ["how pricey is it"], "unknown intent"),
        ("pricing", [], "no example texts"),
        ("pricing", ["   "], "an empty example"),
        ("pricing", ["x" * 301], "301 characters long"),
        ("pricing", ["How much does it COST"], "already an example of 'pricing'"),
        ("pricing", ["refund policy"], "already an example of another intent, 'refund'"),
        ("pricing", ["cheap", "Cheap"], "selected twice"),
        ("pricing", ["[pro](plan) price"], "would not be read back"),
    ],
)
def test_bad_assignments_get_a_clear_message_and_store_nothing(
    qdash: QDash, intent: str, texts: list[str], message: str
) -> None:
    client = qdash.logged_in()
    response = client.post("/questions/assign", data=_form(client, intent=intent, text=texts))
    assert response.status_code == 400
    assert message in response.text.replace("&#39;", "'")
    assert qdash.data.pending() == ()
    assert [e.action for e in list_actions(qdash.engine)] == ["login"]


def test_an_assignment_lands_in_the_pending_training_data_and_is_audited(qdash: QDash) -> None:
    client = qdash.logged_in()
    texts = ["how pricey is it", "  what does the\nteam plan cost  "]
    response = client.post("/questions/assign", data=_form(client, intent="pricing", text=texts))
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "Added 2 examples to pricing" in page and "2 examples waiting" in page
    pending = load_training_data(qdash.data.pending_path)  # Rasa YAML the NLU itself reads
    assert [(e.text, e.intent) for e in pending.examples] == [
        ("how pricey is it", "pricing"),
        ("what does the team plan cost", "pricing"),
    ]
    action = list_actions(qdash.engine)[0]
    assert (action.actor_id, action.action, action.target) == (ADMIN, "nlu.examples_added", "intent pricing")
    assert action.details["examples"] == 2


def test_a_new_topic_needs_both_languages_and_a_new_valid_intent(qdash: QDash) -> None:
    client = qdash.logged_in()
    missing = client.post("/questions/topic", data=_form(client, **{**TOPIC, "answer_zh": ""}, text=MARS))
    assert missing.status_code == 400 and "the zh answer is empty" in missing.text
    existing = {**TOPIC, "new_intent": "refund"}
    taken = client.post("/questions/topic", data=_form(client, **existing, text=MARS))
    assert taken.status_code == 400 and "already exists" in taken.text
    assert not qdash.data.topics_path.exists()
    created = client.post("/questions/topic", data=_form(client, **TOPIC, text=MARS))
    assert created.status_code == 303
    topics = yaml.safe_load(qdash.data.topics_path.read_text(encoding="utf-8"))["topics"]
    answer = topics["shipping_to_mars"]["answer"]
    assert answer == {"en": "We do not ship to Mars yet.", "zh": "我们暂时不寄往火星。"}
    assert {e.text for e in qdash.data.pending() if e.intent == "shipping_to_mars"} == set(MARS)
    assert list_actions(qdash.engine)[0].action == "nlu.topic_created"


def list_model_runs_nlu(engine: Engine) -> list[object]:
    with read_snapshot(engine) as db:
        return list(list_model_runs(db, NLU_MODEL_KIND))


def test_retraining_validates_activates_and_shows_its_figures(qdash: QDash) -> None:
    client = qdash.logged_in()
    assert client.post("/questions/topic", data=_form(client, **TOPIC, text=MARS)).status_code == 303
    response = client.post("/questions/retrain", data=_form(client))
    assert response.status_code == 303 and "notice=training" in response.headers["location"]
    status = qdash.trainer().wait(timeout=120)
    assert status.state == "done", status.message
    (run,) = list_model_runs_nlu(qdash.engine)
    assert run.active and run.decision.startswith("activated")  # type: ignore[attr-defined]
    before, after = run.metrics["before"], run.metrics["after"]  # type: ignore[attr-defined]
    assert after["n"] == before["n"] > 0 and after["macro_f1"] >= before["macro_f1"]
    # The held-out Mars question is one "before" never learned: it cannot have got it right.
    assert before["accuracy"] < 1.0 and before["known_n"] == after["known_n"] < after["n"]
    # Learned: pending moved to accepted, and the bot's model directory holds a model of exactly
    # the data a restarted bot trains on (so it loads it instead of retraining).
    assert qdash.data.pending() == ()
    assert {e.text for e in qdash.data.accepted()} == set(MARS)
    assert read_metadata(qdash.model_dir)["data_hash"] == qdash.data.active_data().fingerprint()
    assert "shipping_to_mars" in read_metadata(qdash.model_dir)["labels"]
    page = client.get("/questions").text
    assert "activated: no worse" in page and "→" in page
    assert [e.action for e in list_actions(qdash.engine)][:2] == ["nlu.retrained", "nlu.topic_created"]


def test_retraining_keeps_the_active_model_when_the_new_one_is_worse(qdash: QDash) -> None:
    def worse(data: TrainingData, config: TrainingConfig) -> NLUModel:
        """Learns the labels shifted by one whenever it sees the new topic: a broken model."""
        if "shipping_to_mars" in data.intents:
            names = data.intents
            shifted = dict(zip(names, [*names[1:], names[0]], strict=True))
            data = TrainingData(
                tuple(replace(e, intent=shifted[e.intent]) for e in data.examples),
                data.regexes,
                data.lookups,
                data.synonyms,
            )
        return train(data, config=config)

    qdash.app.state.nlu_trainer = NLUTrainer(  # type: ignore[attr-defined]
        qdash.engine, qdash.data, model_dir=qdash.model_dir, now=qdash.clock, config=FAST, train_fn=worse
    )
    client = qdash.logged_in()
    assert client.post("/questions/topic", data=_form(client, **TOPIC, text=MARS)).status_code == 303
    assert client.post("/questions/retrain", data=_form(client)).status_code == 303
    status = qdash.trainer().wait(timeout=120)
    assert status.state == "done" and status.message.startswith("kept the active model: worse")
    (run,) = list_model_runs_nlu(qdash.engine)
    assert not run.active  # type: ignore[attr-defined]
    assert run.metrics["after"]["macro_f1"] < run.metrics["before"]["macro_f1"]  # type: ignore[attr-defined]
    assert not (qdash.model_dir / "metadata.json").exists()  # nothing was saved over the bot's model
    assert len(qdash.data.pending()) == len(MARS) and qdash.data.accepted() == ()
    assert "kept the active model" in client.get("/questions").text


def test_retraining_with_nothing_pending_says_so(qdash: QDash) -> None:
    client = qdash.logged_in()
    assert client.post("/questions/retrain", data=_form(client)).status_code == 303
    status = qdash.trainer().wait(timeout=60)
    assert status.state == "done" and status.message.startswith("nothing to learn")
    assert list_model_runs_nlu(qdash.engine) == []


def test_a_dashboard_without_nlu_folders_groups_but_cannot_train(dash: Dash) -> None:
    dash.app.state.questions_wait_s = 120.0  # type: ignore[attr-defined]
    _ask(dash, MARS)
    client = dash.logged_in()
    html = client.get("/questions").text
    assert "asked 5×" in html and "no NLU model folder" in html
    response = client.post("/questions/assign", data=_form(client, intent="pricing", text=["x y"]))
    assert response.status_code == 409


def test_a_slow_grouping_never_holds_the_page_and_the_last_one_is_shown_meanwhile(
    qdash: QDash, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashboard.views.questions as view

    _ask(qdash, MARS)
    client = qdash.logged_in()
    assert client.get("/questions").text.count('class="card qgroup"') == 1
    release = threading.Event()
    real = view.group_questions

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(view, "group_questions", slow)
    qdash.app.state.questions_wait_s = 0.05  # type: ignore[attr-defined]
    _ask(qdash, STUDENTS, first_user=50)  # a new version of the data: grouped again, slowly
    started = time.perf_counter()
    html = client.get("/questions").text
    assert time.perf_counter() - started < 5
    assert "Grouping the latest questions" in html
    assert html.count('class="card qgroup"') == 1  # the previous grouping meanwhile
    release.set()
    qdash.app.state.questions_wait_s = 30.0  # type: ignore[attr-defined]
    html = client.get("/questions").text
    assert html.count('class="card qgroup"') == 2 and "Grouping the latest" not in html


def test_the_worker_hands_back_a_grouping_that_is_done_at_once() -> None:
    """A compute that finishes before its callback is attached must not deadlock the worker."""
    worker = GroupingWorker()
    empty = Grouping((), 0, 0, 0)
    answers: list[tuple[Grouping | None, bool]] = []

    def ask() -> None:
        for version in range(20):
            answers.append(worker.get("k", version, lambda: empty, wait_s=5))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the worker deadlocked"
    assert answers == [(empty, True)] * 20
    assert worker.get("k", 19, lambda: pytest.fail("computed again"), wait_s=5) == (empty, True)
