"""Telegram Mini App `initData`, validated exactly as Telegram documents it.

secret_key = HMAC-SHA256(key="WebAppData", msg=bot_token); the expected hash is the hex
HMAC-SHA256(key=secret_key, msg=data_check_string), where data_check_string is every received
field but `hash`, sorted by key, as `key=value` lines joined by "\\n" (values URL-decoded).
The hashes are compared in constant time and `auth_date` must be recent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from dashboard.errors import InitDataError

INIT_DATA_MAX_AGE = timedelta(hours=1)
_CLOCK_SKEW_S = 60


@dataclass(frozen=True)
class WebAppUser:
    """The Telegram user a validated `initData` names."""

    id: int
    first_name: str
    username: str | None
    language_code: str | None
    auth_date: datetime


def data_check_string(fields: dict[str, str]) -> str:
    """Every field but `hash`, sorted by key, as `key=value` joined by newlines."""
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def init_data_hash(fields: dict[str, str], bot_token: str) -> str:
    """The hex hash Telegram puts in `initData` for these fields and this bot."""
    secret_key = hmac.new(b"WebAppData", bot_token.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(secret_key, data_check_string(fields).encode("utf-8"), hashlib.sha256).hexdigest()


def verify_init_data(
    init_data: str, bot_token: str, *, now: datetime, max_age: timedelta = INIT_DATA_MAX_AGE
) -> WebAppUser:
    """The user of a genuine, fresh `initData` query string.

    Raises:
        InitDataError: unparsable, missing or wrong hash, stale or future `auth_date`, no user.
    """
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InitDataError("initData is not a query string") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("initData repeats a field")
    received = fields.get("hash", "")
    if not received:
        raise InitDataError("initData has no hash")
    if not hmac.compare_digest(
        received.lower().encode("ascii", "replace"), init_data_hash(fields, bot_token).encode()
    ):
        raise InitDataError("initData hash does not match this bot")
    auth_text = fields.get("auth_date", "")
    if not auth_text.isdigit():
        raise InitDataError("initData has no auth_date")
    auth_date = datetime.fromtimestamp(int(auth_text), tz=now.tzinfo)
    age = (now - auth_date).total_seconds()
    if age > max_age.total_seconds() or age < -_CLOCK_SKEW_S:
        raise InitDataError(
            f"initData auth_date is {int(age)} s old (at most {int(max_age.total_seconds())} s)"
        )
    try:
        user = json.loads(fields.get("user", ""))
        user_id = int(user["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InitDataError("initData names no user") from exc
    return WebAppUser(
        id=user_id,
        first_name=str(user.get("first_name", "")),
        username=user.get("username"),
        language_code=user.get("language_code"),
        auth_date=auth_date,
    )
