"""The conversation a user is in, kept as typed `user_data`, and what their next text message is.

PTB keeps one `UserData` per user (named in `bot.context.CONTEXT_TYPES`). It holds the two things a
private chat can be in the middle of: a feedback comment due after a rating, and a manager's
broadcast draft. `decide` reads that state once per text message and says what the message is
(`Turn`); the observer logs the message by that decision and the router answers it by the same one,
so the log and the reply cannot disagree.

It also holds the language the user last wrote in: `reply_language` answers a message in the
language it is written in, and everything after it (buttons, commands, the feedback prompt) in
that same language until the user writes in another one. The Telegram client's `language_code`
only counts while the user has written nothing that tells (see `bot.language`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bot.i18n import language_of
from scheduler.experiments import VariantDraft

FEEDBACK_COMMENT_WINDOW_S = 600.0
TIME_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class CommentDue:
    """The user rated and may now write a comment; `since` is `time.monotonic()` of the rating."""

    rating: int
    since: float


@dataclass
class BroadcastDraft:
    """A manager's broadcast being composed: segments offered, then the one chosen, then the text.

    Attributes:
        segments: The segment names offered on the buttons, by button index (empty once chosen).
        segment: The chosen segment (`scheduler.planning.ALL` for everyone), None until chosen.
        text: The message text, None until written.
        recipients: How many users the preview counted for `segment`.
        variants: The variants when the text had `---` lines (an experiment), else empty.
    """

    segments: tuple[str, ...] = ()
    segment: str | None = None
    text: str | None = None
    recipients: int = 0
    variants: tuple[VariantDraft, ...] = ()


@dataclass
class UserData:
    """Everything the bot remembers about one user between their updates (PTB's `user_data`)."""

    comment_due: CommentDue | None = None
    broadcast: BroadcastDraft | None = None
    language: str | None = None
    """The language (`en`, `zh`) the user last wrote in; None until a message of theirs told.

    Kept in memory like the rest of `user_data` (the bot runs without PTB persistence), and on
    the users row for pushes (`bot.users.stored_language`). After a restart both follow the
    client's language again from the user's next update until they next write. `/forget` drops it."""

    def await_comment(self, rating: int) -> None:
        """Expect the user's next message to be a comment on their rating."""
        self.comment_due = CommentDue(rating=rating, since=time.monotonic())

    def pending_rating(self) -> int | None:
        """The rating a comment would belong to, if one is due and not too old.

        A user who rated and then walked away should get their next question answered, not
        swallowed as a comment, so the expectation lapses after a few minutes.
        """
        due = self.comment_due
        if due is None:
            return None
        if time.monotonic() - due.since > FEEDBACK_COMMENT_WINDOW_S:
            self.comment_due = None
            return None
        return due.rating

    def clear_comment(self) -> bool:
        """No comment is expected any more; True when one was (and had not lapsed)."""
        was_due = self.pending_rating() is not None
        self.comment_due = None
        return was_due


class Step(StrEnum):
    """What one text message (not a command) is, given the conversation."""

    QUESTION = "question"
    """Private text, or group text addressed to the bot: the NLU reads it and the bot answers."""
    CHATTER = "chatter"
    """Group text not addressed to the bot: logged, neither understood nor answered."""
    FEEDBACK_COMMENT = "feedback_comment"
    """The comment on the rating the user just gave."""
    BROADCAST_TEXT = "broadcast_text"
    """A manager's broadcast text, after choosing the segment."""
    BROADCAST_TIME = "broadcast_time"
    """A send time typed by a manager whose broadcast is previewed."""


@dataclass(frozen=True)
class Turn:
    """The decision about one text message: its step and what the step needs."""

    step: Step
    rating: int | None = None
    """The rating a FEEDBACK_COMMENT belongs to."""
    send_at: datetime | None = None
    """When a BROADCAST_TIME asks the broadcast to go out."""


def parse_send_time(text: str, now: datetime) -> datetime | None:
    """`2026-12-01 10:00` (UTC) in the future, else None."""
    try:
        at = datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return at if at > now else None


def decide(
    user_data: UserData | None, text: str, *, private: bool, addressed: bool, is_admin: bool, now: datetime
) -> Turn:
    """What a text message is: a comment due comes first, then a manager's draft, else a question.

    A manager's draft takes a message only where it expects one: the text once a segment is
    chosen, then a send time; anything else the manager writes meanwhile is a question.
    """
    if not private:
        return Turn(Step.QUESTION if addressed else Step.CHATTER)
    if user_data is None:
        return Turn(Step.QUESTION)
    rating = user_data.pending_rating()
    if rating is not None:
        return Turn(Step.FEEDBACK_COMMENT, rating=rating)
    draft = user_data.broadcast
    if draft is None or not is_admin or draft.segment is None:
        return Turn(Step.QUESTION)
    if draft.text is None:
        return Turn(Step.BROADCAST_TEXT)
    at = parse_send_time(text, now)
    if at is not None:
        return Turn(Step.BROADCAST_TIME, send_at=at)
    return Turn(Step.QUESTION)


class LanguageSource(StrEnum):
    """Why a reply is in the language it is in (logged as the event's `lang_from`)."""

    TEXT = "text"
    """The message being answered is written in it."""
    EARLIER = "earlier"
    """The user last wrote in it (this update is a button, a command or tells no language)."""
    CLIENT = "client"
    """The Telegram client's `language_code`: the user has written nothing that tells yet."""


@dataclass(frozen=True)
class ReplyLanguage:
    """The language to answer one update in, and why."""

    lang: str
    source: LanguageSource


def known_language(user_data: UserData | None, client_code: str | None) -> ReplyLanguage:
    """The language the user last wrote in, else their client's; reads nothing new, changes nothing."""
    if user_data is not None and user_data.language is not None:
        return ReplyLanguage(user_data.language, LanguageSource.EARLIER)
    return ReplyLanguage(language_of(client_code), LanguageSource.CLIENT)


def reply_language(user_data: UserData | None, written: str | None, client_code: str | None) -> ReplyLanguage:
    """The language to answer in: the message's own, else the one the user last wrote in, else the client's.

    A message that tells its language (`written`, from `bot.language.written_language`) is
    remembered in `user_data`, so the buttons pressed and commands sent after it answer in it too.
    """
    if written is None:
        return known_language(user_data, client_code)
    if user_data is not None:
        user_data.language = written
    return ReplyLanguage(written, LanguageSource.TEXT)
