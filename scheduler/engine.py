"""The delivery engine: claims due deliveries and sends them, several in flight, through a `Sender`.

Invariants:
- a row is `sending` only between `begin_send` and the recorded outcome; each lane sends one
  message at a time, so a crash (kill -9) leaves at most `lanes` rows ambiguous, and every one
  of them is reported (`recover_sending`); a clean stop lets the sends in flight finish and
  records them, and a send cut off by a timeout is marked ambiguous before the lease goes;
- the engine does not pace: the `Sender` owns the global rate, the 429 pause and the per-chat
  spacing (see `scheduler.sender.Sender`); the engine takes a sender slot *before* marking a
  row `sending`, and a 429 puts the row back without using up a retry;
- 403 blocks the user, 400 fails the row, 5xx and errors before the request left retry with
  exponential back-off up to `max_retries`; an error after the request was written marks the
  row ambiguous (never resent); automated pushes that reach quiet hours are deferred, not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from scheduler.clock import Clock, SystemClock
from scheduler.errors import LeaseLostError
from scheduler.markup import message_format
from scheduler.policy import QuietHours
from scheduler.sender import Button, OutgoingMessage, Sender, SendResult, SendStatus
from store import Settings
from store.campaigns import finish_campaigns, next_due_at, start_due_campaigns
from store.deliveries import (
    DeliveryTask,
    begin_send,
    claim_batch,
    mark_ambiguous,
    mark_final,
    mark_sent,
    requeue,
)
from store.vocabulary import CampaignKind, DeliveryStatus, SendVerdict

logger = logging.getLogger(__name__)

AUTOMATED_KINDS = (CampaignKind.REENGAGEMENT,)
STALE_AFTER = timedelta(hours=12)
DEFAULT_LANES = 16
"""Sends in flight: 30 messages/s at round trips up to ~0.5 s (rate x round trip, plus the
database time of each send); also the most rows a crash can leave ambiguous."""


def outgoing_message(task: DeliveryTask) -> OutgoingMessage:
    """The message of a claimed row: its variant's buttons (callback buttons report their press), and
    the campaign's format (parse mode, URL button rows)."""
    buttons = tuple(
        Button(b.text, url=b.url)
        if b.url is not None
        else Button(b.text, push_click=f"{task.id}.{task.experiment_id or 0}.{task.variant or ''}.{index}")
        for index, b in enumerate(task.buttons)
    )
    fmt = message_format(task.campaign_attributes)
    return OutgoingMessage(
        chat_id=task.chat_id,
        text=task.text,
        buttons=buttons,
        parse_mode=fmt.parse_mode,
        url_buttons=fmt.buttons,
    )


@dataclass(frozen=True)
class EngineConfig:
    """How many sends the engine keeps in flight, and how it retries.

    Args:
        rate_per_s: The bot's allowed messages/s (the sender paces; the engine uses it to
            estimate progress and to check that `lanes` can reach it).
        rate_safety: Share of `rate_per_s` the sender aims at (for reports' expected end).
        max_retries: Retries after 5xx or errors before sending, before a row fails.
        backoff_base_s: First retry delay; doubles with each attempt.
        backoff_max_s: Longest retry delay.
        batch_size: Rows claimed per database round trip.
        quiet_hours: Quiet hours for automated pushes.
        lanes: Sends in flight at once. Each lane has its own sender name and at most one
            `sending` row, so a crash leaves at most `lanes` rows ambiguous. To reach
            `rate_per_s` the engine needs about `rate_per_s x round trip` lanes (30/s at
            300 ms: 9, plus the database time of each send), hence the default of 16.
    """

    rate_per_s: float = 30.0
    rate_safety: float = 0.99
    max_retries: int = 5
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    batch_size: int = 50
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    lanes: int = DEFAULT_LANES

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or not 0 < self.rate_safety <= 1:
            raise ValueError(f"need rate_per_s > 0 and 0 < rate_safety <= 1, got {self}")
        if self.max_retries < 0 or self.batch_size < 1 or self.lanes < 1:
            raise ValueError(f"need max_retries >= 0, batch_size >= 1 and lanes >= 1, got {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """The configuration the settings describe."""
        return cls(
            rate_per_s=settings.send_rate_per_s,
            max_retries=settings.send_max_retries,
            lanes=settings.send_lanes,
            quiet_hours=QuietHours(
                settings.quiet_hours_start, settings.quiet_hours_end, settings.default_timezone
            ),
        )

    @property
    def effective_rate_per_s(self) -> float:
        """The rate the sender aims at."""
        return self.rate_per_s * self.rate_safety

    def reachable_rate(self, round_trip_s: float) -> float:
        """The most messages/s `lanes` sends in flight can carry at this round trip."""
        return (
            self.effective_rate_per_s
            if round_trip_s <= 0
            else min(self.effective_rate_per_s, self.lanes / round_trip_s)
        )

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based)."""
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, attempt - 1)))


