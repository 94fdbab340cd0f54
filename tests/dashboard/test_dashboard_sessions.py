"""Session cookies: signed, expiring, tamper-evident; CSRF tokens bound to one session."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from dashboard.sessions import csrf_token, csrf_valid, decode_session, encode_session, new_session

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = b"key"


def test_a_session_survives_the_round_trip_until_it_expires() -> None:
    session = new_session(7, now=NOW, ttl=timedelta(hours=1), lang="zh-hans")
    cookie = encode_session(session, KEY)
    assert decode_session(cookie, KEY, now=NOW) == session
    assert session.lang == "zh"
    assert decode_session(cookie, KEY, now=NOW + timedelta(hours=1)) is None


def test_a_changed_cookie_is_no_session() -> None:
    cookie = encode_session(new_session(7, now=NOW, ttl=timedelta(hours=1)), KEY)
    body, signature = cookie.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["u"] = 8
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    assert decode_session(f"{forged}.{signature}", KEY, now=NOW) is None
    assert decode_session(cookie, b"other", now=NOW) is None
    for junk in (None, "", "a", "a.b.c", "!!.??"):
        assert decode_session(junk, KEY, now=NOW) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    one = new_session(7, now=NOW, ttl=timedelta(hours=1))
    two = new_session(7, now=NOW, ttl=timedelta(hours=1))
    assert csrf_valid(one, KEY, csrf_token(one, KEY))
    assert not csrf_valid(two, KEY, csrf_token(one, KEY))
    assert not csrf_valid(one, KEY, None)
    assert not csrf_valid(one, KEY, "")
