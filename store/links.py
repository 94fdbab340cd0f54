"""Signed, expiring Telegram deep-link payloads for a product account id (pure: no database).

The start-up's backend shows `https://t.me/<bot>?start=<payload>`; Telegram hands the payload
to the bot as `/start <payload>`. Telegram allows at most 64 characters from `A-Z a-z 0-9 _ -`
in `start`, so the payload is the unpadded base64url of

    format (1 byte) | account id | expiry (4 bytes, big-endian unix minutes) | MAC (11 bytes)

where MAC = HMAC-SHA256(RAPPORT_LINK_SECRET, b"rapport-link-v1\\x00" + format + account id +
expiry)[:11]. Format 0x01: the account id as UTF-8, 1 to 32 bytes; format 0x02: a canonical
(lower-case, hyphenated) UUID as its 16 bytes, so the most common account id shape fits too.
The account id has a variable length; the rest a fixed one, so the parts split off
unambiguously, and 48 bytes encode to exactly 64 characters. An 88-bit MAC is beyond brute
force through a chat; single use is enforced by the store (`store.product`), which remembers
the MAC of every redeemed payload until it expires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

MAX_PAYLOAD_CHARS = 64
MAC_BYTES = 11
EXPIRY_BYTES = 4
FORMAT_TEXT = b"\x01"
FORMAT_UUID = b"\x02"
MAX_ACCOUNT_ID_BYTES = (MAX_PAYLOAD_CHARS * 6 // 8) - 1 - MAC_BYTES - EXPIRY_BYTES  # 32
DOMAIN = b"rapport-link-v1\x00"
_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_BOT_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class LinkError(ValueError):
    """A link cannot be made (account id too long, no secret, bad bot username)."""


class LinkRefusal(StrEnum):
    """Why a payload was refused; the value goes into the logged event's attributes."""

    MALFORMED = "malformed"
    """Not base64url, or too short or too long to be a payload."""
    FORGED = "forged"
    """The MAC does not match: not signed with this deployment's secret."""
    EXPIRED = "expired"
    REUSED = "reused"
    """Redeemed before (by anyone)."""
    TAKEN = "taken"
    """The account or the Telegram user is already linked to someone else."""
    NOT_CONFIGURED = "not_configured"
    """RAPPORT_LINK_SECRET is not set: no payload can be verified."""


@dataclass(frozen=True)
class VerifiedLink:
    """A payload whose signature and expiry checked out."""

    account_id: str
    expires_at: datetime
    mac: bytes

    @property
    def token_id(self) -> str:
        """What the store keeps to make the payload single-use (the MAC, hex)."""
        return self.mac.hex()


