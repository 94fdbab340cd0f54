"""/forget while the event log is behind: refused with a clear answer, nothing deleted."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from store import get_user

if TYPE_CHECKING:
    from conftest import BotHarness


async def test_forget_is_refused_and_said_when_the_log_did_not_catch_up(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, the timed-out flush was ignored and the data deleted anyway: an event of the
    # user still in the buffer landed after the delete and brought them back.
    alice = bot.user(1031, "Alice")
    await bot.command(alice, "start")
    await bot.idle()
    confirm = await bot.command(alice, "forget")
    assert confirm.reply_markup is not None
    yes = confirm.reply_markup["inline_keyboard"][0][0]["callback_data"]
    writer = bot.services.writer
    monkeypatch.setattr(writer, "flush", lambda timeout=10.0: False)  # the database is not keeping up
    since = bot.mark()
    await bot.press(alice, confirm, yes)
    edited = await bot.reply_to(1031, since, lambda r: r.method == "editMessageText")
    assert edited.text is not None and "nothing was deleted" in edited.text
    assert "/forget again" in edited.text
    monkeypatch.undo()
    await bot.idle()
    assert await asyncio.to_thread(get_user, bot.engine, 1031) is not None
