"""Signed, expiring callback data: buttons can't be forged, and old ones expire.

Telegram hands callback data back verbatim, and any client can send any data for any
message. So every button the bot makes carries `action:arg:issued:signature`, where the
signature is an HMAC over the fields and the user the button is meant for (0 for anyone).
Data that does not verify, names an unknown action or is older than the action allows
is rejected, and the handler answers "this button has expired".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CALLBACK_BYTES = 64
_EPOCH = 1_700_000_000  # keeps the base-36 issue time short

# action -> how long (seconds) a button stays valid
ACTIONS: dict[str, float] = {
    "topic": 30 * 86_400,  # a suggested or follow-up topic
    "forget": 600,  # confirm or cancel /forget
    "rate": 2 * 86_400,  # feedback rating 1-5
    "bseg": 1_800,  # broadcast: pick a segment
    "bgo": 1_800,  # broadcast: confirm, schedule or cancel
    "bexp": 1_800,  # broadcast with variants: all at once, or test share first
    "push": 30 * 86_400,  # a button on a push (an experiment variant): logged as push_click
}


def secret_for_token(token: str) -> str:
    """Key material for callback signatures from the bot token: stable for one bot, unknown to others."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PushClick:
    """What a push button's `arg` says: the delivery, experiment, variant and button pressed."""

    delivery_id: int
    experiment_id: int | None
    variant: str | None
    button: int

    @classmethod
    def parse(cls, arg: str) -> PushClick | None:
        """`"123.4.A.0"` → PushClick(123, 4, "A", 0); None when malformed."""
        parts = arg.split(".")
        if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit() or not parts[3].isdigit():
            return None
        experiment = int(parts[1]) or None
        return cls(int(parts[0]), experiment, parts[2] or None, int(parts[3]))


@dataclass(frozen=True)
class CallbackData:
    """Verified callback data."""

    action: str
    arg: str
    issued_at: float


def _b36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


class CallbackCodec:
    """Encodes and verifies callback data with a secret derived from the bot token.

    Deriving the key from the token keeps buttons valid across restarts of the same bot,
    while a different bot (token) cannot mint buttons this one accepts.
    """

    def __init__(self, secret: str | bytes, *, clock: Callable[[], float] = time.time) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        self._key = hashlib.sha256(b"rapport-callback-v1:" + raw).digest()
        self._clock = clock

    def _sign(self, payload: str, user_id: int) -> str:
        digest = hmac.new(self._key, f"{payload}:{user_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:9]).decode()

    def encode(self, action: str, arg: str = "", *, user_id: int = 0) -> str:
        """Callback data for a button; `user_id` binds it to the one user who may press it.

        Raises:
            ValueError: unknown action, a ':' in `arg`, or the result exceeds 64 bytes.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown callback action {action!r}")
        if ":" in arg:
            raise ValueError(f"callback arg {arg!r} must not contain ':'")
        payload = f"{action}:{arg}:{_b36(max(0, int(self._clock()) - _EPOCH))}"
        data = f"{payload}:{self._sign(payload, user_id)}"
        if len(data.encode()) > MAX_CALLBACK_BYTES:
            raise ValueError(f"callback data {data!r} is longer than {MAX_CALLBACK_BYTES} bytes")
        return data

    def decode(self, data: str | None, *, user_id: int) -> CallbackData | None:
        """The verified data, or None when forged, meant for someone else, unknown or stale."""
        if not data or len(data.encode()) > MAX_CALLBACK_BYTES:
            return None
        parts = data.split(":")
        if len(parts) != 4 or parts[0] not in ACTIONS:
            return None
        action, arg, issued, signature = parts
        payload = f"{action}:{arg}:{issued}"
        if not any(hmac.compare_digest(signature, self._sign(payload, uid)) for uid in (user_id, 0)):
            return None
        try:
            issued_at = int(issued, 36) + _EPOCH
        except ValueError:
            return None
        age = self._clock() - issued_at
        if age < -60 or age > ACTIONS[action]:
            return None
        return CallbackData(action=action, arg=arg, issued_at=float(issued_at))
