"""/broadcast in Telegram: segment, text, preview with recipients and duration, confirmation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from bot.admin.broadcast import parse_send_time, send_time

if TYPE_CHECKING:
    from conftest import BotHarness


@dataclass
class RecordingBroadcasts:
    """A BroadcastScheduler that records what the bot asked for."""

    calls: list[dict[str, object]] = field(default_factory=list)

    async def schedule(self, *, segment: str | None, text: str, at: datetime, created_by: int) -> int:
        self.calls.append({"segment": segment, "text": text, "at": at, "created_by": created_by})
        return 40 + len(self.calls)


def _buttons(record: object) -> list[tuple[str, str]]:
    markup = record.reply_markup  # type: ignore[attr-defined]
    assert markup is not None
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def _compose(bot: BotHarness, admin_id: int, text: str) -> object:
    manager = bot.user(admin_id, "Manager")
    for uid in (6001, 6002, 6003):
        await bot.command(bot.user(uid, f"U{uid}"), "start")
    await bot.command(bot.user(6003, "U6003"), "stop")
    pick = await bot.command(manager, "broadcast")
    assert pick.text == "Who should receive the broadcast?"
    (label, data), *_ = _buttons(pick)
    assert label == "Everyone (3)"  # two users and the manager can be reached; 6003 opted out
    since = bot.mark()
    await bot.press(manager, pick, data)
    asked = await bot.reply_to(admin_id, since)
    assert asked.text is not None and asked.text.startswith("Broadcast to everyone")
    since = bot.mark()
    bot.api.user_says(manager, text)
    await bot.reply_to(admin_id, since, lambda r: r.text == text)
    return await bot.reply_to(admin_id, since, lambda r: (r.text or "").startswith("↑ Preview"))


async def test_broadcast_preview_and_send_now(bot: BotHarness, admin_id: int) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    preview = await _compose(bot, admin_id, "🎉 rapport-vision is live!")
    assert "Recipients: 3; sending takes about 1 s at 30 messages/s" in (preview.text or "")  # type: ignore[attr-defined]
    labels = [label for label, _ in _buttons(preview)]
    assert labels == ["Send now", "In 1 hour", "Tomorrow 10:00 UTC", "Cancel"]
    since = bot.mark()
    await bot.press(bot.user(admin_id, "Manager"), preview, _buttons(preview)[0][1])  # type: ignore[arg-type]
    done = await bot.reply_to(admin_id, since)
    assert done.text is not None and done.text.startswith("Broadcast #41 scheduled now for 3 recipients")
    [call] = recorder.calls
    assert call["segment"] is None
    assert call["text"] == "🎉 rapport-vision is live!"
    assert call["created_by"] == admin_id
    events = await bot.events(admin_id)
    drafts = [e for e in events if e.attributes and e.attributes.get("broadcast_draft")]
    assert len(drafts) == 1 and drafts[0].intent is None  # the draft is not a question


async def test_broadcast_at_a_typed_time(bot: BotHarness, admin_id: int) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    await _compose(bot, admin_id, "Office hours on Thursday")
    at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    manager = bot.user(admin_id, "Manager")
    offer = await bot.say(manager, f"{at:%Y-%m-%d %H:%M}")
    (label, data), _cancel = _buttons(offer)
    assert label == f"Schedule for {at:%Y-%m-%d %H:%M} UTC"
    since = bot.mark()
    await bot.press(manager, offer, data)
    done = await bot.reply_to(admin_id, since)
    assert done.text is not None and f"at {at:%Y-%m-%d %H:%M} UTC" in done.text
    assert recorder.calls[0]["at"] == at


async def test_broadcast_cancel_button_sends_nothing(bot: BotHarness, admin_id: int) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    preview = await _compose(bot, admin_id, "Never mind")
    since = bot.mark()
    await bot.press(bot.user(admin_id, "Manager"), preview, _buttons(preview)[-1][1])  # type: ignore[arg-type]
    done = await bot.reply_to(admin_id, since)
    assert done.text == "Broadcast cancelled; nothing was sent."
    assert recorder.calls == []


async def test_broadcast_buttons_cannot_be_pressed_by_others(bot: BotHarness, admin_id: int) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    preview = await _compose(bot, admin_id, "Hello")
    mallory = bot.user(6009, "Mallory")
    answer = await bot.press(mallory, preview, _buttons(preview)[0][1], forged=True)  # type: ignore[arg-type]
    assert answer.params.get("text") == "This button has expired."
    assert recorder.calls == []


async def test_a_managers_question_while_a_preview_waits_is_answered_and_logged_as_one(
    bot: BotHarness, admin_id: int
) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    preview = await _compose(bot, admin_id, "Office hours on Thursday")
    manager = bot.user(admin_id, "Manager")
    answer = await bot.say(manager, "how do I create an API key?")
    assert answer.text == bot.services.knowledge.topics["api_keys"].answer["en"]
    question = (await bot.events(admin_id))[-1]
    assert (question.kind, question.intent) == ("message", "api_keys")
    assert question.attributes is not None and "broadcast_draft" not in question.attributes
    since = bot.mark()
    await bot.press(manager, preview, _buttons(preview)[0][1])  # the draft is still there
    await bot.reply_to(admin_id, since)
    assert [call["text"] for call in recorder.calls] == ["Office hours on Thursday"]


async def test_a_managers_text_before_choosing_a_segment_is_a_question(
    bot: BotHarness, admin_id: int
) -> None:
    bot.services.broadcasts = RecordingBroadcasts()
    manager = bot.user(admin_id, "Manager")
    await bot.command(manager, "broadcast")
    answer = await bot.say(manager, "how do I create an API key?")
    assert answer.text == bot.services.knowledge.topics["api_keys"].answer["en"]
    question = (await bot.events(admin_id))[-1]
    assert (question.kind, question.intent) == ("message", "api_keys")


async def test_broadcast_without_a_scheduler_says_so(bot: BotHarness, admin_id: int) -> None:
    reply = await bot.command(bot.user(admin_id, "Manager"), "broadcast")
    assert reply.text == "Broadcasts need the scheduler, which is not running in this process."


def test_send_time_choices() -> None:
    now = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
    assert send_time("now", now) == now
    assert send_time("1h", now) == now + timedelta(hours=1)
    assert send_time("tmr", now) == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert send_time("1800000000", now) == datetime.fromtimestamp(1_800_000_000, UTC)
    assert send_time("soon", now) is None


@pytest.mark.parametrize(
    ("text", "valid"), [("2026-12-01 10:00", True), ("2026-11-01 10:00", False), ("tomorrow", False)]
)
def test_parse_send_time(text: str, valid: bool) -> None:
    now = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
    assert (parse_send_time(text, now) is not None) == valid
