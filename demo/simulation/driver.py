"""Live mode: simulated users play their actions against the local Bot API server.

The bot under test is the real application polling that server; the driver only does
what Telegram clients do (send messages, press buttons, react, vote, join, block) and
reads back what the bot sent, for instance to answer its pushes.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from demo.simulation.activity import ActionBatch
from demo.simulation.behaviour import ACTIONS, INTENT_ACTIONS
from demo.simulation.bulk import GROUP_CHAT_ID
from demo.simulation.population import Persona, Population
from demo.simulation.responses import natural_return_probability, response_intent, response_probability
from demo.simulation.texts import render
from fakeapi import LocalBotAPI, SentRecord, SimulationError, WaitTimeout

__all__ = ["MIN_USER_GAP_S", "CommunityDriver", "PlayReport", "ReturnReport", "pace"]

logger = logging.getLogger(__name__)

MIN_USER_GAP_S = 0.6
"""Wall seconds between two actions of one user: keeps honest users under the flood limit."""
_REACTIONS = ("👍", "❤", "🔥", "🎉", "😁")
_RECENT_GROUP_MESSAGES = 50
_REPLY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PlayReport:
    """What one live play did: actions sent per kind, and those that could not happen."""

    sent: dict[str, int]
    skipped: dict[str, int]
    wall_s: float

    @property
    def total(self) -> int:
        """Actions delivered to the server."""
        return sum(self.sent.values())


@dataclass(frozen=True)
class ReturnReport:
    """Who came back after pushes: answers to pushes and unprompted returns."""

    responded: frozenset[int]
    returned_naturally: frozenset[int]
    messages: int


@dataclass
class _Poll:
    record: SentRecord
    options: int
    voters: set[int] = field(default_factory=set)


def pace(
    batch: ActionBatch,
    *,
    window_start_ts: int,
    window_s: float,
    wall_s: float,
    min_gap_s: float = MIN_USER_GAP_S,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """When to play each action: the simulated window squeezed into `wall_s` seconds.

    Returns the play order (indices into `batch`) and each one's due time in wall seconds
    from the start. One user's actions stay at least `min_gap_s` apart, as a person types.
    """
    due = (batch.ts - window_start_ts).astype(np.float64) * (wall_s / window_s)
    due = np.clip(due, 0.0, None)
    adjusted = due.copy()
    for i in range(1, len(batch)):  # batch is sorted by user then time
        if batch.row[i] == batch.row[i - 1]:
            adjusted[i] = max(adjusted[i], adjusted[i - 1] + min_gap_s)
    order = np.argsort(adjusted, kind="stable").astype(np.int64)
    return order, adjusted[order]


class CommunityDriver:
    """Simulated users of one community, acting through a `LocalBotAPI`.

    Args:
        api: The running local Bot API server (its simulation methods are thread-safe).
        population: The users; each gets a private chat and, if a member, the group.
        manager_id: A community manager's user id (creator of the group, runs polls).
        seed: Seed of the texts, choices and responses.
        group_chat_id: The community supergroup.
    """

    def __init__(
        self,
        api: LocalBotAPI,
        population: Population,
        *,
        manager_id: int,
        seed: int = 0,
        group_chat_id: int = GROUP_CHAT_ID,
    ) -> None:
        self.api = api
        self.population = population
        self.manager_id = manager_id
        self.group_chat_id = group_chat_id
        self.rng = np.random.default_rng([seed, 4])
        self.personas: dict[int, Persona] = {p.id: p for p in population.personas()}
        self._recent_group: list[tuple[int, int, int]] = []  # (chat, message, author)
        self._poll: _Poll | None = None
        self.blocked: set[int] = set()

    # ---- world -----------------------------------------------------------------------
    def setup(self, *, joining: Collection[int] = ()) -> None:
        """Create every user, the group (bot as administrator) and its members.

        Users in `joining` are left out of the group: they join live, which the bot sees.
        """
        self.api.add_user(self.manager_id, "Morgan", username="community_manager", language_code="en")
        self.api.add_chat(
            self.group_chat_id, "supergroup", title="Rapport Community", bot_status="administrator"
        )
        self.api.set_member(self.group_chat_id, self.manager_id, "creator")
        for persona in self.personas.values():
            self.api.add_user(
                persona.id, persona.first_name, username=persona.username, language_code=persona.language
            )
            if persona.in_group and persona.id not in joining:
                self.api.set_member(self.group_chat_id, persona.id, "member")

    def block(self, user_ids: Collection[int], *, silently: bool) -> None:
        """Users block the bot; `silently` when it happened while the bot was not listening.

        A silent block reaches the bot only as a 403 on its next send to them. Users who
        blocked the bot stop writing to it in private (Telegram would not let them).
        """
        self.blocked.update(user_ids)
        for user_id in user_ids:
            if silently:
                with self.api.state.lock:
                    self.api.state.blocked_by.add(user_id)
            else:
                self.api.block_bot(user_id)

    def open_poll(self, question: str, options: Sequence[str]) -> bool:
        """The manager starts a poll in the group with `/poll`; False if the bot sent none."""
        since = len(self.api.sent)
        self.api.user_command(self.manager_id, "poll", " | ".join([question, *options]), self.group_chat_id)
        try:
            record = self.api.wait_for_blocking(
                lambda r: r.method == "sendPoll" and r.chat_id == self.group_chat_id,
                _REPLY_TIMEOUT_S,
                since=since,
            )
        except WaitTimeout:
            logger.warning("the bot did not start the poll %r", question)
            return False
        self._poll = _Poll(record, len(options))
        self._remember(self.group_chat_id, record.message_id, 0)
        return True

    def _remember(self, chat_id: int, message_id: int, author: int) -> None:
        self._recent_group.append((chat_id, message_id, author))
        del self._recent_group[:-_RECENT_GROUP_MESSAGES]

    # ---- actions ---------------------------------------------------------------------
    def _say(self, persona: Persona, intent: str, in_group: bool) -> None:
        text = render(intent, persona.language, self.rng)
        if not in_group:
            self.api.user_says(persona.id, text)
            return
        update = (
            self.api.user_says(persona.id, text, self.group_chat_id)
            if intent == "chatter"
            else self.api.user_mentions_bot(persona.id, self.group_chat_id, text)
        )
        message = update.get("message")
        if message is not None:
            self._remember(self.group_chat_id, int(message["message_id"]), persona.id)

    def _feedback(self, persona: Persona, rating: int) -> bool:
        since = len(self.api.sent)
        self.api.user_command(persona.id, "feedback")
        try:
            record = self.api.wait_for_blocking(
                lambda r: r.chat_id == persona.id and r.reply_markup is not None,
                _REPLY_TIMEOUT_S,
                since=since,
            )
        except WaitTimeout:
            return False
        buttons = [b for row in (record.reply_markup or {}).get("inline_keyboard", []) for b in row]
        choice = next((b for b in buttons if str(b.get("text", "")).startswith(f"{rating} ")), None)
        if choice is None or "callback_data" not in choice:
            return False
        since = len(self.api.sent)
        self.api.press_button(persona.id, record, choice["callback_data"])
        try:  # the bot now waits for a comment: decline it only once the rating is through
            self.api.wait_for_blocking(
                lambda r: r.chat_id == persona.id and r.method.startswith("edit"),
                _REPLY_TIMEOUT_S,
                since=since,
            )
        except WaitTimeout:
            logger.warning("the bot did not confirm the rating of user %d", persona.id)
        self.api.user_command(persona.id, "skip")
        return True

    def _react(self, persona: Persona) -> bool:
        candidates = [m for m in self._recent_group if m[2] != persona.id]
        if not candidates:
            return False
        chat_id, message_id, _ = candidates[int(self.rng.integers(len(candidates)))]
        emoji = _REACTIONS[int(self.rng.integers(len(_REACTIONS)))]
        self.api.react(persona.id, (chat_id, message_id), emoji)
        return True

    def _vote(self, persona: Persona) -> bool:
        poll = self._poll
        if poll is None or persona.id in poll.voters:
            return False
        poll.voters.add(persona.id)
        self.api.vote_poll(persona.id, poll.record, [int(self.rng.integers(poll.options))])
        return True

    def perform(self, persona: Persona, action: str, *, in_group: bool, rating: int = 4) -> bool:
        """Do one action as `persona`; False when it could not happen (nothing to react to).

        Group actions need membership, as Telegram does: a user who left cannot post there.
        """
        if not in_group and persona.id in self.blocked:
            return False
        if in_group and action != "join":
            status = self.api.state.member(self.group_chat_id, persona.id).status
            if status in ("left", "kicked"):
                return False
        try:
            if action in INTENT_ACTIONS or action == "chatter":
                self._say(persona, action, in_group)
            elif action == "start":
                self.api.user_command(persona.id, "start")
            elif action == "join":
                self.api.member_joins(persona.id, self.group_chat_id)
            elif action == "feedback":
                return self._feedback(persona, rating)
            elif action == "reaction":
                return self._react(persona)
            elif action == "poll_answer":
                return self._vote(persona)
            else:
                raise SimulationError(f"unknown action {action!r}")
        except SimulationError as exc:
            logger.debug("user %d could not %s: %s", persona.id, action, exc)
            return False
        return True

    def play(
        self,
        batch: ActionBatch,
        *,
        window_start_ts: int,
        window_s: float,
        wall_s: float,
        min_gap_s: float = MIN_USER_GAP_S,
        progress: Callable[[int], None] | None = None,
    ) -> PlayReport:
        """Play `batch` in time order, squeezing `window_s` simulated seconds into `wall_s`."""
        order, due = pace(
            batch, window_start_ts=window_start_ts, window_s=window_s, wall_s=wall_s, min_gap_s=min_gap_s
        )
        sent: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        started = time.monotonic()
        for position, index in enumerate(order.tolist()):
            delay = started + float(due[position]) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            persona = self.personas[int(self.population.ids[batch.row[index]])]
            action = ACTIONS[int(batch.action[index])]
            done = self.perform(
                persona, action, in_group=bool(batch.in_group[index]), rating=int(batch.rating[index]) or 4
            )
            (sent if done else skipped)[action] += 1
            if progress is not None:
                progress(1)
        return PlayReport(dict(sent), dict(skipped), time.monotonic() - started)

    # ---- the manager -----------------------------------------------------------------
    def _buttons(self, record: SentRecord) -> list[dict[str, Any]]:
        rows = (record.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row if "callback_data" in button]

    def _manager_step(self, act: Callable[[], object], wanted: Callable[[SentRecord], bool]) -> SentRecord:
        since = len(self.api.sent)
        act()
        return self.api.wait_for_blocking(
            lambda r: r.chat_id == self.manager_id and wanted(r), _REPLY_TIMEOUT_S * 2, since=since
        )

    def manager_broadcast(self, segment: str, text: str) -> int:
        """The manager sends a broadcast to `segment` through the bot's /broadcast dialogue.

        Clicks as a person would: the segment's button, the text, then "Send now".

        Returns:
            The campaign id the bot confirms.

        Raises:
            SimulationError: naming the step where the bot did not offer what a manager needs.
        """
        manager = self.manager_id
        try:
            menu = self._manager_step(
                lambda: self.api.user_command(manager, "broadcast"), lambda r: bool(self._buttons(r))
            )
            choice = next((b for b in self._buttons(menu) if str(b["text"]).startswith(f"{segment} (")), None)
            if choice is None:
                raise SimulationError(f"/broadcast offers no segment {segment!r}")
            self._manager_step(
                lambda: self.api.press_button(manager, menu, choice["callback_data"]),
                lambda r: r.method.startswith("edit"),
            )
            preview = self._manager_step(
                lambda: self.api.user_says(manager, text), lambda r: bool(self._buttons(r))
            )
            now = next((b for b in self._buttons(preview) if b["text"] == "Send now"), None)
            if now is None:
                raise SimulationError("the broadcast preview has no 'Send now' button")
            done = self._manager_step(
                lambda: self.api.press_button(manager, preview, now["callback_data"]),
                lambda r: r.method.startswith("edit"),
            )
        except WaitTimeout as exc:
            raise SimulationError(f"the bot stopped answering the broadcast dialogue: {exc}") from exc
        found = re.search(r"#(\d+)", done.text or "")
        if found is None:
            raise SimulationError(f"the bot did not confirm a campaign: {done.text!r}")
        return int(found.group(1))

    # ---- coming back -----------------------------------------------------------------
    def come_back(
        self,
        pushes: Sequence[SentRecord],
        *,
        targets_of: Callable[[str], Collection[str]],
        candidates: Collection[int],
        horizon_days: float,
        wall_s: float = 5.0,
    ) -> ReturnReport:
        """Users answer pushes (type- and message-dependent) or return unprompted.

        Every user in `candidates` (pushed or held out alike) may return unprompted within
        `horizon_days`, at their type's rate; a pushed user may also answer the push. Either
        way the return is a real message to the bot, so return rates are measured from the
        event log, not from this method.
        """
        pushed: dict[int, list[SentRecord]] = {}
        for record in pushes:
            if record.chat_id > 0 and record.chat_id in self.personas:
                pushed.setdefault(record.chat_id, []).append(record)
        responded: set[int] = set()
        natural: set[int] = set()
        plan: list[tuple[int, str]] = []
        for user_id in sorted(set(candidates) | set(pushed)):
            persona = self.personas.get(user_id)
            if persona is None or user_id in self.blocked:
                continue
            profile = persona.profile
            answered = None
            for push in pushed.get(user_id, []):  # each push is a separate chance to answer
                targets = tuple(targets_of(push.text or ""))
                if self.rng.random() < response_probability(profile, targets):
                    answered = response_intent(profile, targets, self.rng)
                    break
            if answered is not None:
                responded.add(user_id)
                plan.append((user_id, answered))
            elif user_id in candidates and self.rng.random() < natural_return_probability(
                profile, horizon_days
            ):
                natural.add(user_id)
                plan.append((user_id, response_intent(profile, (), self.rng)))
        gap = wall_s / max(1, len(plan))
        for user_id, intent in plan:
            self._say(self.personas[user_id], intent, in_group=False)
            time.sleep(gap)
        return ReturnReport(frozenset(responded), frozenset(natural), len(plan))

    def sent_to_users(self, since: int = 0) -> list[SentRecord]:
        """Messages the bot sent to private chats of simulated users (index >= `since`)."""
        return [r for r in self.api.sent.items()[since:] if r.chat_id in self.personas]
