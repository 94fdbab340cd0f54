"""Who may be pushed (reachable, inactive, capped) and what campaigns achieved (reports, returns).

"Returned" means any event of the user's own in Telegram (not a push receipt, not a product
event: those are conversions, `store.conversions`) within `window` after the push, or, for
holdout rows, after the time they would have been pushed: the same definition for both
groups, so their return rates compare fairly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from store.campaigns import AMBIGUOUS, FAILED, FINAL_STATUSES, PENDING, SENDING, SENT, SKIPPED
from store.db import unit_of_work
from store.models import Campaign, Delivery, Event, User

PUSH_KINDS = ("push_received", "push_response")
NOT_A_RETURN = (*PUSH_KINDS, "product")
"""Events that are not the user coming back to the bot: push receipts and the product's own events."""
RESPONSE_WINDOW = timedelta(hours=48)
_CHUNK = 5000


@dataclass(frozen=True)
class Recipient:
    """A reachable user and what planning needs about them."""

    user_id: int
    language: str | None
    time_zone: str | None
    last_seen: datetime


@dataclass(frozen=True)
class CampaignCounts:
    """How a campaign's deliveries stand, with the returns measured so far."""

    campaign_id: int
    targeted: int
    by_status: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    returned: int = 0  # sent users active within the window after their push
    holdout: int = 0  # holdout rows whose window has passed or who already returned
    holdout_returned: int = 0
    sent_last_minute: int = 0

    @property
    def done(self) -> int:
        """Rows in a final state (ambiguous ones included: they are never resent)."""
        return sum(self.by_status.get(s, 0) for s in FINAL_STATUSES)

    @property
    def ambiguous(self) -> int:
        """Rows whose request may have reached the user but whose answer was lost."""
        return self.by_status.get(AMBIGUOUS, 0)

    @property
    def remaining(self) -> int:
        """Rows still to go (pending or in flight)."""
        return self.by_status.get(PENDING, 0) + self.by_status.get(SENDING, 0)


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    values = sorted(ids)
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _recipients(session: Session, query: object) -> list[Recipient]:
    return [Recipient(uid, lang, tz, seen) for uid, lang, tz, seen in session.execute(query)]  # type: ignore[call-overload]


def reachable_recipients(
    engine: Engine, user_ids: Collection[int] | None = None, *, inactive_since: datetime | None = None
) -> list[Recipient]:
    """Users not opted out and not blocked: all, or among `user_ids`; optionally only inactive ones.

    Args:
        inactive_since: keep only users last seen before this time.
    """
    base = select(User.id, User.language, User.time_zone, User.last_seen).where(
        User.opted_out.is_(False), User.blocked.is_(False)
    )
    if inactive_since is not None:
        base = base.where(User.last_seen < inactive_since)
    with unit_of_work(engine) as session:
        if user_ids is None:
            return _recipients(session, base.order_by(User.id))
        found: list[Recipient] = []
        for chunk in _chunks(user_ids):
            found.extend(_recipients(session, base.where(User.id.in_(chunk)).order_by(User.id)))
        return found


def recently_pushed(
    engine: Engine, user_ids: Collection[int], *, since: datetime, kinds: Collection[str]
) -> set[int]:
    """Users with an automated push (campaign kind in `kinds`) sent since `since`, or still pending.

    Pending and in-flight rows count, so two automated campaigns planned a day apart cannot both
    reach one user inside the cap.
    """
    pushed: set[int] = set()
    with unit_of_work(engine) as session:
        for chunk in _chunks(user_ids):
            query = (
                select(Delivery.user_id)
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(
                    Campaign.kind.in_(list(kinds)),
                    Delivery.user_id.in_(chunk),
                    or_(
                        Delivery.status.in_([PENDING, SENDING]),
                        (Delivery.status == SENT) & (Delivery.sent_at >= since),
                        # It may have arrived: for the frequency cap, count it as if it did.
                        (Delivery.status == AMBIGUOUS) & (Delivery.due_at >= since),
                    ),
                )
                .distinct()
            )
            pushed.update(session.scalars(query))
    return pushed


def first_returns(
    session: Session, rows: Sequence[tuple[int, int, datetime]], window: timedelta
) -> dict[int, datetime | None]:
    """For each (key, user_id, reference): the user's first own event in (reference, reference + window].

    Computed in Python over one range query per chunk of users, because interval arithmetic in
    SQL differs between SQLite (text timestamps) and PostgreSQL.
    """
    found: dict[int, datetime | None] = {}
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        earliest = min(ref for _, _, ref in chunk)
        latest = max(ref for _, _, ref in chunk) + window
        times: dict[int, list[datetime]] = {}
        for user_id, ts in session.execute(
            select(Event.user_id, Event.ts)
            .where(
                Event.user_id.in_(sorted({user for _, user, _ in chunk})),
                Event.kind.not_in(NOT_A_RETURN),
                Event.ts > earliest,
                Event.ts <= latest,
            )
            .order_by(Event.user_id, Event.ts)
        ):
            times.setdefault(int(user_id or 0), []).append(ts)
        for key, user_id, ref in chunk:
            stamps = times.get(user_id, [])
            position = bisect_right(stamps, ref)
            hit = stamps[position] if position < len(stamps) else None
            found[key] = hit if hit is not None and hit <= ref + window else None
    return found


