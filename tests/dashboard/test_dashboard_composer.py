"""The composer's Telegram HTML and URL buttons, its safe preview, and "send a test to me"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select

from scheduler import BroadcastError, DeliveryEngine, ManualClock, OutgoingMessage, SendResult, SendStatus
from scheduler.markup import check_html, parse_buttons
from scheduler.sender import UrlButton
from store.audit import list_actions
from store.campaigns import get_campaign, list_campaigns
from store.logins import TERMINAL_OPERATOR
from store.models import Campaign, Delivery, Event
from tests.dashboard.conftest import ADMIN, Dash, csrf_of, seed_users

HTML_TEXT = 'Hello <b>everyone</b> &amp; <a href="https://example.com/x?a=1&amp;b=2">docs</a>'
BUTTONS = (
    "Docs - https://example.com/docs | Chat - tg://resolve?domain=rapport\nPricing - http://example.com/p"
)


class RecordingSender:
    """A `Sender` that accepts everything and keeps the messages it was given."""

    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []

    @asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator[None]:
        yield

    async def send(self, message: OutgoingMessage) -> SendResult:
        self.messages.append(message)
        return SendResult(SendStatus.SENT, telegram_message_id=len(self.messages))


def _send_all(engine: Engine, now: datetime) -> RecordingSender:
    sender = RecordingSender()
    asyncio.run(DeliveryEngine(engine, sender, owner="t", clock=ManualClock(now)).drain())
    return sender


def _composer_csrf(client: object) -> str:
    return csrf_of(client.get("/broadcast").text)  # type: ignore[attr-defined]


# ---- the checks themselves ---------------------------------------------------------------------


def test_telegram_html_is_accepted_and_rebuilt_from_the_whitelist() -> None:
    checked = check_html(
        '<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <span class="tg-spoiler">x</span> '
        "<tg-spoiler>y</tg-spoiler> "
        '<pre><code class="language-python">a &lt; b</code></pre> <blockquote expandable>q</blockquote> '
        '&#65;&#x42; <a href="tg://user?id=1">me</a>'
    )
    assert checked.visible == "bold it u s x y a < b q AB me"
    assert '<span class="tg-spoiler">x</span>' in checked.safe_html
    assert '<code class="language-python">a &lt; b</code>' in checked.safe_html
    assert '<a href="tg://user?id=1">me</a>' in checked.safe_html


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<script>alert(1)</script>", "<script> at line 1, column 1 is not supported"),
        ("<div>x</div>", "<div>"),
        ("<b>never closed", "<b> is never closed"),
        ("<b><i>crossed</b></i>", "expected </i> first"),
        ("closing </b> alone", "never opened"),
        ("1 < 2", "bare '<'"),
        ("fish & chips", "bare '&'"),
        ("&nbsp;", "&nbsp;"),
        ('<a href="javascript:alert(1)">x</a>', "must start with https://, http:// or tg://"),
        ("<a>no link</a>", "has no href"),
        ('<b onclick="x()">x</b>', "attribute 'onclick'"),
        ('<span class="red">x</span>', "tg-spoiler"),
        ("<br/>", "self-closing"),
        ("<!-- note -->hi", "comment"),
        ("<b></b>", "empty"),
        ("<b>" + "x" * 4097 + "</b>", "4096"),
    ],
)
def test_html_telegram_would_refuse_gets_a_clear_reason(text: str, message: str) -> None:
    with pytest.raises(BroadcastError, match=None) as caught:
        check_html(text)
    assert message in str(caught.value)


def test_the_visible_length_counts_not_the_tags() -> None:
    assert len(check_html("<b>" + "x" * 4000 + "</b>" * 1).visible) == 4000


def test_button_lines_become_rows() -> None:
    assert parse_buttons(BUTTONS) == (
        (UrlButton("Docs", "https://example.com/docs"), UrlButton("Chat", "tg://resolve?domain=rapport")),
        (UrlButton("Pricing", "http://example.com/p"),),
    )
    assert parse_buttons("  \n") == ()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("Docs - javascript:alert(1)", "must start with https://, http:// or tg://"),
        ("Docs - ftp://example.com", "must start with"),
        ("Docs - example.com", "must start with"),
        ("Docs - https://", "has no host"),
        ("Docs - https://exa mple.com", "spaces"),
        ("Docs https://example.com", "write it as 'Label - https://link'"),
        (" - https://example.com", "label is empty"),
        ("x" * 65 + " - https://example.com", "at most 64"),
        (" | ".join(f"B{i} - https://e.com/{i}" for i in range(9)), "allows 8 in a row"),
        ("\n".join(f"B{i} - https://e.com/{i}" for i in range(101)), "allows 100"),
    ],
)
def test_bad_buttons_are_refused_naming_the_button(lines: str, message: str) -> None:
    with pytest.raises(BroadcastError) as caught:
        parse_buttons(lines)
    assert message in str(caught.value)


# ---- the composer -------------------------------------------------------------------------------


def test_html_and_buttons_go_from_the_composer_to_the_sender(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    csrf = _composer_csrf(client)
    form = {
        "csrf": csrf,
        "segment": "all",
        "text": HTML_TEXT,
        "fmt": "html",
        "buttons": BUTTONS,
        "when": "now",
    }
    review = client.post("/broadcast/review", data=form)
    assert review.status_code == 200
    assert "<b>everyone</b>" in review.text  # the preview renders the markup
    assert 'class="tg-button" href="tg://resolve?domain=rapport"' in review.text
    confirm = client.post("/broadcast/confirm", data=form)
    assert confirm.status_code == 303
    campaign_id = int(confirm.headers["location"].rsplit("/", 1)[1])
    made = get_campaign(dash.engine, campaign_id)
    assert made is not None and made.text == HTML_TEXT
    assert made.attributes == {
        "parse_mode": "HTML",
        "buttons": [
            [
                {"text": "Docs", "url": "https://example.com/docs"},
                {"text": "Chat", "url": "tg://resolve?domain=rapport"},
            ],
            [{"text": "Pricing", "url": "http://example.com/p"}],
        ],
    }
    assert list_actions(dash.engine)[0].details["buttons"] == 3
    sender = _send_all(dash.engine, dash.clock.now)
    assert len(sender.messages) == 10  # every reachable user
    assert {(m.text, m.parse_mode, m.url_buttons) for m in sender.messages} == {
        (HTML_TEXT, "HTML", parse_buttons(BUTTONS))
    }


def test_plain_text_stays_plain_and_unformatted(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    form = {"csrf": _composer_csrf(client), "segment": "all", "text": "1 < 2 & <b>", "when": "now"}
    review = client.post("/broadcast/review", data=form)
    assert review.status_code == 200 and "1 &lt; 2 &amp; &lt;b&gt;" in review.text
    assert client.post("/broadcast/confirm", data=form).status_code == 303
    sender = _send_all(dash.engine, dash.clock.now)
    assert {(m.text, m.parse_mode, m.url_buttons) for m in sender.messages} == {("1 < 2 & <b>", None, ())}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fmt": "html", "text": "<b>unclosed"}, "never closed"),
        ({"fmt": "html", "text": "<script>x</script>"}, "not supported by Telegram"),
        ({"buttons": "Docs - javascript:alert(1)"}, "https://"),
        ({"buttons": "Docs"}, "Label - https://link"),
        ({"fmt": "markdown"}, "plain text or HTML"),
    ],
)
def test_bad_markup_or_buttons_are_refused_before_anything_is_stored(
    dash: Dash, fields: dict[str, str], message: str
) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    form = {"csrf": _composer_csrf(client), "segment": "all", "text": "Hi", "when": "now", **fields}
    for path in ("/broadcast/review", "/broadcast/confirm", "/broadcast/test"):
        response = client.post(path, data=form)
        assert response.status_code == 400, path
        assert message in response.text.replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
        assert fields.get("text", "Hi") in response.text or "&lt;" in response.text  # the draft is kept
    with dash.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Campaign)).scalar() == 0


def test_the_preview_is_safe_html_or_the_reason(dash: Dash) -> None:
    client = dash.logged_in()
    csrf = _composer_csrf(client)
    good = client.post(
        "/broadcast/preview",
        data={"text": "<b>Hi</b> &lt;there&gt;", "fmt": "html", "buttons": "Go - https://e.com"},
        headers={"X-CSRF-Token": csrf},
    )
    assert good.status_code == 200
    assert good.json() == {
        "html": "<b>Hi</b> &lt;there&gt;",
        "buttons": [[{"text": "Go", "url": "https://e.com"}]],
        "chars": 10,  # "Hi <there>"
    }
    plain = client.post(
        "/broadcast/preview",
        data={"text": "<img src=x onerror=alert(1)>", "fmt": "plain"},
        headers={"X-CSRF-Token": csrf},
    )
    assert plain.json()["html"] == "&lt;img src=x onerror=alert(1)&gt;"
    bad = client.post(
        "/broadcast/preview",
        data={"text": "<img src=x onerror=alert(1)>", "fmt": "html"},
        headers={"X-CSRF-Token": csrf},
    )
    assert bad.status_code == 200 and "<img>" in bad.json()["error"] and "html" not in bad.json()


def test_the_preview_and_the_test_need_the_csrf_token(dash: Dash) -> None:
    client = dash.logged_in()
    forged = client.post("/broadcast/preview", data={"text": "x"}, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    missing = client.post("/broadcast/test", data={"text": "x", "segment": "all"})
    assert missing.status_code == 403
    wrong = client.post("/broadcast/test", data={"csrf": "AAAA", "text": "x", "segment": "all"})
    assert wrong.status_code == 403
    assert dash.client().post("/broadcast/test", data={"csrf": "x", "text": "x"}).status_code == 401
    assert get_campaign(dash.engine, 1) is None


def test_a_test_goes_to_the_manager_only_and_counts_for_nobody(dash: Dash) -> None:
    seed_users(dash.engine, now=dash.clock.now)
    client = dash.logged_in()
    form = {
        "csrf": _composer_csrf(client),
        "segment": "all",
        "text": "<i>draft</i>",
        "fmt": "html",
        "buttons": "Docs - https://example.com/docs",
        "when": "now",
    }
    response = client.post("/broadcast/test", data=form)
    assert response.status_code == 200
    assert 'id="test-notice"' in response.text and str(ADMIN) in response.text
    assert "&lt;i&gt;draft&lt;/i&gt;" in response.text  # the draft is still in the composer
    assert list_campaigns(dash.engine) == []  # not a campaign to users
    [test] = list_campaigns(dash.engine, kind="test")
    assert (test.created_by, test.text, test.attributes["parse_mode"]) == (ADMIN, "<i>draft</i>", "HTML")
    assert client.get("/campaigns").text.count(f"/campaigns/{test.id}") == 0
    status_page = client.get(f"/campaigns/{test.id}")  # the notice links to the test's delivery
    assert status_page.status_code == 200 and "draft" in status_page.text
    entry = list_actions(dash.engine)[0]
    assert (entry.action, entry.actor_id, entry.target) == ("broadcast.tested", ADMIN, f"test #{test.id}")
    sender = _send_all(dash.engine, dash.clock.now)
    assert [(m.chat_id, m.text, m.parse_mode) for m in sender.messages] == [(ADMIN, "<i>draft</i>", "HTML")]
    assert sender.messages[0].url_buttons == ((UrlButton("Docs", "https://example.com/docs"),),)
    with dash.engine.connect() as connection:
        statuses = connection.execute(select(Delivery.status).where(Delivery.campaign_id == test.id)).all()
        pushes = connection.execute(
            select(func.count()).select_from(Event).where(Event.kind == "push_received")
        )
        assert [s for (s,) in statuses] == ["sent"]
        assert pushes.scalar() == 0  # no push a user received


def test_a_terminal_login_has_no_chat_to_test_in(dash: Dash) -> None:
    from dataclasses import replace

    from dashboard import create_app

    terminal = replace(
        dash,
        app=create_app(
            replace(dash.config, admin_ids=dash.config.admin_ids | {TERMINAL_OPERATOR}), now=dash.clock
        ),
    )
    client = terminal.logged_in(TERMINAL_OPERATOR)
    form = {"csrf": _composer_csrf(client), "segment": "all", "text": "hi", "when": "now"}
    response = client.post("/broadcast/test", data=form)
    assert response.status_code == 400 and "no private chat" in response.text
    assert list_campaigns(dash.engine, kind="test") == []
