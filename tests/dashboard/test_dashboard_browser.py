"""The dashboard in a real headless Chromium: log in with a one-time link, every page, a broadcast end to end.

The broadcast composed and confirmed in the browser is then sent by the scheduler's delivery engine
through the real `TelegramSender` to the local Bot API server: it must reach exactly the segment's
reachable users. Screenshots of every page go to var/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import uvicorn
from sqlalchemy import Engine, select

from dashboard import DashboardConfig, create_app
from dashboard.initdata import init_data_hash
from scheduler import segment_recipients
from store.campaigns import get_campaign
from store.logins import issue_login_token, login_url
from store.models import Delivery
from tests.dashboard.conftest import ADMIN, BOT_TOKEN, seed_runs, seed_users

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A dashboard served over HTTP by uvicorn in a thread."""

    engine: Engine
    config: DashboardConfig
    base: str

    def link(self, user_id: int = ADMIN) -> str:
        token = issue_login_token(self.engine, self.config.secret, user_id=user_id, now=datetime.now(UTC))
        return login_url(self.base, token)


@pytest.fixture
def served(sqlite_engine: Engine) -> Iterator[Served]:
    """Users 1-12 (3 blocked, 4 opted out) in two analytics runs, and the dashboard serving them."""
    now = datetime.now(UTC)
    seed_users(sqlite_engine, now=now)
    seed_runs(sqlite_engine)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = DashboardConfig(
        engine=sqlite_engine,
        secret=b"browser",
        admin_ids=frozenset({ADMIN}),
        base_url=base,
        bot_token=BOT_TOKEN,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield Served(sqlite_engine, config, base)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser_page(served: Served) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page (phone-sized) that records console errors and page errors."""
    errors: list[str] = []
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("dialog", lambda dialog: dialog.accept())
        yield page, errors
        context.close()
        browser.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _deliveries(engine: Engine, campaign_id: int) -> list[int]:
    with engine.connect() as connection:
        return sorted(
            int(u)
            for (u,) in connection.execute(
                select(Delivery.user_id).where(Delivery.campaign_id == campaign_id)
            )
        )


async def _deliver(engine: Engine, users: list[int]) -> dict[int, int]:
    """Run the scheduler's delivery engine through TelegramSender against the local Bot API."""
    from bot.delivery import TelegramSender
    from fakeapi import LocalBotAPI
    from scheduler.engine import DeliveryEngine, EngineConfig
    from store import load_settings

    api = LocalBotAPI()
    for user_id in users:
        api.add_user(user_id, f"User {user_id}")
    async with api:
        settings = load_settings(
            telegram_bot_token=api.token,
            telegram_api_base_url=api.base_url,
            telegram_api_file_url=api.base_file_url,
            send_rate_per_s=100,
        )
        async with TelegramSender.from_settings(settings) as sender:
            config = EngineConfig(rate_per_s=100)
            await DeliveryEngine(engine, sender, owner="browser-test", config=config).drain()
        return dict(api.messages_per_chat)


def _in_thread(coroutine: Any) -> Any:
    """Run a coroutine on its own loop in a thread (Playwright's sync API owns this thread's loop)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    thread.start()
    thread.join(timeout=60)
    assert result, "delivery did not finish"
    return result[0]


def test_a_manager_logs_in_opens_every_page_and_broadcasts(
    served: Served, browser_page: tuple[Any, list[str]]
) -> None:
    page, errors = browser_page
    page.goto(served.link())
    page.wait_for_url(f"{served.base}/")
    assert page.locator("h1").first.inner_text() == "Overview"
    _shot(page, "01-overview")

    for path, name in (
        ("/campaigns", "02-campaigns-empty"),
        ("/segments", "04-segments"),
        ("/insights", "06-insights"),
        ("/followups", "06b-followups"),
        ("/questions", "06c-questions"),
        ("/users?q=user", "07-users"),
        ("/users/3", "08-user"),
        ("/users/3/forget", "09-forget"),
    ):
        response = page.goto(served.base + path)
        assert response is not None and response.status == 200, path
        _shot(page, name)
    page.goto(served.base + "/segments")
    page.click("text=Askers >> nth=0")
    page.wait_for_selector("text=Movement since the previous run")
    _shot(page, "05-segment")

    # Compose: the live count is the scheduler's: reachable Askers (users 1-4; 3 blocked, 4 opted out).
    page.goto(served.base + "/broadcast")
    page.select_option("#segment", "Askers")
    expected = [r.user_id for r in segment_recipients(served.engine, "Askers", now=datetime.now(UTC))]
    assert expected == [1, 2]
    # A locator wait: a string predicate would need eval, which the dashboard's CSP rightly refuses.
    playwright_sync.expect(page.locator("#recipient-count")).to_have_text("2")
    page.fill("#text", "Our new model is live: try it today!")
    assert page.locator("#preview").inner_text() == "Our new model is live: try it today!"
    _shot(page, "03-broadcast")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{served.base}/broadcast/review")
    assert page.locator("#confirm-count").inner_text() == "2"
    _shot(page, "03b-broadcast-confirm")
    page.click("#confirm")
    page.wait_for_url(f"{served.base}/campaigns/*")
    campaign_id = int(page.url.rsplit("/", 1)[1])
    made = get_campaign(served.engine, campaign_id)
    assert made is not None and made.kind == "broadcast" and made.segment == "Askers"
    assert made.status in ("scheduled", "running") and made.created_by == ADMIN
    assert _deliveries(served.engine, campaign_id) == expected

    # The scheduler's engine sends it through the local Bot API: exactly the reachable Askers get it.
    per_chat = _in_thread(_deliver(served.engine, list(range(1, 13))))
    assert per_chat == {1: 1, 2: 1}
    page.reload()
    assert "sent 2" in page.inner_text(".legend")
    _shot(page, "10-campaign-sent")

    page.goto(served.base + "/audit")
    assert "broadcast.created" in page.inner_text("table")
    _shot(page, "11-audit")
    assert errors == []


def test_pause_and_cancel_from_the_page(served: Served, browser_page: tuple[Any, list[str]]) -> None:
    page, errors = browser_page
    page.goto(served.link())
    page.wait_for_url(f"{served.base}/")
    page.goto(served.base + "/broadcast")
    page.fill("#text", "Tomorrow's maintenance window")
    page.check("input[name=when][value=at]")
    page.fill("#at", "2099-01-01T10:00")
    page.click("button[type=submit].primary")
    page.click("#confirm")
    page.wait_for_url(f"{served.base}/campaigns/*")
    campaign_id = int(page.url.rsplit("/", 1)[1])
    page.click("button:has-text('Pause')")
    page.wait_for_selector(".badge.st-paused")
    campaign = get_campaign(served.engine, campaign_id)
    assert campaign is not None and campaign.status == "paused"
    page.click("button:has-text('Cancel')")  # the confirmation dialog is accepted
    page.wait_for_selector(".badge.st-cancelled")
    campaign = get_campaign(served.engine, campaign_id)
    assert campaign is not None and campaign.status == "cancelled"
    _shot(page, "12-campaign-cancelled")
    assert errors == []


def test_refusals_in_the_browser(served: Served, browser_page: tuple[Any, list[str]]) -> None:
    page, _errors = browser_page
    response = page.goto(served.base + "/login?token=1.9999999999.nonce.forged")
    page.wait_for_selector("h1:has-text('401')")
    assert "not issued by this dashboard" in page.inner_text("main")
    _shot(page, "13-forged-link")
    page.goto(served.link(user_id=555))
    page.wait_for_selector("h1:has-text('403')")
    assert "not a manager" in page.inner_text("main")
    page.goto(served.link())
    page.wait_for_url(f"{served.base}/")
    status = page.evaluate(
        "fetch('/campaigns/1/cancel', {method: 'POST', body: new URLSearchParams({})}).then(r => r.status)"
    )
    assert status == 403
    assert response is not None


def test_the_mini_app_logs_in_from_telegram_data_and_takes_its_theme(
    served: Served, browser_page: tuple[Any, list[str]]
) -> None:
    page, errors = browser_page
    fields = {
        "auth_date": str(int(datetime.now(UTC).timestamp())),
        "query_id": "AAH",
        "user": f'{{"id":{ADMIN},"first_name":"M","language_code":"zh"}}',
    }
    init_data = urlencode({**fields, "hash": init_data_hash(fields, BOT_TOKEN)})
    theme = json.dumps(
        {
            "bg_color": "#17212b",
            "secondary_bg_color": "#0e1621",
            "text_color": "#f5f5f5",
            "button_color": "#5288c1",
        }
    )
    # Telegram opens the Mini App with its launch parameters in the URL fragment.
    page.goto(f"{served.base}/webapp#tgWebAppData={quote(init_data)}&tgWebAppThemeParams={quote(theme)}")
    page.wait_for_url(f"{served.base}/")
    assert page.locator("h1").first.inner_text() == "概览"
    background = page.evaluate("getComputedStyle(document.querySelector('.card, .tile')).backgroundColor")
    assert background == "rgb(23, 33, 43)"
    _shot(page, "14-mini-app-dark-zh")
    page.goto(served.base + "/webapp")  # opened outside Telegram: says so, logs nobody in
    assert page.locator("#webapp-missing").is_visible()
    assert errors == []