def campaign_counts(
    engine: Engine, campaign_id: int, *, now: datetime, window: timedelta = RESPONSE_WINDOW
) -> CampaignCounts:
    """Targeted, by status, skipped/failed by reason, returns of pushed and holdout users."""
    with unit_of_work(engine) as session:
        by_status: dict[str, int] = {}
        skipped: dict[str, int] = {}
        failed: dict[str, int] = {}
        for status, reason, n in session.execute(
            select(Delivery.status, Delivery.reason, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status, Delivery.reason)
        ):
            if status == FAILED and reason == AMBIGUOUS:  # written so before `ambiguous` was a status
                status = AMBIGUOUS
            by_status[status] = by_status.get(status, 0) + int(n)
            if status == SKIPPED:
                skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + int(n)
            elif status == FAILED:
                failed[reason or "error"] = failed.get(reason or "error", 0) + int(n)
        sent = [
            (i, u, t)
            for i, u, t in session.execute(
                select(Delivery.id, Delivery.user_id, Delivery.sent_at).where(
                    Delivery.campaign_id == campaign_id, Delivery.status == SENT
                )
            )
            if t is not None
        ]
        returned = sum(1 for hit in first_returns(session, sent, window).values() if hit is not None)
        held: list[tuple[int, int, datetime]] = [
            (key, user_id, due)
            for key, user_id, due in session.execute(
                select(Delivery.id, Delivery.user_id, Delivery.due_at).where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.status == SKIPPED,
                    Delivery.reason == "holdout",
                )
            )
        ]
        held_hits = first_returns(session, held, window)
        # Both groups are counted alike: every row, with the returns seen so far in its window.
        # (Counting a holdout row only once it returned or its window closed, while every sent
        # row counts at once, would show holdout users returning at 100% early on.)
        holdout = [key for key, _, _ in held]
        recent = sum(1 for _, _, t in sent if t > now - timedelta(minutes=1))
    return CampaignCounts(
        campaign_id=campaign_id,
        targeted=sum(by_status.values()),
        by_status=by_status,
        skipped_by_reason=skipped,
        failed_by_reason=failed,
        returned=returned,
        holdout=len(holdout),
        holdout_returned=sum(1 for key in holdout if held_hits[key] is not None),
        sent_last_minute=recent,
    )


def measure_responses(engine: Engine, *, now: datetime, window: timedelta = RESPONSE_WINDOW) -> int:
    """Record, once the window has passed, whether each pushed and holdout user returned.

    Sent rows that returned also get a `push_response` event (campaign_id, followup_id), so the
    follow-up model learns which messages work. Returns how many rows were measured.
    """
    cutoff = now - window
    measured = 0
    with unit_of_work(engine) as session:
        for status, reference in ((SENT, Delivery.sent_at), (SKIPPED, Delivery.due_at)):
            condition = [Delivery.status == status, Delivery.responded.is_(None), reference <= cutoff]
            if status == SKIPPED:
                condition.append(Delivery.reason == "holdout")
            rows = session.execute(
                select(
                    Delivery.id,
                    Delivery.user_id,
                    Delivery.chat_id,
                    Delivery.campaign_id,
                    Delivery.followup_id,
                    reference,
                ).where(*condition)
            ).all()
            hits = first_returns(session, [(r[0], r[1], r[5]) for r in rows if r[5] is not None], window)
            for value in (True, False):
                ids = [key for key, hit in hits.items() if (hit is not None) is value]
                for start in range(0, len(ids), _CHUNK):
                    session.execute(
                        update(Delivery)
                        .where(Delivery.id.in_(ids[start : start + _CHUNK]))
                        .values(responded=value)
                    )
            if status == SENT:
                events = [
                    {
                        "user_id": r[1],
                        "chat_id": r[2],
                        "ts": hits[r[0]],
                        "kind": "push_response",
                        "attributes": {"campaign_id": r[3], "followup_id": r[4], "delivery_id": r[0]},
                    }
                    for r in rows
                    if hits[r[0]] is not None
                ]
                if events:
                    session.execute(insert(Event), events)
            measured += len(rows)
    return measured


def pushed_vs_holdout(
    engine: Engine, *, kind: str, since: datetime | None = None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Measured returns of automated pushes: ((pushed, returned), (holdout, returned))."""
    with unit_of_work(engine) as session:
        query = (
            select(Delivery.status, func.count(), func.sum(case((Delivery.responded.is_(True), 1), else_=0)))
            .join(Campaign, Campaign.id == Delivery.campaign_id)
            .where(
                Campaign.kind == kind,
                Delivery.responded.is_not(None),
                or_(Delivery.status == SENT, (Delivery.status == SKIPPED) & (Delivery.reason == "holdout")),
            )
            .group_by(Delivery.status)
        )
        if since is not None:
            query = query.where(Campaign.created_at >= since)
        result = {status: (int(n), int(r or 0)) for status, n, r in session.execute(query)}
    return result.get(SENT, (0, 0)), result.get(SKIPPED, (0, 0))
