"""Mini App initData: Telegram's documented HMAC-SHA256 check, with a known answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from dashboard.errors import InitDataError
from dashboard.initdata import data_check_string, init_data_hash, verify_init_data

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
USER = '{"id":279058397,"first_name":"Vladislav","username":"vdkfrost","language_code":"zh"}'
FIELDS = {"query_id": "AAHdF6IQAAAAAN0XohDhrOrc", "user": USER, "auth_date": "1700000000"}
# Computed outside Python, following the documented rules literally:
#   KEY=$(printf '%s' "$TOKEN" | openssl dgst -sha256 -mac HMAC -macopt key:WebAppData -hex)
#   printf 'auth_date=1700000000\nquery_id=AAHdF6IQAAAAAN0XohDhrOrc\nuser={...}' \
#     | openssl dgst -sha256 -mac HMAC -macopt hexkey:$KEY -hex
KNOWN_HASH = "7f786f728f84083cc3305c8a053b09f067a00bd0b6bae3731bce299518d1bfc5"
AUTH = datetime.fromtimestamp(1_700_000_000, tz=UTC)


def _init_data(fields: dict[str, str], hash_value: str) -> str:
    return urlencode({**fields, "hash": hash_value})


def test_data_check_string_sorts_fields_and_leaves_out_the_hash() -> None:
    assert data_check_string({**FIELDS, "hash": "x"}) == (
        f"auth_date=1700000000\nquery_id=AAHdF6IQAAAAAN0XohDhrOrc\nuser={USER}"
    )


def test_known_answer() -> None:
    assert init_data_hash(FIELDS, TOKEN) == KNOWN_HASH


def test_genuine_init_data_names_its_user() -> None:
    user = verify_init_data(_init_data(FIELDS, KNOWN_HASH), TOKEN, now=AUTH + timedelta(minutes=5))
    assert (user.id, user.username, user.language_code, user.auth_date) == (279058397, "vdkfrost", "zh", AUTH)


def test_the_hash_is_checked_case_insensitively_as_hex() -> None:
    verify_init_data(_init_data(FIELDS, KNOWN_HASH.upper()), TOKEN, now=AUTH)


@pytest.mark.parametrize(
    ("init_data", "token", "now"),
    [
        pytest.param(
            _init_data({**FIELDS, "user": USER.replace("279058397", "1")}, KNOWN_HASH),
            TOKEN,
            AUTH,
            id="other-user",
        ),
        pytest.param(
            _init_data({**FIELDS, "auth_date": "1700000999"}, KNOWN_HASH), TOKEN, AUTH, id="moved-date"
        ),
        pytest.param(_init_data(FIELDS, KNOWN_HASH), "123456:another-bot", AUTH, id="another-bot"),
        pytest.param(_init_data(FIELDS, "0" * 64), TOKEN, AUTH, id="zero-hash"),
        pytest.param(urlencode(FIELDS), TOKEN, AUTH, id="no-hash"),
        pytest.param(_init_data(FIELDS, KNOWN_HASH), TOKEN, AUTH + timedelta(hours=2), id="stale"),
        pytest.param(_init_data(FIELDS, KNOWN_HASH), TOKEN, AUTH - timedelta(hours=1), id="from-the-future"),
        pytest.param(_init_data(FIELDS, KNOWN_HASH) + "&user=x", TOKEN, AUTH, id="repeated-field"),
        pytest.param("%%%", TOKEN, AUTH, id="not-a-query"),
        pytest.param("", TOKEN, AUTH, id="empty"),
    ],
)
def test_bad_init_data_is_refused(init_data: str, token: str, now: datetime) -> None:
    with pytest.raises(InitDataError):
        verify_init_data(init_data, token, now=now)


def test_a_genuine_hash_without_a_user_is_refused() -> None:
    fields = {"auth_date": "1700000000", "query_id": "q"}
    with pytest.raises(InitDataError, match="no user"):
        verify_init_data(_init_data(fields, init_data_hash(fields, TOKEN)), TOKEN, now=AUTH)
