"""The token vocabulary of interaction events: one token per event, its intent or else its kind."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from store.vocabulary import EventKind

EVENT_KINDS: tuple[str, ...] = tuple(kind.value for kind in EventKind)
"""Every event kind: the token of an event the NLU gave no intent (a reaction, a join, a push receipt)."""


@dataclass(frozen=True)
class TokenVocabulary:
    """The tokens a user's sequence can hold: every event kind, and the intents the NLU can give.

    Intents are not named in analytics: they are the labels of the active NLU model (its trained
    intents and its fallback intent), known at run time, so the composition root passes them in.
    """

    intents: frozenset[str]

    @classmethod
    def of(cls, intents: Iterable[str]) -> TokenVocabulary:
        """The vocabulary of an NLU model with these labels."""
        return cls(frozenset(intents))

    @property
    def tokens(self) -> frozenset[str]:
        """Every known token: the event kinds and the intents."""
        return frozenset(EVENT_KINDS) | self.intents

    def __contains__(self, token: object) -> bool:
        return token in self.intents or token in EVENT_KINDS

    def unknown(self, tokens: Collection[str]) -> list[str]:
        """The tokens that are neither an event kind nor an intent, in the given order."""
        return [token for token in tokens if token not in self]


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