class PayloadRejected(ValueError):
    """`verify_payload` refused a payload; `reason` says why."""

    def __init__(self, reason: LinkRefusal, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {detail}")


def _mac(secret: str, account: bytes, expiry: bytes) -> bytes:
    """`account` is the format byte and the encoded account id."""
    return hmac.new(secret.encode("utf-8"), DOMAIN + account + expiry, hashlib.sha256).digest()[:MAC_BYTES]


def _encode_account(account_id: str) -> bytes:
    """Format byte and account id: a canonical UUID as 16 bytes, anything else as UTF-8."""
    try:
        if str(uuid.UUID(account_id)) == account_id:
            return FORMAT_UUID + uuid.UUID(account_id).bytes
    except ValueError:
        pass
    return FORMAT_TEXT + account_id.encode("utf-8")


def _decode_account(account: bytes) -> str:
    kind, body = account[:1], account[1:]
    if kind == FORMAT_UUID and len(body) == 16:
        return str(uuid.UUID(bytes=body))
    if kind == FORMAT_TEXT and body:
        return body.decode("utf-8")
    raise ValueError("unknown account id format")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign_payload(account_id: str, secret: str, *, expires_at: datetime) -> str:
    """The deep-link payload for `account_id`, valid until `expires_at` (rounded down to the minute).

    This is the reference implementation the README describes; a backend in another language
    produces the same bytes.

    Raises:
        LinkError: the secret is empty, the account id is empty or longer than 32 UTF-8 bytes,
            or the expiry is not UTC-aware.
    """
    if not secret:
        raise LinkError("RAPPORT_LINK_SECRET is not set: cannot sign deep-link payloads")
    if not account_id:
        raise LinkError("account id is empty")
    account = _encode_account(account_id)
    if len(account) - 1 > MAX_ACCOUNT_ID_BYTES:
        raise LinkError(
            f"account id {account_id[:40]!r} is {len(account) - 1} bytes in UTF-8; a Telegram start "
            f"payload holds at most {MAX_ACCOUNT_ID_BYTES} (64 characters with expiry and signature)"
        )
    if expires_at.tzinfo is None:
        raise LinkError("expires_at must be UTC-aware")
    minutes = int(expires_at.timestamp() // 60)
    if not 0 < minutes < 2**32:
        raise LinkError(f"expiry {expires_at.isoformat()} is out of range")
    expiry = minutes.to_bytes(EXPIRY_BYTES, "big")
    payload = _b64(account + expiry + _mac(secret, account, expiry))
    assert len(payload) <= MAX_PAYLOAD_CHARS and _ALPHABET.match(payload)
    return payload


def verify_payload(payload: str, secret: str, *, now: datetime | None = None) -> VerifiedLink:
    """Check the signature, then the expiry, of a payload; the account it names.

    Raises:
        PayloadRejected: malformed, forged (checked in constant time) or expired.
    """
    if not secret:
        raise PayloadRejected(LinkRefusal.NOT_CONFIGURED, "RAPPORT_LINK_SECRET is not set")
    if not payload or len(payload) > MAX_PAYLOAD_CHARS or not _ALPHABET.match(payload):
        raise PayloadRejected(LinkRefusal.MALFORMED, "not a base64url payload of at most 64 characters")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PayloadRejected(LinkRefusal.MALFORMED, "not base64url") from exc
    if len(raw) <= 1 + MAC_BYTES + EXPIRY_BYTES:
        raise PayloadRejected(LinkRefusal.MALFORMED, "too short")
    account, expiry, mac = (
        raw[: -MAC_BYTES - EXPIRY_BYTES],
        raw[-MAC_BYTES - EXPIRY_BYTES : -MAC_BYTES],
        raw[-MAC_BYTES:],
    )
    if not hmac.compare_digest(mac, _mac(secret, account, expiry)):
        raise PayloadRejected(LinkRefusal.FORGED, "signature does not match")
    expires_at = datetime.fromtimestamp(int.from_bytes(expiry, "big") * 60, tz=UTC)
    if (now or datetime.now(UTC)) >= expires_at:
        raise PayloadRejected(LinkRefusal.EXPIRED, f"expired at {expires_at.isoformat()}")
    try:
        account_id = _decode_account(account)
    except ValueError as exc:  # signed with our secret, so only a signer bug gets here
        raise PayloadRejected(LinkRefusal.MALFORMED, "account id is not in a known format") from exc
    return VerifiedLink(account_id=account_id, expires_at=expires_at, mac=mac)


def link_url(
    account_id: str,
    secret: str,
    *,
    bot_username: str,
    ttl: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> str:
    """`https://t.me/<bot>?start=<payload>` for `account_id`, valid for `ttl`."""
    name = bot_username.removeprefix("@")
    if not _BOT_USERNAME.match(name):
        raise LinkError(f"{bot_username!r} is not a Telegram bot username")
    if ttl <= timedelta(0):
        raise LinkError("the link must be valid for a positive time")
    expires_at = (now or datetime.now(UTC)) + ttl
    return f"https://t.me/{name}?start={sign_payload(account_id, secret, expires_at=expires_at)}"
