"""The Questions page in a real headless Chromium: groups by meaning, a new topic, retraining, screenshots.

Screenshots go to var/screenshots/ (git-ignored): 12-questions.png (groups) and
12b-questions-retrained.png (after a new topic and a retraining).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine

from dashboard import DashboardConfig, create_app
from dashboard.nlu_training import NLUTrainer, deployment_data
from store import EventRecord, append_events
from store.logins import issue_login_token, login_url
from tests.dashboard.conftest import ADMIN, BOT_TOKEN
from tests.dashboard.test_dashboard_questions import BASE, FAST, MARS, PASSWORD, STUDENTS

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(str(CHROMIUM)) is None,
        reason="Debian's chromium is not installed (apt-get install chromium; CI installs it)",
    ),
]
playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(sqlite_engine: Engine, tmp_path: Path) -> Iterator[tuple[str, str, NLUTrainer]]:
    """A dashboard with an NLU over questions asked in English and Chinese; (base URL, login URL)."""
    now = datetime.now(UTC)
    asked = [*MARS, *MARS[:3], *STUDENTS, *PASSWORD[:4]]
    asked += ["what is the weather today", "where is my api key now"]
    append_events(
        sqlite_engine,
        [
            EventRecord(
                user_id=100 + i % 9,
                chat_id=100 + i % 9,
                ts=now - timedelta(hours=3 * i + 1),
                kind="fallback",
                intent="nlu_fallback",
                text=text,
            )
            for i, text in enumerate(asked)
        ],
    )
    base_file = tmp_path / "base.yml"
    base_file.write_text(BASE, encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = DashboardConfig(
        engine=sqlite_engine,
        secret=b"browser",
        admin_ids=frozenset({ADMIN}),
        base_url=base,
        bot_token=BOT_TOKEN,
        nlu_model_dir=tmp_path / "models" / "nlu",
        nlu_data=(base_file,),
        nlu_additions_dir=tmp_path / "nlu",
    )
    app = create_app(config)
    assert config.nlu_model_dir is not None
    trainer = NLUTrainer(
        sqlite_engine,
        deployment_data(config.nlu_data, tmp_path / "nlu"),
        model_dir=config.nlu_model_dir,
        now=lambda: datetime.now(UTC),
        config=FAST,
    )
    app.state.nlu_trainer = trainer
    app.state.questions_wait_s = 120.0
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    token = issue_login_token(sqlite_engine, config.secret, user_id=ADMIN, now=datetime.now(UTC))
    try:
        yield base, login_url(base, token), trainer
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_questions_page_groups_makes_a_topic_and_retrains(served: tuple[str, str, NLUTrainer]) -> None:
    base, link, trainer = served
    errors: list[str] = []
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(link)
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/questions")
        groups = page.locator("section.qgroup")
        assert groups.count() == 5
        first = groups.nth(0)
        assert "asked 8×" in first.inner_text() and "可以寄到火星吗" in first.inner_text()
        # Nothing may stick out of the page: a phone-sized view has no horizontal scroll either.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        _shot(page, "12-questions")
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        _shot(page, "12c-questions-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        first.locator("details.topic summary").click()
        first.locator("input[name=new_intent]").fill("shipping_to_mars")
        first.locator("input[name=title_en]").fill("Shipping to Mars")
        first.locator("input[name=title_zh]").fill("寄往火星")
        first.locator("textarea[name=answer_en]").fill("We do not ship to Mars yet.")
        first.locator("textarea[name=answer_zh]").fill("我们暂时不寄往火星。")
        first.locator("button[formaction='/questions/topic']").click()
        page.wait_for_selector("text=Created the topic shipping_to_mars with 5 examples")
        page.click("#retrain button[type=submit]")
        page.wait_for_selector("text=Retraining started in the background")
        assert trainer.wait(timeout=120).state == "done"
        page.reload()
        assert "activated: no worse" in page.inner_text("#retrain")
        assert page.locator("section.qgroup").count() == 4  # the Mars questions are examples now
        _shot(page, "12b-questions-retrained")
        context.close()
        browser.close()
    assert errors == []
