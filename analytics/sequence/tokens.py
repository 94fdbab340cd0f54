"""The token vocabulary of interaction events: one token per event, its intent or else its kind."""

from __future__ import annotations

EVENT_KINDS: tuple[str, ...] = (
    "message",
    "command",
    "callback",
    "reaction",
    "poll_answer",
    "feedback",
    "join",
    "push_received",
    "push_response",
)

INTENTS: tuple[str, ...] = (
    "greet",
    "goodbye",
    "thanks",
    "getting_started",
    "pricing",
    "api_keys",
    "rate_limits",
    "models",
    "billing",
    "account",
    "data_privacy",
    "bug_report",
    "feature_request",
    "community_events",
    "docs",
    "fine_tuning",
    "service_status",
    "human_handoff",
    "out_of_scope",
    "nlu_fallback",
)

KNOWN_TOKENS: frozenset[str] = frozenset(EVENT_KINDS) | frozenset(INTENTS)


def event_token(kind: str, intent: str | None = None) -> str:
    """Return the sequence token of one event.

    The intent says more about what the user wants than the kind (a `message` can be about pricing
    or about a bug), so it wins when the NLU assigned one; events without an intent (reactions,
    joins, push receipts) fall back to their kind.

    Raises:
        ValueError: if `kind` is empty.
    """
    if not kind:
        raise ValueError(f"event kind must be a non-empty string, got {kind!r}")
    return intent if intent else kind
