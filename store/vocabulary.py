"""The domain's one vocabulary: event kinds, campaign kinds and states, delivery states, send verdicts.

Every package names these through the enums here, never through string literals, so a typo is a
NameError at import time rather than a silently empty query. They are `StrEnum`s: the value is
what the database stores, and a member compares equal to its value, so rows written before the
enums existed read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "MESSAGE_KINDS",
    "PUSH_KINDS",
    "CampaignKind",
    "CampaignStatus",
    "DeliveryStatus",
    "EventKind",
    "ExperimentKind",
    "ExperimentStatus",
    "SendVerdict",
]


class EventKind(StrEnum):
    """What one logged interaction was (`events.kind`)."""

    MESSAGE = "message"
    """A message to the bot or in its community, understood by the NLU when it is text."""
    FALLBACK = "fallback"
    """A message the NLU could not place with enough confidence."""
    COMMAND = "command"
    CALLBACK = "callback"
    """A press of one of the bot's inline buttons."""
    REACTION = "reaction"
    POLL_ANSWER = "poll_answer"
    FEEDBACK = "feedback"
    EDITED = "edited"
    JOIN = "join"
    LEAVE = "leave"
    MEMBER = "member"
    """A membership change that is neither a join nor a leave (e.g. promoted to admin)."""
    PUSH_RECEIVED = "push_received"
    PUSH_RESPONSE = "push_response"
    PUSH_CLICK = "push_click"
    """A press of a button on a push (a broadcast or follow-up variant): the user's own action,
    with `experiment_id`, `variant`, `delivery_id` and `button` in its attributes."""
    PRODUCT = "product"
    """An event from the start-up's own product (Segment `track`); the name is `attributes.event`."""
    ACCOUNT_LINK = "account_link"
    """A `/start <payload>` deep link redeemed or refused (`attributes.outcome`)."""


MESSAGE_KINDS: tuple[EventKind, ...] = (EventKind.MESSAGE, EventKind.FALLBACK)
"""Kinds that carry an NLU intent."""
PUSH_KINDS: tuple[EventKind, ...] = (EventKind.PUSH_RECEIVED, EventKind.PUSH_RESPONSE)
"""Kinds the scheduler writes about its own pushes (not the user's own activity)."""


class CampaignKind(StrEnum):
    """Who made a campaign (`campaigns.kind`)."""

    BROADCAST = "broadcast"
    """A manager's message to a segment."""
    REENGAGEMENT = "reengagement"
    """The scheduler's automated follow-ups to users who went quiet."""
    TEST = "test"
    """A composed broadcast sent once to the manager's own chat ("send a test to me"): sent by
    the same scheduler, never listed or counted among the campaigns to users."""


class CampaignStatus(StrEnum):
    """Where a campaign is in its life (`campaigns.status`)."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class ExperimentKind(StrEnum):
    """What an experiment varies (`experiments.kind`)."""

    BROADCAST = "broadcast"
    """Variants of a manager's broadcast, assigned by a stable hash of (experiment, user)."""
    FOLLOWUP = "followup"
    """Follow-up messages chosen by the re-engagement job (a bandit: Thompson exploration)."""


class ExperimentStatus(StrEnum):
    """Where an experiment is in its life (`experiments.status`)."""

    RUNNING = "running"
    """Every row is planned; conversions are being measured."""
    TESTING = "testing"
    """Only the test share is planned; the winner is picked at `decide_at`."""
    DECIDED = "decided"
    """The winner was picked and its rows for the rest of the audience planned."""
    CANCELLED = "cancelled"
    """The campaign was cancelled before the winner was picked: no winner rows."""


class DeliveryStatus(StrEnum):
    """The send state of one message to one user (`deliveries.status`)."""

    PENDING = "pending"
    SENDING = "sending"
    """Marked just before the call: a row left here by a crash is ambiguous, never resent."""
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    AMBIGUOUS = "ambiguous"
    """The request may have reached Telegram but no answer came back (a crash, a read error)."""


class SendVerdict(StrEnum):
    """What `begin_send` decided about one claimed delivery, just before the call."""

    SEND = "send"
    """Send it now: the row is marked `sending`."""
    OPTED_OUT = "opted_out"
    """The user opted out since the row was planned; the row is finalised as skipped."""
    BLOCKED = "blocked"
    """The user blocked the bot; the row is finalised as blocked."""
    NOT_RUNNING = "not_running"
    """The campaign is paused or cancelled; the row stays pending."""
    GONE = "gone"
    """The row is no longer pending (another process took it)."""
    LEASE_LOST = "lease_lost"
    """This process no longer holds the scheduler lease (fencing): it must not send."""
