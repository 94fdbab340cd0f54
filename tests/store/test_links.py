"""Deep-link payloads: Telegram's limits, signature, expiry; single use and linking in the store."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from store.links import (
    MAX_ACCOUNT_ID_BYTES,
    LinkError,
    LinkRefusal,
    PayloadRejected,
    link_url,
    sign_payload,
    verify_payload,
)
from store.product import account_of, redeem_payload

SECRET = "s3cret-for-tests"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)
TELEGRAM_START = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@pytest.mark.parametrize(
    "account_id",
    ["a", "acct_42", "x" * MAX_ACCOUNT_ID_BYTES, "用户-7", "550e8400-e29b-41d4-a716-446655440000"],
)
def test_payload_fits_telegram_start_parameter_and_round_trips(account_id: str) -> None:
    payload = sign_payload(account_id, SECRET, expires_at=LATER)
    assert TELEGRAM_START.match(payload), payload
    link = verify_payload(payload, SECRET, now=NOW)
    assert link.account_id == account_id
    assert link.expires_at == LATER.replace(second=0, microsecond=0)


def test_longest_account_id_gives_exactly_64_characters() -> None:
    assert len(sign_payload("x" * 32, SECRET, expires_at=LATER)) == 64


def test_a_uuid_account_id_is_packed_into_16_bytes() -> None:
    account = "550e8400-e29b-41d4-a716-446655440000"
    assert len(sign_payload(account, SECRET, expires_at=LATER)) == 43
    upper = account.upper()  # not canonical: kept as text, and too long for a payload
    with pytest.raises(LinkError, match="36 bytes"):
        sign_payload(upper, SECRET, expires_at=LATER)


def test_account_id_too_long_is_refused_clearly() -> None:
    with pytest.raises(LinkError, match=r"33 bytes.*at most 32"):
        sign_payload("x" * 33, SECRET, expires_at=LATER)
    with pytest.raises(LinkError, match="at most 32"):
        sign_payload("用" * 11, SECRET, expires_at=LATER)  # 33 UTF-8 bytes


def test_no_secret_refuses_to_sign_and_to_verify() -> None:
    with pytest.raises(LinkError, match="RAPPORT_LINK_SECRET"):
        sign_payload("a", "", expires_at=LATER)
    payload = sign_payload("a", SECRET, expires_at=LATER)
    with pytest.raises(PayloadRejected) as caught:
        verify_payload(payload, "", now=NOW)
    assert caught.value.reason is LinkRefusal.NOT_CONFIGURED


def test_expired_payload_is_refused() -> None:
    payload = sign_payload("acct", SECRET, expires_at=NOW + timedelta(minutes=1))
    verify_payload(payload, SECRET, now=NOW)
    with pytest.raises(PayloadRejected) as caught:
        verify_payload(payload, SECRET, now=NOW + timedelta(minutes=1))
    assert caught.value.reason is LinkRefusal.EXPIRED


def _raw(payload: str) -> bytes:
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_forged_payloads_are_refused() -> None:
    payload = sign_payload("acct_1", SECRET, expires_at=LATER)
    raw = _raw(payload)  # format byte, b"acct_1", expiry (4), MAC (11)
    other_account = _b64(raw[:1] + b"acct_2" + raw[7:])  # same expiry and MAC, another account
    longer_life = _b64(raw[:7] + (int.from_bytes(raw[7:11], "big") + 10_000).to_bytes(4, "big") + raw[11:])
    flipped_mac = _b64(raw[:-1] + bytes([raw[-1] ^ 1]))
    for forged in (
        other_account,
        longer_life,
        flipped_mac,
        sign_payload("acct_1", "other-secret", expires_at=LATER),
    ):
        with pytest.raises(PayloadRejected) as caught:
            verify_payload(forged, SECRET, now=NOW)
        assert caught.value.reason is LinkRefusal.FORGED


@pytest.mark.parametrize("payload", ["", "abc", "a" * 65, "has space", "bad+chars/", "AAAA"])
def test_malformed_payloads_are_refused(payload: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        verify_payload(payload, SECRET, now=NOW)
    assert caught.value.reason is LinkRefusal.MALFORMED


def test_link_url_shape_and_bad_bot_name() -> None:
    url = link_url("acct", SECRET, bot_username="@rapport_demo_bot", ttl=timedelta(days=3), now=NOW)
    prefix = "https://t.me/rapport_demo_bot?start="
    assert url.startswith(prefix)
    link = verify_payload(url[len(prefix) :], SECRET, now=NOW)
    assert link.expires_at == NOW + timedelta(days=3)
    with pytest.raises(LinkError, match="not a Telegram bot username"):
        link_url("acct", SECRET, bot_username="no spaces please", now=NOW)
    with pytest.raises(LinkError, match="positive"):
        link_url("acct", SECRET, bot_username="rapport_bot", ttl=timedelta(0), now=NOW)


def test_redeem_links_once_and_refuses_reuse_by_anyone_else(engine: Engine) -> None:
    payload = sign_payload("acct_9", SECRET, expires_at=LATER)
    first = redeem_payload(engine, payload, 1001, secret=SECRET, now=NOW)
    assert first.new and first.account_id == "acct_9"
    assert account_of(engine, 1001) == "acct_9"
    again = redeem_payload(engine, payload, 1001, secret=SECRET, now=NOW)
    assert not again.new  # the same user tapping the link twice is told they are linked
    with pytest.raises(PayloadRejected) as caught:
        redeem_payload(engine, payload, 2002, secret=SECRET, now=NOW)
    assert caught.value.reason is LinkRefusal.REUSED
    assert account_of(engine, 2002) is None


def test_an_account_or_user_linked_elsewhere_is_taken(engine: Engine) -> None:
    redeem_payload(engine, sign_payload("acct_a", SECRET, expires_at=LATER), 1, secret=SECRET, now=NOW)
    fresh = sign_payload("acct_a", SECRET, expires_at=LATER + timedelta(hours=1))  # another payload
    with pytest.raises(PayloadRejected) as caught:
        redeem_payload(engine, fresh, 2, secret=SECRET, now=NOW)
    assert caught.value.reason is LinkRefusal.TAKEN
    with pytest.raises(PayloadRejected) as caught:
        redeem_payload(engine, sign_payload("acct_b", SECRET, expires_at=LATER), 1, secret=SECRET, now=NOW)
    assert caught.value.reason is LinkRefusal.TAKEN
    assert account_of(engine, 1) == "acct_a" and account_of(engine, 2) is None


def test_forged_and_expired_payloads_link_nothing(engine: Engine) -> None:
    with pytest.raises(PayloadRejected):
        redeem_payload(engine, sign_payload("acct", "wrong", expires_at=LATER), 5, secret=SECRET, now=NOW)
    with pytest.raises(PayloadRejected):
        redeem_payload(engine, sign_payload("acct", SECRET, expires_at=NOW), 5, secret=SECRET, now=NOW)
    assert account_of(engine, 5) is None


def test_the_readme_reference_function_gives_the_same_payloads() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Product data", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the documented algorithm, written without Rapport
    for account in ("acct_42", "用户-7", "x" * 32, "550e8400-e29b-41d4-a716-446655440000", "550E8400-E29B"):
        expected = sign_payload(account, SECRET, expires_at=LATER)
        assert namespace["payload"](account, SECRET, int(LATER.timestamp())) == expected
