"""The user page's predicted next events (no TensorFlow on the request path) and the follow-up
model beside its baselines, with intervals and sample sizes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from analytics.experiments import wilson_interval
from analytics.sequence import FORMAT_VERSION, MarkovModel, load_model
from dashboard.predictions import NextEventPredictor, Prediction, PredictionStatus
from store import EventRecord, UserInfo, append_events, upsert_user
from store.model_runs import record_model_run
from tests.dashboard.conftest import NOW, Dash

ROOT = Path(__file__).resolve().parents[2]


def _seed_sequences(engine: Engine) -> None:
    """Users 1-6 always ask `pricing` after `greet`; user 7 has only ever greeted."""
    rows = []
    for uid in range(1, 8):
        upsert_user(
            engine, UserInfo(id=uid, username=f"u{uid}", language="en"), seen_at=NOW - timedelta(days=1)
        )
        intents = ["greet"] if uid == 7 else ["greet", "pricing", "greet", "pricing", "thanks"]
        for k, intent in enumerate(intents):
            rows.append(
                EventRecord(
                    user_id=uid,
                    chat_id=uid,
                    ts=NOW - timedelta(days=2, hours=-k),
                    kind="message",
                    intent=intent,
                )
            )
    append_events(engine, rows)


def _markov_run(engine: Engine, directory: Path, **metrics: Any) -> int:
    model = MarkovModel().fit([["greet", "pricing", "greet", "pricing", "thanks"]] * 6)
    model.save(directory)
    return record_model_run(
        engine,
        kind="followup",
        artefact_path=str(directory),
        metrics=metrics or {"candidate": {"hr@10": 1.0, "n": 30.0}},
        activate=True,
        decision="activated",
        now=NOW,
    )


def _fake_lstm_dir(directory: Path) -> Path:
    directory.mkdir(parents=True)
    metadata = {
        "format_version": FORMAT_VERSION,
        "model_type": "lstm",
        "vocabulary": ["greet", "thanks"],
        "prior": [0.5, 0.5],
        "parameters": {},
        "state": {},
    }
    (directory / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return directory


def test_the_user_page_shows_the_models_top_next_events(dash: Dash, tmp_path: Path) -> None:
    _seed_sequences(dash.engine)
    _markov_run(dash.engine, tmp_path / "markov")
    html = dash.logged_in().get("/users/7").text  # last event: greet
    section = html.split('id="predictions"', 1)[1].split("</section>", 1)[0]
    assert "Markov baseline" in section and "model run #1" in section and "last 1 events" in section
    rows = section.split("<tr>")[2:]
    assert rows[0].split("</td>")[0].endswith("<td>pricing")  # what always followed greet
    first = float(rows[0].split('class="num">')[1].split("%")[0])
    assert first > 50.0
    assert "fell back" not in section and "still loading" not in section


def test_without_an_active_model_the_page_says_what_is_needed(dash: Dash) -> None:
    _seed_sequences(dash.engine)
    html = dash.logged_in().get("/users/3").text
    assert "No follow-up model is active yet" in html


def test_an_unknown_user_id_is_a_404_page_not_a_crash(dash: Dash) -> None:
    client = dash.logged_in()
    missing = client.get("/users/424242")
    assert missing.status_code == 404 and "There is nothing here" in missing.text
    assert client.get("/users/not-a-number").status_code == 400


def test_an_lstm_loads_in_the_background_while_markov_answers(dash: Dash, tmp_path: Path) -> None:
    _seed_sequences(dash.engine)
    lstm_dir = _fake_lstm_dir(tmp_path / "lstm")
    markov = MarkovModel().fit([["greet", "pricing"]] * 3)
    markov.save(lstm_dir / "baselines" / "markov")
    record_model_run(
        dash.engine,
        kind="followup",
        artefact_path=str(lstm_dir),
        metrics={},
        activate=True,
        decision="a",
        now=NOW,
    )
    release, loaded_in = threading.Event(), []

    def slow_load(directory: str | Path) -> Any:
        if Path(directory) == lstm_dir:
            loaded_in.append(threading.current_thread().name)
            assert release.wait(10)
            return MarkovModel().fit([["greet", "thanks"]] * 3)  # stands for the loaded LSTM
        return load_model(directory)

    predictor = NextEventPredictor(load=slow_load)
    first = predictor.predict(dash.engine, 7, ["greet"])
    assert isinstance(first, Prediction)
    assert (first.model, first.fallback_reason, first.events[0].token) == ("markov", "loading", "pricing")
    assert loaded_in and loaded_in[0].startswith("rapport-model-")  # not the request's thread
    release.set()
    for _ in range(100):
        answer = predictor.predict(dash.engine, 7, ["greet"])
        if isinstance(answer, Prediction) and answer.fallback_reason is None:
            break
        threading.Event().wait(0.05)
    assert isinstance(answer, Prediction) and answer.events[0].token == "thanks"


def test_an_lstm_that_cannot_load_leaves_markov_answering_and_says_so(dash: Dash, tmp_path: Path) -> None:
    _seed_sequences(dash.engine)
    lstm_dir = _fake_lstm_dir(tmp_path / "lstm")
    record_model_run(
        dash.engine,
        kind="followup",
        artefact_path=str(lstm_dir),
        metrics={},
        activate=True,
        decision="a",
        now=NOW,
    )

    def broken(directory: str | Path) -> Any:
        raise ImportError("No module named 'tensorflow'")

    predictor = NextEventPredictor(load=broken)  # no baseline saved: Markov fitted from the events
    predictor.predict(dash.engine, 7, ["greet"])
    for _ in range(100):
        answer = predictor.predict(dash.engine, 7, ["greet"])
        if isinstance(answer, Prediction) and answer.fallback_reason == "failed":
            break
        threading.Event().wait(0.05)
    assert isinstance(answer, Prediction)
    assert (answer.model, answer.fallback_reason, answer.events[0].token) == ("markov", "failed", "pricing")


def test_a_missing_artefact_is_reported_not_raised(dash: Dash, tmp_path: Path) -> None:
    record_model_run(
        dash.engine,
        kind="followup",
        artefact_path=str(tmp_path / "gone"),
        metrics={},
        activate=True,
        decision="a",
        now=NOW,
    )
    answer = NextEventPredictor().predict(dash.engine, 1, ["greet"])
    assert isinstance(answer, PredictionStatus) and answer.reason == "failed"
    _seed_sequences(dash.engine)
    assert "could not be loaded" in dash.logged_in().get("/users/1").text


@pytest.mark.slow
def test_the_user_page_does_not_import_tensorflow(tmp_path: Path) -> None:
    """In a fresh interpreter: the dashboard app and a user page with a Markov model, no TensorFlow."""
    script = f"""
