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
from scheduler.best_time import (
    BEST_TIME,
    SEND_AT_BEST,
    SEND_AT_SPLIT,
    SendTimeConfig,
    best_due_at,
    read_send_profiles,
    send_time_arm,
)
from scheduler.errors import BroadcastError
from scheduler.markup import HTML, MessageFormat, check_buttons, check_html, format_attributes
from store.campaign_reports import Recipient, reachable_recipients
from store.campaigns import NewDelivery, create_campaign
from store.conversions import DEFAULT_GOAL_WINDOW, UnknownGoalError, parse_goal
from store.db import read_snapshot
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


SEND_AT_MODES = (SEND_AT_BEST, SEND_AT_SPLIT)


def best_time_rows(
    engine: Engine,
    recipients: list[Recipient],
    body: str,
    *,
    at: datetime,
    mode: str,
    key: str,
    config: SendTimeConfig,
) -> list[NewDelivery]:
    """One row per recipient, due at their best time within `config.within` of `at`.

    With `mode` = `best_time_vs_fixed`, half the recipients (by stable hash of `key` and their
    id) are the `fixed` arm, due at `at`, and the rest the `best_time` arm; each row's
    `variant` says which, so the campaign report compares the two.
    """
    zones = {r.user_id: r.time_zone for r in recipients}
    with read_snapshot(engine) as session:
        profiles = read_send_profiles(session, list(zones), zones, now=at, config=config)
    rows = []
    for r in recipients:
        arm = send_time_arm(key, r.user_id) if mode == SEND_AT_SPLIT else BEST_TIME
        due = at if arm != BEST_TIME else best_due_at(profiles.get(r.user_id), at, r.time_zone, config)
        variant = arm if mode == SEND_AT_SPLIT else None
        rows.append(NewDelivery(user_id=r.user_id, chat_id=r.user_id, text=body, due_at=due, variant=variant))
    return rows


def check_body(text: str, fmt: MessageFormat) -> str:
    """The text as it will be sent: stripped, and for HTML parsed as Telegram's HTML subset.

    Raises:
        BroadcastError: empty, over-long, or markup Telegram would refuse.
    """
    if fmt.parse_mode == HTML:
        return check_html(text.strip()).text
    return check_text(text)


def create_broadcast(
    engine: Engine,
    *,
    segment: str,
    text: str,
    at: datetime,
    now: datetime,
    created_by: int | None = None,
    send_at: str | None = None,
    send_time: SendTimeConfig | None = None,
    fmt: MessageFormat | None = None,
    goal: str | None = None,
    goal_window: timedelta = DEFAULT_GOAL_WINDOW,
) -> int:
    """Create a broadcast campaign and one pending delivery per reachable member; its id.

    `goal` (`return`, `product:<event>` or a bare product event name) is kept in the campaign's
    attributes with its window; the campaign report then counts conversions to it.

    Broadcasts are a manager's explicit message: no holdout, cap or quiet hours apply, but
    opted-out and blocked users are never targeted (and are re-checked right before sending).
    `fmt` (HTML, URL buttons) is checked and kept in the campaign's attributes, which the
    delivery engine reads for every message it sends.

    Args:
        send_at: None: every row due at `at`. `best_time`: each at the user's best hour within
            24 h of `at`, outside quiet hours. `best_time_vs_fixed`: half at `at`, half at
            their best time, compared by the campaign report.
        send_time: Quiet hours and window of best-time sends (default: `SendTimeConfig()`).

    Raises:
        BroadcastError: bad segment, empty or over-long text, bad markup or buttons, a naive time,
            an unknown `send_at`, or an unknown goal or a window that is not positive.
    """
    if at.tzinfo is None:
        raise BroadcastError(f"the send time {at!r} has no time zone")
    if send_at is not None and send_at not in SEND_AT_MODES:
        raise BroadcastError(f"send_at must be one of {', '.join(SEND_AT_MODES)}, got {send_at!r}")
    goal_attrs = goal_attributes(goal, goal_window)
    checked = _checked_format(fmt)
    body = check_body(text, checked)
    recipients = segment_recipients(engine, segment, now=now)
    attributes = format_attributes(checked) | goal_attrs
    if send_at is None:
        rows = [NewDelivery(user_id=r.user_id, chat_id=r.user_id, text=body, due_at=at) for r in recipients]
    else:
        key = f"{segment}@{at.isoformat()}#{now.isoformat()}"
        attributes |= {"send_at": send_at, "send_time_key": key}
        rows = best_time_rows(
            engine, recipients, body, at=at, mode=send_at, key=key, config=send_time or SendTimeConfig()
        )
    campaign_id = create_campaign(
        engine,
        kind=BROADCAST,
        name=f"broadcast to {segment}",
        segment=segment,
        text=body,
        scheduled_at=at,
        now=now,
        created_by=created_by,
        attributes=attributes,
        deliveries=rows,
    )
    logger.info("broadcast %d to %r: %d recipients at %s", campaign_id, segment, len(rows), at.isoformat())
    return campaign_id


def create_test_send(
    engine: Engine, *, chat_id: int, text: str, now: datetime, fmt: MessageFormat | None = None
) -> int:
    """Queue a composed message once to a manager's own chat, now; the test campaign's id.

    It takes the broadcasts' path (a campaign row and one delivery that the running scheduler
    sends through its `Sender`, formatted the same way), but as a `test` campaign: not listed
    among the campaigns, and its send is not logged as a push the user received.

    Raises:
        BroadcastError: the same checks as `create_broadcast`, or a chat id that cannot be a
            private chat (a terminal login has no Telegram chat).
    """
    if chat_id <= 0:
        raise BroadcastError(f"manager {chat_id} has no private chat with the bot to send a test to")
    checked = _checked_format(fmt)
    body = check_body(text, checked)
    return create_campaign(
        engine,
        kind=CampaignKind.TEST,
        name=f"test to {chat_id}",
        segment=f"test:{chat_id}",
        text=body,
        scheduled_at=now,
        now=now,
        created_by=chat_id,
        attributes=format_attributes(checked),
        deliveries=[NewDelivery(user_id=chat_id, chat_id=chat_id, text=body, due_at=now)],
    )


def _checked_format(fmt: MessageFormat | None) -> MessageFormat:
    if fmt is None:
        return MessageFormat()
    if fmt.parse_mode not in (None, HTML):
        raise BroadcastError(f"parse mode {fmt.parse_mode!r}: only HTML or plain text")
    return MessageFormat(parse_mode=fmt.parse_mode, buttons=check_buttons(fmt.buttons))


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
