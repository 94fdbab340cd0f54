"""Campaign conversion goals: how many pushed and holdout users reached a goal within a window.

A goal is a string, the same for campaigns (`campaigns.attributes.goal`) and experiments
(`experiments.goal`): `return` (any own event in Telegram, the returns campaigns have always reported) or
`product:<event>` (a product event of that name, e.g. `product:upgrade`). Pushed users count
from their send time, holdout users from the time they would have been pushed, over the same
window, so the two rates compare fairly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from store.campaign_reports import NOT_A_RETURN
from store.campaigns import SENT, SKIPPED
from store.models import Campaign, Delivery, Event
from store.product import MAX_EVENT_NAME_LENGTH
from store.vocabulary import EventKind

logger = logging.getLogger(__name__)

GOAL_RETURN = "return"
PRODUCT_GOAL_PREFIX = "product:"
DEFAULT_GOAL_WINDOW = timedelta(hours=48)
_CHUNK = 5000


class UnknownGoalError(ValueError):
    """A goal string that is neither `return` nor `product:<event>` (or names no event)."""


def parse_goal(text: str) -> str:
    """The canonical goal string: `return`, or `product:<event>` (a bare event name gets the prefix).

    `upgrade` and `product:upgrade` are the same goal, as `rapport broadcast --goal upgrade` reads.

    Raises:
        UnknownGoalError: empty, a product goal without a name, a name over 128 characters or
            with control characters, or another `kind:` prefix (`click:x`).
    """
    value = text.strip()
    if not value:
        raise UnknownGoalError("a goal cannot be empty: give `return` or a product event name (`upgrade`)")
    if value == GOAL_RETURN:
        return GOAL_RETURN
    prefix, colon, rest = value.partition(":")
    if colon and prefix != PRODUCT_GOAL_PREFIX.rstrip(":"):
        raise UnknownGoalError(
            f"goal {value!r}: only `return` and product events (`product:<event>` or a bare name) are goals"
        )
    name = (rest if colon else value).strip()
    if not name:
        raise UnknownGoalError(f"goal {value!r} names no product event (write product:<event name>)")
    if len(name) > MAX_EVENT_NAME_LENGTH or any(ord(c) < 32 for c in name):
        raise UnknownGoalError(
            f"goal {value[:40]!r}: a product event name has 1-{MAX_EVENT_NAME_LENGTH} printable characters"
        )
    return f"{PRODUCT_GOAL_PREFIX}{name}"


def goal_event_name(goal: str) -> str | None:
    """The product event a goal names, None for `return`."""
    return goal.removeprefix(PRODUCT_GOAL_PREFIX) if goal.startswith(PRODUCT_GOAL_PREFIX) else None


@dataclass(frozen=True)
class GoalConversions:
    """Pushed (sent) and holdout users of one campaign, and how many of each reached the goal."""

    goal: str
    window: timedelta
    sent: int
    sent_converted: int
    holdout: int
    holdout_converted: int


def _condition(goal: str) -> ColumnElement[bool]:
    name = goal_event_name(goal)
    if name is None:
        return Event.kind.not_in(NOT_A_RETURN)
    return and_(Event.kind == EventKind.PRODUCT, Event.attributes["event"].as_string() == name)


def _converted(
    session: Session, rows: Sequence[tuple[int, datetime]], window: timedelta, condition: ColumnElement[bool]
) -> int:
    """How many (user, reference) rows have a goal event in (reference, reference + window]."""
    hits = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        earliest = min(ref for _, ref in chunk)
        latest = max(ref for _, ref in chunk) + window
        times: dict[int, list[datetime]] = {}
        for user_id, ts in session.execute(
            select(Event.user_id, Event.ts)
            .where(
                Event.user_id.in_(sorted({user for user, _ in chunk})),
                condition,
                Event.ts > earliest,
                Event.ts <= latest,
            )
            .order_by(Event.user_id, Event.ts)
        ):
            times.setdefault(int(user_id or 0), []).append(ts)
        for user_id, ref in chunk:
            if any(ref < ts <= ref + window for ts in times.get(user_id, ())):
                hits += 1
    return hits


def goal_conversions(
    session: Session, campaign_id: int, goal: str, window: timedelta = DEFAULT_GOAL_WINDOW
) -> GoalConversions:
    """Sent and holdout rows of a campaign and how many reached `goal` within `window` of their time.

    Raises:
        UnknownGoalError: `goal` is not a goal string (see `parse_goal`).
    """
    canonical = parse_goal(goal)
    if window <= timedelta(0):
        raise UnknownGoalError(f"the goal window must be positive, got {window}")
    sent = [
        (int(user), at)
        for user, at in session.execute(
            select(Delivery.user_id, Delivery.sent_at).where(
                Delivery.campaign_id == campaign_id, Delivery.status == SENT
            )
        )
        if at is not None
    ]
    held = [
        (int(user), at)
        for user, at in session.execute(
            select(Delivery.user_id, Delivery.due_at).where(
                Delivery.campaign_id == campaign_id, Delivery.status == SKIPPED, Delivery.reason == "holdout"
            )
        )
    ]
    condition = _condition(canonical)
    return GoalConversions(
        goal=canonical,
        window=window,
        sent=len(sent),
        sent_converted=_converted(session, sent, window, condition),
        holdout=len(held),
        holdout_converted=_converted(session, held, window, condition),
    )


def known_product_events(session: Session, *, limit: int = 20) -> list[str]:
    """Product event names in the log, most frequent first: what a goal can name today."""
    name = Event.attributes["event"].as_string()
    query = (
        select(name)
        .where(Event.kind == EventKind.PRODUCT, name.is_not(None))
        .group_by(name)
        .order_by(func.count().desc(), name)
        .limit(limit)
    )
    return [str(n) for n in session.scalars(query)]


def set_campaign_goal(
    session: Session, campaign_id: int, goal: str, window: timedelta = DEFAULT_GOAL_WINDOW
) -> None:
    """Give an existing campaign a goal (e.g. a re-engagement run the scheduler made), kept in its attributes.

    Raises:
        UnknownGoalError: not a goal string, a window that is not positive, or no such campaign.
    """
    canonical = parse_goal(goal)
    if window <= timedelta(0):
        raise UnknownGoalError(f"the goal window must be positive, got {window}")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise UnknownGoalError(f"no campaign #{campaign_id} to give a goal")
    hours = window.total_seconds() / 3600.0
    campaign.attributes = {**(campaign.attributes or {}), "goal": canonical, "goal_window_hours": hours}
