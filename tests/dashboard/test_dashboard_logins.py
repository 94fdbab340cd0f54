"""One-time login links: signed, single use, ten minutes; and where the signing key comes from."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from store import load_settings
from store.logins import (
    LOGIN_TTL,
    LoginRefusal,
    LoginRefused,
    dashboard_secret,
    issue_login_token,
    login_url,
    redeem_login_token,
)

SECRET = b"k" * 32
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _refusal(engine: Engine, token: str, *, now: datetime = NOW, secret: bytes = SECRET) -> LoginRefusal:
    with pytest.raises(LoginRefused) as caught:
        redeem_login_token(engine, secret, token, now=now)
    return caught.value.reason


def test_a_link_opens_once_for_its_user(engine: Engine) -> None:
    token = issue_login_token(engine, SECRET, user_id=42, now=NOW)
    assert redeem_login_token(engine, SECRET, token, now=NOW + timedelta(minutes=1)) == 42
    assert _refusal(engine, token, now=NOW + timedelta(minutes=2)) == LoginRefusal.USED


def test_a_link_expires_after_ten_minutes(engine: Engine) -> None:
    assert timedelta(minutes=10) == LOGIN_TTL
    token = issue_login_token(engine, SECRET, user_id=42, now=NOW)
    assert _refusal(engine, token, now=NOW + LOGIN_TTL) == LoginRefusal.EXPIRED
    fresh = issue_login_token(engine, SECRET, user_id=42, now=NOW)
    assert redeem_login_token(engine, SECRET, fresh, now=NOW + LOGIN_TTL - timedelta(seconds=1)) == 42


def test_forged_links_are_refused(engine: Engine) -> None:
    token = issue_login_token(engine, SECRET, user_id=42, now=NOW)
    user, expires, nonce, signature = token.split(".")
    assert _refusal(engine, f"1.{expires}.{nonce}.{signature}") == LoginRefusal.FORGED  # another user
    later = int(expires) + 3600
    assert _refusal(engine, f"{user}.{later}.{nonce}.{signature}") == LoginRefusal.FORGED  # longer life
    assert _refusal(engine, token, secret=b"another key") == LoginRefusal.FORGED
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert _refusal(engine, f"{user}.{expires}.{nonce}.{flipped}") == LoginRefusal.FORGED
    # The genuine link still works: refusals consume nothing.
    assert redeem_login_token(engine, SECRET, token, now=NOW) == 42


def test_a_well_signed_token_that_was_never_issued_here_is_refused(engine: Engine) -> None:
    other_db_token = issue_login_token(engine, SECRET, user_id=42, now=NOW)
    redeem_login_token(engine, SECRET, other_db_token, now=NOW)
    assert _refusal(engine, other_db_token) == LoginRefusal.USED


@pytest.mark.parametrize("token", ["", "abc", "1.2.3", "x.1.n.s", "1.x.n.s", "1.2.3.4.5", "é.1.n.s"])
def test_malformed_tokens_are_refused(sqlite_engine: Engine, token: str) -> None:
    assert _refusal(sqlite_engine, token) in {LoginRefusal.MALFORMED, LoginRefusal.FORGED}


def test_login_url_points_at_the_login_page() -> None:
    assert login_url("https://dash.example/", "1.2.n.s") == "https://dash.example/login?token=1.2.n.s"


def test_secret_from_setting_then_bot_token_then_a_kept_file(tmp_path: Path) -> None:
    assert dashboard_secret(load_settings(dashboard_secret="abc", data_dir=tmp_path)) == b"abc"
    from_token = dashboard_secret(load_settings(telegram_bot_token="1:x", data_dir=tmp_path))
    assert from_token == dashboard_secret(load_settings(telegram_bot_token="1:x", data_dir=tmp_path / "b"))
    assert from_token != dashboard_secret(load_settings(telegram_bot_token="1:y", data_dir=tmp_path))
    assert not (tmp_path / "dashboard_secret").exists()
    generated = dashboard_secret(load_settings(data_dir=tmp_path))
    assert len(generated) >= 32
    assert dashboard_secret(load_settings(data_dir=tmp_path)) == generated
    assert stat.S_IMODE((tmp_path / "dashboard_secret").stat().st_mode) == 0o600
