"""Experiments in Telegram: variants in /broadcast; push buttons signed by the sender, logged as clicks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.admin.variants import describe_buttons, parse_variants
from bot.delivery import TelegramSender
from scheduler.experiments import ExperimentDraft, VariantDraft
from scheduler.sender import Button, OutgoingMessage, SendStatus
from store.experiments import VariantButton

if TYPE_CHECKING:
    from conftest import BotHarness


@dataclass
class RecordingBroadcasts:
    """A BroadcastScheduler that records the experiments the bot asked for."""

    experiments: list[dict[str, object]] = field(default_factory=list)

    async def schedule(self, *, segment: str | None, text: str, at: datetime, created_by: int) -> int:
        raise AssertionError("a text with variants must be scheduled as an experiment")

    async def schedule_experiment(
        self, *, segment: str | None, draft: ExperimentDraft, at: datetime, created_by: int
    ) -> tuple[int, int]:
        self.experiments.append({"segment": segment, "draft": draft, "at": at, "created_by": created_by})
        return 70 + len(self.experiments), 3


def test_variants_are_split_at_dash_lines_with_buttons_on_their_last_lines() -> None:
    text = (
        "Try the new model!\n[Show me]\n---\nThe new model is out.\nRead more:\n[Docs](https://example.com/d)"
    )
    assert parse_variants(text) == (
        VariantDraft("Try the new model!", (VariantButton("Show me"),)),
        VariantDraft("The new model is out.\nRead more:", (VariantButton("Docs", "https://example.com/d"),)),
    )
    assert parse_variants("No variants here\n--- not a separator") is None
    assert parse_variants("one\n---\n") == (VariantDraft("one"), VariantDraft(""))
    assert describe_buttons(VariantDraft("x", (VariantButton("A"), VariantButton("B", "https://b")))) == (
        "buttons: [A] [B ↗ not trackable]"
    )


def _buttons(record: object) -> list[tuple[str, str]]:
    markup = record.reply_markup  # type: ignore[attr-defined]
    assert markup is not None
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def _preview(bot: BotHarness, admin_id: int, text: str) -> object:
    manager = bot.user(admin_id, "Manager")
    await bot.command(bot.user(6101, "U6101"), "start")
    pick = await bot.command(manager, "broadcast")
    since = bot.mark()
    await bot.press(manager, pick, _buttons(pick)[0][1])
    await bot.reply_to(admin_id, since)
    since = bot.mark()
    bot.api.user_says(manager, text)
    return await bot.reply_to(
        admin_id, since, lambda r: (r.text or "").startswith("↑ Preview") or "variants" in (r.text or "")
    )


async def test_broadcast_with_variants_previews_each_and_schedules_a_test_share(
    bot: BotHarness, admin_id: int
) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    since = bot.mark()
    preview = await _preview(
        bot, admin_id, "Try it!\n[Show me]\n---\nIt is out.\n[Docs](https://example.com)"
    )
    shown = [r.text for r in bot.api.sent[since:] if r.chat_id == admin_id]
    assert "Variant A:\nTry it!\n\nbuttons: [Show me]" in shown
    assert "Variant B:\nIt is out.\n\nbuttons: [Docs ↗ not trackable]" in shown
    assert "Preview of 2 variants" in (preview.text or "")  # type: ignore[attr-defined]
    labels = [label for label, _ in _buttons(preview)]
    assert labels == [
        "All variants now (split evenly)",
        "Test on 20% now, the winner to the rest after 24 h",
        "Cancel",
    ]
    since = bot.mark()
    await bot.press(bot.user(admin_id, "Manager"), preview, _buttons(preview)[1][1])  # type: ignore[arg-type]
    done = await bot.reply_to(admin_id, since)
    assert (done.text or "").startswith("Experiment #3 (broadcast #71) scheduled")
    [call] = recorder.experiments
    draft = call["draft"]
    assert isinstance(draft, ExperimentDraft)
    assert draft.test_share == 0.2 and draft.goal == "click" and len(draft.variants) == 2
    assert call["segment"] is None and call["created_by"] == admin_id


async def test_too_many_variants_are_refused_and_the_text_asked_again(bot: BotHarness, admin_id: int) -> None:
    recorder = RecordingBroadcasts()
    bot.services.broadcasts = recorder
    refused = await _preview(bot, admin_id, "\n---\n".join(f"v{i}" for i in range(9)))
    assert "2 to 8 variants" in (refused.text or "")  # type: ignore[attr-defined]
    assert recorder.experiments == []
    again = await _preview_text(bot, admin_id, "one\n---\ntwo")
    assert "Preview of 2 variants" in (again.text or "")


async def _preview_text(bot: BotHarness, admin_id: int, text: str) -> object:
    since = bot.mark()
    bot.api.user_says(bot.user(admin_id, "Manager"), text)
    return await bot.reply_to(admin_id, since, lambda r: (r.text or "").startswith("↑ Preview"))


async def test_a_push_button_press_is_logged_as_push_click_with_its_variant(bot: BotHarness) -> None:
    user = bot.user(6201, "Bob")
    await bot.command(user, "start")
    sender = TelegramSender.from_settings(bot.settings, bot=bot.app.bot)
    since = bot.mark()
    result = await sender.send(
        OutgoingMessage(
            6201,
            "Try the new model",
            buttons=(
                Button("Show me", push_click="55.7.B.0"),
                Button("Docs", url="https://example.com/docs"),
            ),
        )
    )
    assert result.status is SendStatus.SENT
    record = await bot.reply_to(6201, since)
    [[show], [docs]] = record.reply_markup["inline_keyboard"]  # type: ignore[index]
    assert docs == {"text": "Docs", "url": "https://example.com/docs"}
    assert show["callback_data"].startswith("push:55.7.B.0:")
    answer = await bot.press(user, record, show["callback_data"])
    assert answer.params.get("text") == "Thanks!"
    forged = await bot.press(user, record, "push:56.7.A.0:0:AAAAAAAAAAAA", forged=True)
    assert forged.params.get("text") == "This button has expired."
    events = await bot.events(6201)
    clicks = [e for e in events if e.kind == "push_click"]
    assert len(clicks) == 1
    attributes = clicks[0].attributes or {}
    assert (
        attributes["delivery_id"],
        attributes["experiment_id"],
        attributes["variant"],
        attributes["button"],
    ) == (
        55,
        7,
        "B",
        0,
    )
    assert any(e.kind == "callback" and (e.attributes or {}).get("valid") is False for e in events)
