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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import uvicorn
from sqlalchemy import Engine, select, update

from dashboard import DashboardConfig, create_app
from dashboard.initdata import init_data_hash
from scheduler import segment_recipients
from store import EventRecord, append_events
from store.campaigns import NewDelivery, create_campaign, get_campaign, list_campaigns
from store.db import unit_of_work
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
    playwright_sync.expect(page.locator("#preview")).to_have_text("Our new model is live: try it today!")
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


def test_compose_html_with_buttons_preview_and_test_to_me(
    served: Served, browser_page: tuple[Any, list[str]]
) -> None:
    page, errors = browser_page
    page.goto(served.link())
    page.wait_for_url(f"{served.base}/")
    page.goto(served.base + "/broadcast")
    page.check("input[name=fmt][value=html]")
    page.fill(
        "#text",
        "<b>Rapport 2.0 is live</b>\n\nWhat is new:\n• <i>answers in Chinese and English</i>\n"
        '• <a href="https://example.com/changelog">the changelog</a>\n\n'
        "<blockquote>Ask the bot anything &amp; tell us what you think.</blockquote> "
        "<tg-spoiler>a surprise</tg-spoiler>",
    )
    page.fill(
        "#buttons",
        "Read the docs - https://example.com/docs | Pricing - https://example.com/pricing\n"
        "Join the chat - tg://resolve?domain=rapport_community",
    )
    playwright_sync.expect(page.locator("#preview b")).to_have_text("Rapport 2.0 is live")
    playwright_sync.expect(page.locator("#preview-buttons .tg-button")).to_have_count(3)
    assert page.locator("#preview a").get_attribute("href") == "https://example.com/changelog"
    assert page.locator("#preview-error").is_hidden()
    _shot(page, "15-composer-html-preview")
    # Bad markup: the preview says what Telegram would refuse, before anything is sent.
    page.fill("#text", "<b>Unclosed bold and a <script>alert(1)</script>")
    playwright_sync.expect(page.locator("#preview-error")).to_contain_text("not supported by Telegram")
    _shot(page, "16-composer-bad-html")
    page.fill("#text", "<b>Rapport 2.0 is live</b>")
    playwright_sync.expect(page.locator("#preview-error")).to_be_hidden()
    page.click("#send-test")
    page.wait_for_selector("#test-notice")
    [test] = [c for c in list_campaigns(served.engine, kind="test")]
    assert test.created_by == ADMIN and test.attributes["parse_mode"] == "HTML"
    assert len(test.attributes["buttons"]) == 2
    assert list_campaigns(served.engine) == []  # a test is no campaign
    per_chat = _in_thread(_deliver(served.engine, [ADMIN]))
    assert per_chat == {ADMIN: 1}
    _shot(page, "17-composer-test-sent")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{served.base}/broadcast/review")
    playwright_sync.expect(page.locator("#confirm-preview b")).to_have_text("Rapport 2.0 is live")
    _shot(page, "18-composer-confirm-html")
    assert errors == []


