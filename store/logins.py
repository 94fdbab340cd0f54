"""One-time dashboard login links (signed, single use, short-lived) and the key that signs them.

A link carries `<user id>.<expiry>.<nonce>.<signature>`. The signature (HMAC-SHA256 under the
dashboard secret) proves the link was issued by someone holding the secret, the expiry is checked
against the clock, and the nonce's row in `login_tokens` is marked used in the same UPDATE that
checks it was unused, so two redemptions racing each other cannot both succeed. The bot (`/dashboard`)
and the CLI (`rapport dashboard --login-url`) issue links; the dashboard redeems them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, delete, insert, update

from store.models import LoginToken
from store.settings import Settings

logger = logging.getLogger(__name__)

LOGIN_TTL = timedelta(minutes=10)
SECRET_FILE = "dashboard_secret"
TERMINAL_OPERATOR = 0
"""The actor id of links printed at the terminal (whoever can run `rapport` on the database)."""
_PURPOSE = b"rapport-login-link:"


class LoginRefusal(StrEnum):
    """Why a login link was refused (shown to the person who followed it)."""

    MALFORMED = "malformed"
    FORGED = "forged"
    EXPIRED = "expired"
    USED = "used"


class LoginRefused(ValueError):
    """A login link that must not open a session; `reason` says which check failed."""

    def __init__(self, reason: LoginRefusal) -> None:
        self.reason = reason
        super().__init__(f"login link refused: {reason.value}")


def dashboard_secret(settings: Settings) -> bytes:
    """The dashboard's signing key: the setting, else derived from the bot token, else a kept file.

    Deriving from the token lets the bot and `rapport dashboard` agree without extra configuration;
    without a token the key is generated once and kept (mode 0600) under the data directory.
    """
    if settings.dashboard_secret:
        return settings.dashboard_secret.encode("utf-8")
    if settings.telegram_bot_token:
        return hmac.new(b"rapport-dashboard", settings.telegram_bot_token.encode("utf-8"), "sha256").digest()
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip().encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(value)
    logger.info("generated the dashboard secret in %s", path)
    return value.encode("utf-8")


def _signature(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, _PURPOSE + payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue_login_token(
    engine: Engine, secret: bytes, *, user_id: int, now: datetime, ttl: timedelta = LOGIN_TTL
) -> str:
    """A fresh one-time token for `user_id`, valid for `ttl`; expired tokens are purged on the way."""
    nonce = secrets.token_urlsafe(18)
    expires = now + ttl
    payload = f"{int(user_id)}.{int(expires.timestamp())}.{nonce}"
    with engine.begin() as connection:
        connection.execute(delete(LoginToken).where(LoginToken.expires_at < now - timedelta(days=1)))
        connection.execute(
            insert(LoginToken).values(nonce=nonce, user_id=int(user_id), created_at=now, expires_at=expires)
        )
    return f"{payload}.{_signature(secret, payload)}"


def redeem_login_token(engine: Engine, secret: bytes, token: str, *, now: datetime) -> int:
    """The user id of a valid, unexpired, unused token, which is used up by this call.

    Raises:
        LoginRefused: malformed, bad signature, expired, or already used (or never issued here).
    """
    parts = token.strip().split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        raise LoginRefused(LoginRefusal.MALFORMED)
    user_text, expires_text, nonce, signature = parts
    payload = f"{user_text}.{expires_text}.{nonce}"
    if not hmac.compare_digest(signature.encode("ascii", "replace"), _signature(secret, payload).encode()):
        raise LoginRefused(LoginRefusal.FORGED)
    if int(expires_text) <= now.timestamp():
        raise LoginRefused(LoginRefusal.EXPIRED)
    with engine.begin() as connection:
        used = connection.execute(
            update(LoginToken)
            .where(
                LoginToken.nonce == nonce,
                LoginToken.user_id == int(user_text),
                LoginToken.used_at.is_(None),
                LoginToken.expires_at > now,
            )
            .values(used_at=now)
        ).rowcount
    if used != 1:
        raise LoginRefused(LoginRefusal.USED)
    return int(user_text)


def login_url(base_url: str, token: str) -> str:
    """The link a manager opens: the dashboard's `/login` page with the token."""
    return f"{base_url.rstrip('/')}/login?token={quote(token, safe='.')}"
