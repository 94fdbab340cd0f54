"""Rapport's local Telegram Bot API server for tests, benchmarks and the demo.

Typical use with python-telegram-bot::

    api = LocalBotAPI()
    with api.serve_in_thread():
        app = Application.builder().token(api.token).base_url(api.base_url).build()
        alice = api.add_user(1001, "Alice", username="alice")
        api.user_says(alice, "hello")
        ...
        record = api.wait_for_blocking(lambda r: r.chat_id == alice.id)
"""

from __future__ import annotations

from fakeapi.errors import BotApiError, LocalApiError, SimulationError, WaitTimeout
from fakeapi.faults import Fault, FaultPlan
from fakeapi.formatting import parse_text, utf16_len
from fakeapi.limits import RateLimiter, RateLimits
from fakeapi.records import CallRecord, Recorder, SentRecord
from fakeapi.server import DEFAULT_TOKEN, LocalBotAPI
from fakeapi.state import ALL_UPDATE_TYPES, SimChat, SimUser

__all__ = [
    "ALL_UPDATE_TYPES",
    "DEFAULT_TOKEN",
    "BotApiError",
    "CallRecord",
    "Fault",
    "FaultPlan",
    "LocalApiError",
    "LocalBotAPI",
    "RateLimiter",
    "RateLimits",
    "Recorder",
    "SentRecord",
    "SimChat",
    "SimUser",
    "SimulationError",
    "WaitTimeout",
    "parse_text",
    "utf16_len",
]
