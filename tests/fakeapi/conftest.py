"""Fixtures: a running local Bot API server and a PTB Bot pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from fakeapi import LocalBotAPI, SimUser


@pytest.fixture
async def api() -> AsyncIterator[LocalBotAPI]:
    """A server in the test's own event loop, with one user (Alice, id 1001)."""
    server = LocalBotAPI(webhook_retry_delay=0.05)
    server.add_user(1001, "Alice", username="alice_w", language_code="en")
    async with server:
        yield server


@pytest.fixture
def alice(api: LocalBotAPI) -> SimUser:
    return api.state.users[1001]


@pytest.fixture
async def bot(api: LocalBotAPI) -> AsyncIterator[Bot]:
    """A real python-telegram-bot Bot using the local server."""
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client