import sys
from datetime import UTC, datetime
from pathlib import Path
from analytics.sequence import MarkovModel
from dashboard import DashboardConfig, create_app
from store import create_db_engine, upgrade, EventRecord, append_events
from store.logins import issue_login_token
from store.model_runs import record_model_run
from starlette.testclient import TestClient
engine = create_db_engine("sqlite:///{tmp_path / "t.db"}"); upgrade(engine)
now = datetime.now(UTC)
append_events(engine, [EventRecord(user_id=1, chat_id=1, ts=now, kind="message", intent="greet")])
MarkovModel().fit([["greet", "pricing"]]).save("{tmp_path / "m"}")
record_model_run(engine, kind="followup", artefact_path="{tmp_path / "m"}", metrics={{}}, activate=True,
                 decision="a", now=now)
config = DashboardConfig(engine=engine, secret=b"s", admin_ids=frozenset({{9}}), base_url="http://t")
client = TestClient(create_app(config), follow_redirects=False)
client.post("/login", data={{"token": issue_login_token(engine, config.secret, user_id=9, now=now)}})
page = client.get("/users/1")
assert page.status_code == 200 and "pricing" in page.text, page.text[-500:]
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False False"


def test_followups_show_the_model_beside_its_baselines_with_intervals(dash: Dash) -> None:
    metrics = {
        "candidate": {"hr@1": 0.2, "hr@5": 0.5, "hr@10": 0.72, "ndcg@10": 0.41, "mrr": 0.33, "n": 400.0},
        "active": None,
        "baselines": {
            "markov": {"hr@1": 0.1, "hr@5": 0.3, "hr@10": 0.38, "ndcg@10": 0.2, "mrr": 0.18, "n": 400.0},
            "popularity": {"hr@1": 0.3, "hr@5": 0.6, "hr@10": 0.7, "ndcg@10": 0.4, "mrr": 0.35, "n": 400.0},
        },
    }
    record_model_run(
        dash.engine,
        kind="followup",
        artefact_path="/m",
        metrics=metrics,
        activate=True,
        decision="a",
        now=NOW,
    )
    html = dash.logged_in().get("/followups").text
    section = html.split('id="baselines"', 1)[1].split("</section>", 1)[0]
    assert "400 held-out next events" in section
    low, high = wilson_interval(round(0.72 * 400), 400)
    lstm = section.split('data-model="lstm"', 1)[1].split("</tr>", 1)[0]
    assert "72.0%" in lstm and f"{low * 100:.1f}%–{high * 100:.1f}%" in lstm and ">400<" in lstm
    markov = section.split('data-model="markov"', 1)[1].split("</tr>", 1)[0]
    assert "38.0%" in markov
    # LSTM 72% (67.4-76.2) vs Markov 38%: clearly better; vs popularity 70%: within noise.
    assert "better than the Markov baseline by more than the noise" in section
    assert "LSTM and the popularity baseline overlap" in section


def test_followups_without_stored_baselines_say_when_they_appear(dash: Dash) -> None:
    record_model_run(
        dash.engine,
        kind="followup",
        artefact_path="/m",
        metrics={"candidate": {"hr@10": 0.5}},
        activate=True,
        decision="a",
        now=NOW,
    )
    html = dash.logged_in().get("/followups").text
    assert "Baseline figures appear after the next nightly retraining" in html