@dataclass
class EngineStats:
    """Counters of one engine, by outcome (sent, blocked, rejected, retried, rate_limited...)."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        """Count one outcome."""
        self.outcomes[outcome] += 1


class DeliveryEngine:
    """Sends due deliveries of running campaigns through `sender`, recording every step.

    Args:
        engine: The database.
        sender: One attempt per call; `bot.delivery.TelegramSender` in production.
        owner: This sender's name, stored in `claimed_by`.
        clock: Time source (a `ManualClock` in tests).
        config: Pacing and retry policy.
        lease: `(name, holder)` of the scheduler lease to check before every send, or None
            when the caller guarantees it is the only sender.
    """

    def __init__(
        self,
        engine: Engine,
        sender: Sender,
        *,
        owner: str,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
        lease: tuple[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.sender = sender
        self.owner = owner
        self.clock = clock or SystemClock()
        self.config = config or EngineConfig()
        self.lease = lease
        self.stats = EngineStats()
        self.stop_requested = False  # finish the messages in flight, then send no more

    # ---- one delivery ----------------------------------------------------------------
    async def _deliver(self, task: DeliveryTask, owner: str) -> None:
        quiet = self.config.quiet_hours
        now = self.clock.now()
        if task.campaign_kind in AUTOMATED_KINDS and quiet.is_quiet(now, task.time_zone):
            if now - task.due_at > STALE_AFTER:
                # Held up past its day (a long outage or 429 storm): the next daily run plans anew.
                await asyncio.to_thread(
                    mark_final, self.engine, task.id, status=DeliveryStatus.SKIPPED, reason="quiet_hours"
                )
                self.stats.add("skipped_quiet_hours")
                return
            later = quiet.next_allowed(now, task.time_zone)
            await asyncio.to_thread(
                requeue, self.engine, task.id, due_at=later, error=None, count_attempt=False
            )
            self.stats.add("deferred_quiet_hours")
            return
        async with self.sender.slot(task.chat_id):
            verdict = await asyncio.to_thread(
                begin_send, self.engine, task.id, owner=owner, now=self.clock.now(), lease=self.lease
            )
            if verdict is SendVerdict.LEASE_LOST:
                raise LeaseLostError(f"{self.owner} lost the scheduler lease {self.lease}")
            if verdict is not SendVerdict.SEND:
                self.stats.add(verdict)
                return
            try:
                result = await self.sender.send(outgoing_message(task))
            except (asyncio.CancelledError, KeyboardInterrupt):
                # Cut off mid-send (a stop that outlasted its grace time): say so before the lease
                # goes, rather than leave the row for the next process's recovery.
                await self._mark_cut_off(task)
                raise
            except Exception as exc:  # a Sender must not raise; if one does, the outcome is unknown
                logger.exception("sender raised for delivery %d; marking it ambiguous", task.id)
                result = SendResult(SendStatus.AMBIGUOUS, error=f"{type(exc).__name__}: {exc}")
        await self._record(task, result)

    async def _mark_cut_off(self, task: DeliveryTask) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(
                asyncio.to_thread(
                    mark_ambiguous, self.engine, task.id, error=f"{self.owner} stopped while sending"
                )
            )
        self.stats.add(DeliveryStatus.AMBIGUOUS)

    async def _record(self, task: DeliveryTask, result: SendResult) -> None:
        now = self.clock.now()
        if result.status is SendStatus.SENT:
            await asyncio.to_thread(
                mark_sent, self.engine, task.id, telegram_message_id=result.telegram_message_id, now=now
            )
            self.stats.add("sent")
        elif result.status is SendStatus.BLOCKED:
            await asyncio.to_thread(mark_final, self.engine, task.id, status=DeliveryStatus.BLOCKED,
                                    reason="blocked", error=result.error)  # fmt: skip
            self.stats.add("blocked")
        elif result.status is SendStatus.REJECTED:
            await asyncio.to_thread(mark_final, self.engine, task.id, status=DeliveryStatus.FAILED,
                                    reason="rejected", error=result.error)  # fmt: skip
            self.stats.add("rejected")
        elif result.status is SendStatus.AMBIGUOUS:
            await asyncio.to_thread(mark_ambiguous, self.engine, task.id, error=result.error)
            self.stats.add(DeliveryStatus.AMBIGUOUS)
        elif result.retry_after is not None:
            # The sender has paused every send for `retry_after`; the row waits as long.
            due = now + timedelta(seconds=result.retry_after)
            await asyncio.to_thread(requeue, self.engine, task.id, due_at=due, error=result.error,
                                    count_attempt=False)  # fmt: skip
            self.stats.add("rate_limited")
        else:
            attempt = task.attempts + 1
            if attempt > self.config.max_retries:
                await asyncio.to_thread(mark_final, self.engine, task.id, status=DeliveryStatus.FAILED,
                                        reason="retries_exhausted", error=result.error)  # fmt: skip
                self.stats.add("retries_exhausted")
                return
            due = now + timedelta(seconds=self.config.backoff(attempt))
            await asyncio.to_thread(requeue, self.engine, task.id, due_at=due, error=result.error)
            self.stats.add("retried")

    # ---- loops -----------------------------------------------------------------------
    async def run_once(self) -> int:
        """Start due campaigns, send one claimed batch, close finished campaigns; rows handled."""
        now = self.clock.now()
        started = await asyncio.to_thread(start_due_campaigns, self.engine, now=now)
        for campaign_id in started:
            logger.info("campaign %d started", campaign_id)
        lanes = self.config.lanes
        batch = await asyncio.to_thread(
            claim_batch, self.engine, owner=self.owner, now=now, limit=self.config.batch_size * lanes
        )
        queue = deque(batch)

        async def lane(owner: str) -> None:
            while queue and not self.stop_requested:
                await self._deliver(queue.popleft(), owner)

        if lanes == 1:
            await lane(self.owner)
        else:
            try:
                async with asyncio.TaskGroup() as group:
                    for number in range(min(lanes, len(batch))):
                        group.create_task(lane(f"{self.owner}/{number}"))
            except* LeaseLostError as lost:
                raise lost.exceptions[0] from None
        finished = await asyncio.to_thread(finish_campaigns, self.engine, now=self.clock.now())
        for campaign_id in finished:
            logger.info("campaign %d finished", campaign_id)
        return len(batch)

    async def seconds_until_due(self) -> float | None:
        """Seconds until the next pending row is due (0 if now); None when nothing is pending."""
        due = await asyncio.to_thread(next_due_at, self.engine)
        if due is None:
            return None
        return max(0.0, (due - self.clock.now()).total_seconds())

    async def drain(self, *, max_idle_wait_s: float | None = None) -> EngineStats:
        """Send until nothing is pending, sleeping (on the clock) until deferred rows fall due.

        Args:
            max_idle_wait_s: stop instead of sleeping longer than this for the next due row
                (None: wait as long as needed, e.g. through quiet hours on a manual clock).
        """
        while True:
            if await self.run_once():
                continue
            wait = await self.seconds_until_due()
            if wait is None:
                return self.stats
            if max_idle_wait_s is not None and wait > max_idle_wait_s:
                return self.stats
            await self.clock.sleep(max(wait, 0.001))
