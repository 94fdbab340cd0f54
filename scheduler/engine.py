"""The delivery engine: claims due deliveries and sends them one at a time, paced, through a `Sender`.

Invariants:
- a row is `sending` only between `begin_send` and the recorded outcome, and an engine
  sends one message at a time, so a crash leaves at most one row per engine ambiguous;
- the engine paces itself slightly under the allowed rate (the sender paces too), so the
  server's limits are never hit by its own traffic; a 429 still pauses every send for
  `retry_after` and puts the row back without using up a retry;
- 403 blocks the user, 400 fails the row, 5xx/timeouts retry with exponential back-off up to
  `max_retries`; automated pushes that reach quiet hours are deferred, not sent.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from scheduler.clock import Clock, SystemClock
from scheduler.errors import LeaseLostError
from scheduler.policy import QuietHours
from scheduler.sender import OutgoingMessage, Sender, SendResult, SendStatus
from store import Settings
from store.campaigns import BLOCKED, FAILED, SKIPPED, finish_campaigns, next_due_at, start_due_campaigns
from store.deliveries import DeliveryTask, begin_send, claim_batch, mark_final, mark_sent, requeue

logger = logging.getLogger(__name__)

AUTOMATED_KINDS = ("reengagement",)
STALE_AFTER = timedelta(hours=12)
_EPSILON_S = 0.002


@dataclass(frozen=True)
class EngineConfig:
    """How the engine paces and retries.

    Args:
        rate_per_s: Telegram's allowed messages/s for this bot (30, more with paid broadcasts).
        rate_safety: Share of `rate_per_s` the engine aims at, leaving room for network jitter
            so that the server never sees more than the limit in any one-second window.
        max_retries: Retries after 5xx/timeouts before a row fails.
        backoff_base_s: First retry delay; doubles with each attempt.
        backoff_max_s: Longest retry delay.
        batch_size: Rows claimed per database round trip.
        quiet_hours: Quiet hours for automated pushes.
        lanes: Sends in flight at once. Each lane has its own sender name and at most one
            `sending` row, so a crash leaves at most `lanes` rows ambiguous; one lane keeps up
            with 30 messages/s, more lanes serve paid-broadcast rates.
    """

    rate_per_s: float = 30.0
    rate_safety: float = 0.99
    max_retries: int = 5
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    batch_size: int = 50
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    lanes: int = 1

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
    def window_limit(self) -> int:
        """Most attempts in any one-second window (Telegram counts whole messages)."""
        return max(1, math.floor(self.rate_per_s))

    @property
    def interval_s(self) -> float:
        """Seconds between two sends."""
        return 1.0 / (self.rate_per_s * self.rate_safety)

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
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._recent: deque[float] = deque()
        self._in_flight = 0
        self.stop_requested = False  # finish the message in flight, then send no more

    # ---- pacing ----------------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        """Hold every send for `seconds` (Telegram's `retry_after`)."""
        self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    async def _wait_for_slot(self) -> None:
        """Wait for the next send slot: the paced interval, any 429 pause, and the 1-s window.

        The window rule counts attempts that *completed* within the last second plus those in
        flight: a message the server has answered arrived before we saw the answer, so starting
        at least one second after the `limit`-th latest completion can never put more than
        `limit` messages into any one-second window at the server, whatever the network jitter.
        """
        limit = self.config.window_limit
        while True:
            now = self.clock.monotonic()
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            ready = max(self._next_slot, self._paused_until)
            if len(self._recent) + self._in_flight >= limit:
                ready = max(ready, self._recent[0] + 1.0 + _EPSILON_S if self._recent else now + _EPSILON_S)
            if ready <= now:
                self._next_slot = max(self._next_slot + self.config.interval_s, now)
                self._in_flight += 1
                return
            await self.clock.sleep(ready - now)

    def _attempt_done(self, *, attempted: bool) -> None:
        self._in_flight -= 1
        if attempted:
            self._recent.append(self.clock.monotonic())

    # ---- one delivery ----------------------------------------------------------------
    async def _deliver(self, task: DeliveryTask, owner: str) -> None:
        quiet = self.config.quiet_hours
        now = self.clock.now()
        if task.campaign_kind in AUTOMATED_KINDS and quiet.is_quiet(now, task.time_zone):
            if now - task.due_at > STALE_AFTER:
                # Held up past its day (a long outage or 429 storm): the next daily run plans anew.
                await asyncio.to_thread(
                    mark_final, self.engine, task.id, status=SKIPPED, reason="quiet_hours"
                )
                self.stats.add("skipped_quiet_hours")
                return
            later = quiet.next_allowed(now, task.time_zone)
            await asyncio.to_thread(
                requeue, self.engine, task.id, due_at=later, error=None, count_attempt=False
            )
            self.stats.add("deferred_quiet_hours")
            return
        await self._wait_for_slot()
        attempted = False
        try:
            verdict = await asyncio.to_thread(
                begin_send, self.engine, task.id, owner=owner, now=self.clock.now(), lease=self.lease
            )
            if verdict == "lease_lost":
                raise LeaseLostError(f"{self.owner} lost the scheduler lease {self.lease}")
            if verdict != "send":
                self.stats.add(verdict)
                return
            attempted = True
            try:
                result = await self.sender.send(OutgoingMessage(chat_id=task.chat_id, text=task.text))
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise  # the row stays `sending`: recovery reports it as ambiguous
            except Exception as exc:  # a Sender must not raise; if one does, treat it as transient
                logger.exception("sender raised for delivery %d; treating it as a transient error", task.id)
                result = SendResult(SendStatus.RETRY, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._attempt_done(attempted=attempted)
        await self._record(task, result)

    async def _record(self, task: DeliveryTask, result: SendResult) -> None:
        now = self.clock.now()
        if result.status is SendStatus.SENT:
            await asyncio.to_thread(
                mark_sent, self.engine, task.id, telegram_message_id=result.telegram_message_id, now=now
            )
            self.stats.add("sent")
        elif result.status is SendStatus.BLOCKED:
            await asyncio.to_thread(mark_final, self.engine, task.id, status=BLOCKED, reason="blocked",
                                    error=result.error)  # fmt: skip
            self.stats.add("blocked")
        elif result.status is SendStatus.REJECTED:
            await asyncio.to_thread(mark_final, self.engine, task.id, status=FAILED, reason="rejected",
                                    error=result.error)  # fmt: skip
            self.stats.add("rejected")
        elif result.retry_after is not None:
            self.pause(result.retry_after)
            due = now + timedelta(seconds=result.retry_after)
            await asyncio.to_thread(requeue, self.engine, task.id, due_at=due, error=result.error,
                                    count_attempt=False)  # fmt: skip
            self.stats.add("rate_limited")
            logger.warning("429: all sends paused for %.1fs", result.retry_after)
        else:
            attempt = task.attempts + 1
            if attempt > self.config.max_retries:
                await asyncio.to_thread(mark_final, self.engine, task.id, status=FAILED,
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
