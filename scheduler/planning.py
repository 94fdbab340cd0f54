"""Turning a segment into deliveries: built-in segments, broadcasts and their validation.

Built-in segments beside the learned ones: `all` (every reachable user) and `inactive:N`
(reachable users without activity for N days). Learned segments come from the current
analytics run, by name or id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from analytics import AnalyticsError, segment_members
from scheduler.errors import BroadcastError
from store.campaign_reports import Recipient, reachable_recipients
from store.campaigns import NewDelivery, create_campaign
from store.conversions import DEFAULT_GOAL_WINDOW, UnknownGoalError, parse_goal
from store.vocabulary import CampaignKind

logger = logging.getLogger(__name__)

ALL = "all"
INACTIVE_PREFIX = "inactive:"
MAX_TEXT_CHARS = 4096  # Telegram's limit for one text message
BROADCAST = CampaignKind.BROADCAST


def parse_inactive(segment: str) -> int | None:
    """N for `inactive:N` (N >= 1), None for other names."""
    if not segment.startswith(INACTIVE_PREFIX):
        return None
    days = segment[len(INACTIVE_PREFIX) :].strip()
    if not days.isdigit() or int(days) < 1:
        raise BroadcastError(f"segment {segment!r}: expected inactive:N with N a whole number of days >= 1")
    return int(days)


def segment_recipients(engine: Engine, segment: str, *, now: datetime) -> list[Recipient]:
    """Reachable users (not opted out, not blocked) of a built-in or learned segment.

    Raises:
        BroadcastError: for an unknown segment or a malformed `inactive:N`.
    """
    name = segment.strip()
    if not name:
        raise BroadcastError("the segment name is empty")
    if name.lower() == ALL:
        return reachable_recipients(engine)
    days = parse_inactive(name)
    if days is not None:
        return reachable_recipients(engine, inactive_since=now - timedelta(days=days))
    try:
        members = segment_members(engine, name)
    except AnalyticsError as exc:
        raise BroadcastError(f"segment {name!r}: {exc}") from exc
    return reachable_recipients(engine, members)


def check_text(text: str) -> str:
    """The broadcast text, stripped; an error if empty or too long for one Telegram message."""
    stripped = text.strip()
    if not stripped:
        raise BroadcastError("the broadcast text is empty")
    if len(stripped) > MAX_TEXT_CHARS:
        raise BroadcastError(f"the text has {len(stripped)} characters; Telegram allows {MAX_TEXT_CHARS}")
    return stripped


def create_broadcast(
    engine: Engine,
    *,
    segment: str,
    text: str,
    at: datetime,
    now: datetime,
    created_by: int | None = None,
    goal: str | None = None,
    goal_window: timedelta = DEFAULT_GOAL_WINDOW,
) -> int:
    """Create a broadcast campaign and one pending delivery per reachable member; its id.

    `goal` (`return`, `product:<event>` or a bare product event name) is kept in the campaign's
    attributes with its window; the campaign report then counts conversions to it.

    Broadcasts are a manager's explicit message: no holdout, cap or quiet hours apply, but
    opted-out and blocked users are never targeted (and are re-checked right before sending).

    Raises:
        BroadcastError: bad segment, empty or over-long text, a naive time, or an unknown goal
            or a window that is not positive.
    """
    if at.tzinfo is None:
        raise BroadcastError(f"the send time {at!r} has no time zone")
    attributes = goal_attributes(goal, goal_window)
    body = check_text(text)
    recipients = segment_recipients(engine, segment, now=now)
    rows = [NewDelivery(user_id=r.user_id, chat_id=r.user_id, text=body, due_at=at) for r in recipients]
    campaign_id = create_campaign(
        engine,
        kind=BROADCAST,
        name=f"broadcast to {segment}",
        segment=segment,
        text=body,
        scheduled_at=at,
        now=now,
        created_by=created_by,
        deliveries=rows,
        attributes=attributes,
    )
    logger.info("broadcast %d to %r: %d recipients at %s", campaign_id, segment, len(rows), at.isoformat())
    return campaign_id


def goal_attributes(goal: str | None, window: timedelta = DEFAULT_GOAL_WINDOW) -> dict[str, object]:
    """A campaign's goal attributes (`goal`, `goal_window_hours`), empty without a goal.

    Raises:
        BroadcastError: an unknown goal string or a window that is not positive.
    """
    if goal is None:
        return {}
    try:
        canonical = parse_goal(goal)
    except UnknownGoalError as exc:
        raise BroadcastError(str(exc)) from exc
    if window <= timedelta(0):
        raise BroadcastError(f"the goal window must be positive, got {window}")
    return {"goal": canonical, "goal_window_hours": window.total_seconds() / 3600.0}
