"""The token vocabulary of interaction events: one token per event, its intent or else its kind."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from store.vocabulary import EventKind

EVENT_KINDS: tuple[str, ...] = tuple(kind.value for kind in EventKind)
"""Every event kind: the token of an event the NLU gave no intent (a reaction, a join, a push receipt)."""
PRODUCT_TOKEN_PREFIX = "product:"
"""A product event's token is `product:<its name>` (`product:upgrade`, `product:api_error_429`)."""


def is_product_token(token: str) -> bool:
    """Whether a token names a product event: the prefix and a non-empty name."""
    return token.startswith(PRODUCT_TOKEN_PREFIX) and len(token) > len(PRODUCT_TOKEN_PREFIX)


@dataclass(frozen=True)
class TokenVocabulary:
    """The tokens a user's sequence can hold: every event kind, the intents the NLU can give, products.

    Intents are not named in analytics: they are the labels of the active NLU model (its trained
    intents and its fallback intent), known at run time, so the composition root passes them in.
    Product event names are the start-up's own and open-ended: any `product:<name>` is known.
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
        return (
            token in self.intents
            or token in EVENT_KINDS
            or (isinstance(token, str) and is_product_token(token))
        )

    def unknown(self, tokens: Collection[str]) -> list[str]:
        """The tokens that are neither an event kind nor an intent, in the given order."""
        return [token for token in tokens if token not in self]


def event_token(kind: str, intent: str | None = None, product: str | None = None) -> str:
    """Return the sequence token of one event.

    The intent says more about what the user wants than the kind (a `message` can be about pricing
    or about a bug), so it wins when the NLU assigned one; a product event is `product:<name>`
    (its `attributes.event`), so a burst of `product:api_error_429` can make the rate-limit
    guide likely; other events without an intent (reactions, joins, push receipts) fall back to
    their kind.

    Raises:
        ValueError: if `kind` is empty.
    """
    if not kind:
        raise ValueError(f"event kind must be a non-empty string, got {kind!r}")
    if intent:
        return intent
    if kind == EventKind.PRODUCT and product:
        return f"{PRODUCT_TOKEN_PREFIX}{product}"
    return kind


def product_name(attributes: Mapping[str, Any] | None) -> str | None:
    """A product event's name from its attributes (`attributes.event`), None when there is none."""
    if not attributes:
        return None
    name = attributes.get("event")
    return name if isinstance(name, str) and name else None


def stored_token(kind: str, intent: str | None, attributes: Mapping[str, Any] | None) -> str:
    """`event_token` of a stored event, its product name read from `attributes`."""
    return event_token(kind, intent, product_name(attributes) if kind == EventKind.PRODUCT else None)