def test_best_hour_timing_and_a_goal_from_the_composer_on_a_phone(
    served: Served, browser_page: tuple[Any, list[str]]
) -> None:
    page, errors = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served.link())
    page.wait_for_url(f"{served.base}/")
    page.goto(served.base + "/broadcast")
    page.fill("#text", "Office hours today: ask us anything.")
    # The live count and the preview settle first: a click while they re-lay the page can miss.
    playwright_sync.expect(page.locator("#recipient-count")).to_have_text("10")
    playwright_sync.expect(page.locator("#preview")).to_have_text("Office hours today: ask us anything.")
    page.check("#send-at-best")
    page.fill("#goal", "upgrade")
    page.fill("#goal-hours", "24")
    # A viewport shot: after a full-page one the phone-sized page's next click submitted nothing.
    page.locator("#send-at").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "19-composer-best-time-phone.png"))
    with page.expect_navigation():
        page.locator("#composer button.primary").click()
    assert page.url == f"{served.base}/broadcast/review"
    assert "Each user at their best hour" in page.inner_text("#confirm-timing")
    assert "Planned now: from" in page.inner_text("#confirm-window")
    assert page.inner_text("#confirm-goal").startswith("product:upgrade within 24 h of each send")
    assert page.locator("#goal-unseen").is_visible()  # no `upgrade` logged yet: a warning, still sendable
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the confirmation scrolls sideways on a phone ({width}px)"
    _shot(page, "20-composer-best-time-confirm-phone")
    page.click("#confirm")
    page.wait_for_url(f"{served.base}/campaigns/*")
    made = get_campaign(served.engine, int(page.url.rsplit("/", 1)[1]))
    assert made is not None and made.attributes["send_at"] == "best_time"
    assert made.attributes["goal"] == "product:upgrade"
    playwright_sync.expect(page.locator("#goal-open")).to_be_visible()  # nothing sent: window not closed
    # A finished re-engagement run with a goal: the groups, the intervals and the verdict.
    sent_at = datetime.now(UTC) - timedelta(hours=72)
    rows = [NewDelivery(u, u, "t", sent_at) for u in range(100, 160)]
    rows += [NewDelivery(u, u, "t", sent_at, status="skipped", reason="holdout") for u in range(200, 240)]
    goal_id = create_campaign(
        served.engine,
        kind="reengagement",
        name="re-engagement",
        segment="inactive:14",
        text="We miss you",
        scheduled_at=sent_at,
        now=sent_at,
        deliveries=rows,
        attributes={"goal": "product:upgrade", "goal_window_hours": 48.0},
    )
    with unit_of_work(served.engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == goal_id, Delivery.status == "pending")
            .values(status="sent", sent_at=sent_at)
        )
    hits = [*range(100, 118), *range(200, 204)]
    upgrade = {"source": "product", "event": "upgrade"}
    append_events(
        served.engine,
        [
            EventRecord(user_id=u, ts=sent_at + timedelta(hours=3), kind="product", attributes=upgrade)
            for u in hits
        ],
    )
    page.goto(f"{served.base}/campaigns/{goal_id}")
    assert page.locator("#goal-pushed").is_visible() and page.locator("#goal-holdout").is_visible()
    assert "interval excludes zero" in page.inner_text("#goal-difference")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the campaign page scrolls sideways on a phone ({width}px)"
    _shot(page, "21-campaign-goal-phone")
    assert errors == []


def test_the_user_page_predicts_and_followups_compare_with_baselines(
    served: Served, browser_page: tuple[Any, list[str]], tmp_path: Path
) -> None:
    from analytics.sequence import MarkovModel
    from store import EventRecord, append_events
    from store.model_runs import record_model_run

    now = datetime.now(UTC)
    intents = ["greet", "pricing", "docs", "pricing", "thanks", "greet", "bug_report", "docs", "pricing"]
    append_events(
        served.engine,
        [
            EventRecord(
                user_id=5, chat_id=5, ts=now - timedelta(hours=len(intents) - k), kind="message", intent=i
            )
            for k, i in enumerate(intents)
        ],
    )
    sequences = [intents, [*intents[2:], "docs", "pricing"], ["greet", "docs", "pricing", "thanks"]] * 5
    model = MarkovModel().fit(sequences)
    model.save(tmp_path / "markov")
    scores = {"hr@1": 0.31, "hr@5": 0.64, "hr@10": 0.81, "ndcg@10": 0.52, "mrr": 0.44, "n": 1480.0}
    record_model_run(
        served.engine,
        kind="followup",
        artefact_path=str(tmp_path / "markov"),
        metrics={
            "candidate": scores,
            "active": None,
            "baselines": {
                "markov": {
                    "hr@1": 0.18,
                    "hr@5": 0.44,
                    "hr@10": 0.62,
                    "ndcg@10": 0.36,
                    "mrr": 0.29,
                    "n": 1480.0,
                },
                "popularity": {
                    "hr@1": 0.2,
                    "hr@5": 0.58,
                    "hr@10": 0.79,
                    "ndcg@10": 0.46,
                    "mrr": 0.37,
                    "n": 1480.0,
                },
            },
        },
        activate=True,
        decision="activated: no active model; ndcg@10 0.5200",
        now=now,
    )
    page, errors = browser_page
    page.goto(served.link())
    page.wait_for_url(f"{served.base}/")
    page.goto(served.base + "/users/5")
    section = page.locator("#predictions")
    playwright_sync.expect(section.locator("tr")).to_have_count(6)  # header + top 5
    assert "Markov baseline" in section.inner_text() and "%" in section.inner_text()
    _shot(page, "19-user-predictions")
    page.goto(served.base + "/followups")
    compare = page.locator("#baselines")
    assert "1,480 held-out next events" in compare.inner_text()
    assert "overlap within their 95% intervals" in compare.inner_text()  # 81% vs popularity 79%
    _shot(page, "20-followups-baselines")
    page.goto(served.base + "/users/5")
    page.click("form[action='/lang'] button")  # the switch in the header: back to this page
    page.wait_for_selector("h2:has-text('预测的下一事件')")
    _shot(page, "21-user-predictions-zh")
    assert errors == []
