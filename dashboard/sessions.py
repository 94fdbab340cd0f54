"""Signed session cookies and the CSRF token tied to each session.

The cookie holds `base64(json).base64(hmac)`: the manager's id, the session's expiry, a random
session id and the interface language. Nothing in it is secret, but nothing can be changed
without the key. The CSRF token is an HMAC of the session id, so it needs no server-side state
and a token from one session is useless in another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

COOKIE_NAME = "rapport_session"
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class Session:
    """A logged-in manager."""

    user_id: int
    expires: int  # Unix seconds
    sid: str
    lang: str = "en"
    via: str = "link"  # link | webapp

    def with_lang(self, lang: str) -> Session:
        """The same session speaking another language."""
        return replace(self, lang=lang if lang in LANGUAGES else "en")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: bytes, data: bytes) -> str:
    return _b64(hmac.new(secret, purpose + data, hashlib.sha256).digest())


def new_session(
    user_id: int, *, now: datetime, ttl: timedelta, lang: str | None = None, via: str = "link"
) -> Session:
    """A fresh session for a manager who has just proved who they are."""
    chosen = (lang or "en")[:2].lower()
    return Session(
        user_id=int(user_id),
        expires=int((now + ttl).timestamp()),
        sid=secrets.token_urlsafe(16),
        lang=chosen if chosen in LANGUAGES else "en",
        via=via,
    )


def encode_session(session: Session, secret: bytes) -> str:
    """The cookie value for a session."""
    body = json.dumps(
        {"u": session.user_id, "e": session.expires, "s": session.sid, "l": session.lang, "v": session.via},
        separators=(",", ":"),
    ).encode("utf-8")
    return f"{_b64(body)}.{_mac(secret, b'session:', body)}"


def decode_session(value: str | None, secret: bytes, *, now: datetime) -> Session | None:
    """The session in a cookie value, or None when absent, tampered with or expired."""
    if not value or value.count(".") != 1:
        return None
    body_text, signature = value.split(".")
    try:
        body = _unb64(body_text)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(signature, _mac(secret, b"session:", body)):
        return None
    try:
        data = json.loads(body)
        session = Session(
            user_id=int(data["u"]),
            expires=int(data["e"]),
            sid=str(data["s"]),
            lang=str(data["l"]),
            via=str(data["v"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now.timestamp() else None


def csrf_token(session: Session, secret: bytes) -> str:
    """The CSRF token every state-changing request of this session must carry."""
    return _mac(secret, b"csrf:", session.sid.encode("ascii"))


def csrf_valid(session: Session, secret: bytes, token: str | None) -> bool:
    """Whether `token` is this session's CSRF token (constant-time)."""
    return bool(token) and hmac.compare_digest(str(token), csrf_token(session, secret))
