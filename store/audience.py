"""Who an automated push may reach, as set-based queries inside the caller's session.

The re-engagement planner reads everything about its candidates in one snapshot. Its candidate
set is a SQL subquery (`inactive_users`), so the follow-up queries (pushes inside the cap,
histories, cooldowns) join against it instead of sending one IN-list per chunk of ids: the
number of statements a planning run issues does not grow with the number of users.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from store.campaign_reports import Recipient
from store.models import Campaign, Delivery, User
from store.vocabulary import CampaignKind, DeliveryStatus

__all__ = ["capped_users", "inactive_recipients", "inactive_users", "uncapped"]


def _inactive(inactive_since: datetime) -> tuple[ColumnElement[bool], ...]:
    return (User.opted_out.is_(False), User.blocked.is_(False), User.last_seen < inactive_since)


def inactive_users(*, inactive_since: datetime) -> Select[int]:
    """The ids of users not opted out, not blocked and last seen before `inactive_since` (a subquery).

    It never correlates with an enclosing query, so it keeps its meaning inside a query over users.
    """
    return select(User.id).where(*_inactive(inactive_since)).correlate(None)


def inactive_recipients(session: Session, *, inactive_since: datetime) -> list[Recipient]:
    """The reachable users last seen before `inactive_since`, by id, with what planning needs."""
    query = (
        select(User.id, User.language, User.time_zone, User.last_seen)
        .where(*_inactive(inactive_since))
        .order_by(User.id)
    )
    return [Recipient(int(uid), lang, tz, seen) for uid, lang, tz, seen in session.execute(query)]


def _pushed(users: Select[int] | None, *, since: datetime, kinds: Collection[CampaignKind]) -> Select[int]:
    """Users (of `users`, if given) with an automated push of `kinds` sent since `since`, or pending.

    Pending and in-flight rows count, so two automated campaigns planned a day apart cannot both
    reach one user inside the cap.
    """
    query = (
        select(Delivery.user_id)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Campaign.kind.in_([str(kind) for kind in kinds]),
            or_(
                Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
                (Delivery.status == DeliveryStatus.SENT) & (Delivery.sent_at >= since),
            ),
        )
        .distinct()
        .correlate(None)
    )
    return query if users is None else query.where(Delivery.user_id.in_(users))


def capped_users(
    session: Session, users: Select[int], *, since: datetime, kinds: Collection[CampaignKind]
) -> frozenset[int]:
    """The users of `users` inside the frequency cap: pushed (kinds) since `since`, or pending."""
    return frozenset(int(user) for user in session.scalars(_pushed(users, since=since, kinds=kinds)))


def uncapped(users: Select[int], *, since: datetime, kinds: Collection[CampaignKind]) -> Select[int]:
    """`users` without those inside the cap: the ones whose history and cooldowns matter."""
    return users.where(User.id.not_in(_pushed(None, since=since, kinds=kinds)))
