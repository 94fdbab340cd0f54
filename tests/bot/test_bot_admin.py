"""Manager commands in Telegram: access control, /stats, /segments, /insights, /campaigns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.i18n import t
from store.models import AnalyticsRun, Campaign, Delivery, Rule, Segment, SegmentMembership, User

if TYPE_CHECKING:
    from conftest import BotHarness


def seed_analytics(engine: Engine, *, segment_name: str = "Power users") -> None:
    """One current analytics run with two segments and a rule."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        run = AnalyticsRun(status="done", is_current=True, created_at=now, n_users=3)
        session.add(run)
        session.flush()
        power = Segment(run_id=run.id, label=0, name=segment_name, description="Daily API questions", size=2)
        new = Segment(run_id=run.id, label=1, name="Newcomers", description="Joined this week", size=1)
        session.add_all([power, new])
        session.flush()
        for uid, segment, opted_out in ((11, power, False), (12, power, True), (13, new, False)):
            session.add(User(id=uid, first_seen=now, last_seen=now, opted_out=opted_out, blocked=False))
            session.flush()
            session.add(SegmentMembership(run_id=run.id, user_id=uid, segment_id=segment.id))
        session.add(
            Rule(
                run_id=run.id,
                antecedents=["pricing"],
                consequents=["billing"],
                support=0.2,
                confidence=0.6,
                lift=2.5,
                leverage=0.1,
                sentence="Users who ask about pricing ask about billing next 60% of the time.",
            )
        )
        campaign = Campaign(
            kind="broadcast", name="Launch", segment=segment_name, status="done", scheduled_at=now
        )
        session.add(campaign)
        session.flush()
        for uid, status in ((11, "sent"), (13, "blocked")):
            session.add(Delivery(campaign_id=campaign.id, user_id=uid, chat_id=uid, text="hi", status=status))


@pytest.mark.parametrize("command", ["stats", "segments", "insights", "campaigns", "broadcast"])
async def test_non_managers_are_refused_politely_and_logged(bot: BotHarness, command: str) -> None:
    mallory = bot.user(5001, "Mallory")
    reply = await bot.command(mallory, command)
    assert reply.text == t("not_admin", "en")
    [event] = await bot.events(5001)
    assert event.kind == "command"
    assert event.attributes is not None
    assert event.attributes["command"] == command
    assert event.attributes["admin"] is False


async def test_stats_reports_activity(bot: BotHarness, admin_id: int) -> None:
    alice = bot.user(5002, "Alice")
    await bot.say(alice, "How much does the Pro plan cost?")
    await bot.say(alice, "What will the weather be like in Paris tomorrow?")
    manager = bot.user(admin_id, "Manager")
    reply = await bot.command(manager, "stats", "7")
    assert reply.text is not None
    assert reply.text.startswith("Activity, last 7 days")
    assert "DAU 1" in reply.text  # Alice: staff (RAPPORT_ADMIN_IDS) are not community users (issue 18)
    assert "Messages: 2 (1 answered, 1 unanswered, fallback rate 50%)" in reply.text
    assert "pricing (1)" in reply.text


async def test_stats_rejects_a_bad_period(bot: BotHarness, admin_id: int) -> None:
    manager = bot.user(admin_id, "Manager")
    reply = await bot.command(manager, "stats", "forever")
    assert reply.text is not None and reply.text.startswith("Usage: /stats")


async def test_segments_insights_campaigns(bot: BotHarness, admin_id: int) -> None:
    seed_analytics(bot.engine)
    manager = bot.user(admin_id, "Manager")
    segments = await bot.command(manager, "segments")
    assert segments.text is not None
    assert "Power users – 2 users (67%): Daily API questions" in segments.text
    insights = await bot.command(manager, "insights")
    assert insights.text is not None
    assert "1. Users who ask about pricing ask about billing next 60% of the time." in insights.text
    campaigns = await bot.command(manager, "campaigns")
    assert campaigns.text is not None
    assert "“Launch” → Power users: done" in campaigns.text
    assert "targeted 2, sent 1, failed 0, blocked 1, skipped 0, pending 0" in campaigns.text


async def test_segment_names_that_look_like_markup_reach_the_manager_verbatim(
    bot: BotHarness, admin_id: int
) -> None:
    seed_analytics(bot.engine, segment_name="R&D <Dev> & <b>co</b>")
    manager = bot.user(admin_id, "Manager")
    segments = await bot.command(manager, "segments")
    assert segments.text is not None and "• R&D <Dev> & <b>co</b> – 2 users" in segments.text
    campaigns = await bot.command(manager, "campaigns")
    assert campaigns.text is not None and "“Launch” → R&D <Dev> & <b>co</b>: done" in campaigns.text
    bot.services.broadcasts = _UnusedBroadcasts()
    pick = await bot.command(manager, "broadcast")
    assert pick.reply_markup is not None
    [_, (button,), _] = pick.reply_markup["inline_keyboard"]
    assert button["text"] == "R&D <Dev> & <b>co</b> (2)"
    since = bot.mark()
    await bot.press(manager, pick, button["callback_data"])
    chosen = await bot.reply_to(admin_id, since)
    assert chosen.text is not None and chosen.text.startswith("Broadcast to segment “R&D <Dev> & <b>co</b>”.")
    for reply in (segments, campaigns, pick, chosen):
        assert "parse_mode" not in reply.params and not reply.message.get("entities")


class _UnusedBroadcasts:
    """A scheduler stand-in for a draft that is never confirmed."""

    async def schedule(self, *, segment: str | None, text: str, at: datetime, created_by: int) -> int:
        raise AssertionError("nothing is confirmed in this test")


async def test_reports_before_any_analytics_run(bot: BotHarness, admin_id: int) -> None:
    manager = bot.user(admin_id, "Manager")
    assert (
        await bot.command(manager, "segments")
    ).text == "No segments yet: run `rapport analytics run` to segment the users."
    insights = await bot.command(manager, "insights")
    assert insights.text is not None and insights.text.startswith("No insights yet")


async def test_manager_commands_in_a_group_are_redirected(bot: BotHarness, admin_id: int) -> None:
    bot.api.add_chat(-100_777, "supergroup", title="G")
    manager = bot.user(admin_id, "Manager")
    reply = await bot.command(manager, "stats", chat=-100_777)
    assert reply.text == t("private_only", "en")
