"""Small per-user conversation state kept in PTB's `user_data` (e.g. a feedback comment due)."""

from __future__ import annotations

import time
from typing import Any

AWAITING_FEEDBACK = "awaiting_feedback_comment"
FEEDBACK_COMMENT_WINDOW_S = 600.0


def await_comment(user_data: dict[Any, Any] | None, rating: int) -> None:
    """Expect the user's next message to be a comment on their rating."""
    if user_data is not None:
        user_data[AWAITING_FEEDBACK] = (rating, time.monotonic())


def pending_rating(user_data: dict[Any, Any] | None) -> int | None:
    """The rating a comment would belong to, if one is due and not too old.

    A user who rated and then walked away should get their next question answered, not
    swallowed as a comment, so the expectation lapses after a few minutes.
    """
    if not user_data or AWAITING_FEEDBACK not in user_data:
        return None
    rating, since = user_data[AWAITING_FEEDBACK]
    if time.monotonic() - since > FEEDBACK_COMMENT_WINDOW_S:
        user_data.pop(AWAITING_FEEDBACK, None)
        return None
    return int(rating)


def clear_comment(user_data: dict[Any, Any] | None) -> None:
    """No comment is expected any more."""
    if user_data is not None:
        user_data.pop(AWAITING_FEEDBACK, None)


BROADCAST = "broadcast_draft"


def broadcast_draft(user_data: dict[Any, Any] | None) -> dict[str, Any] | None:
    """The manager's broadcast being composed, if any (segment chosen, maybe text and time)."""
    if not user_data:
        return None
    draft = user_data.get(BROADCAST)
    return draft if isinstance(draft, dict) else None


def awaiting_broadcast_text(user_data: dict[Any, Any] | None) -> bool:
    """Whether the manager's next message is the text of a broadcast."""
    draft = broadcast_draft(user_data)
    return draft is not None and "segment" in draft and "text" not in draft
