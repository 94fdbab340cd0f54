"""/dashboard: managers get a one-time login link in private chat (and a Mini App button on https)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from bot.i18n import t
from store.logins import LoginRefused, dashboard_secret, redeem_login_token

if TYPE_CHECKING:
    from conftest import BotHarness

LINK = re.compile(r"(https?://\S+/login\?token=(\S+))")


@pytest.fixture(params=["http://127.0.0.1:8780", "https://dash.example.org"], ids=["http", "https"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The dashboard URL the bot links to."""
    return {"dashboard_url": request.param}


async def test_a_manager_gets_a_one_time_link_that_logs_in_once(bot: BotHarness, admin_id: int) -> None:
    manager = bot.user(admin_id, "Manager")
    reply = await bot.command(manager, "dashboard")
    assert reply.text is not None
    match = LINK.search(reply.text)
    assert match is not None, reply.text
    url, token = match.groups()
    assert url.startswith(bot.settings.resolved_dashboard_url + "/login?token=")
    assert reply.params.get("link_preview_options", {}).get("is_disabled") is True
    secret = dashboard_secret(bot.settings)
    assert redeem_login_token(bot.engine, secret, token, now=datetime.now(UTC)) == admin_id
    with pytest.raises(LoginRefused):
        redeem_login_token(bot.engine, secret, token, now=datetime.now(UTC))
    buttons = [b for row in (reply.reply_markup or {}).get("inline_keyboard", []) for b in row]
    if bot.settings.resolved_dashboard_url.startswith("https://"):
        assert buttons == [
            {"text": "Open the dashboard", "web_app": {"url": "https://dash.example.org/webapp"}}
        ]
    else:
        assert buttons == []  # Telegram opens Mini Apps only over https


async def test_non_managers_and_groups_get_no_link(bot: BotHarness, admin_id: int) -> None:
    mallory = bot.user(5101, "Mallory")
    refused = await bot.command(mallory, "dashboard")
    assert refused.text == t("not_admin", "en")
    manager = bot.user(admin_id, "Manager")
    bot.api.add_chat(-100_500, "supergroup", title="G")
    in_group = await bot.command(manager, "dashboard", chat=-100_500)
    assert in_group.text is not None and "login?token=" not in in_group.text
