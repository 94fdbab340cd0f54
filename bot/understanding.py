"""What a question asks: the NLU call, reduced to what the bot and the event log use."""

from __future__ import annotations

from dataclasses import dataclass, field

from nlu import IntentParser, ParseResult


@dataclass(frozen=True)
class Understanding:
    """What the NLU made of one message, reduced to what the bot and the log use."""

    intent: str | None
    confidence: float | None
    entities: dict[str, str] = field(default_factory=dict)
    ranking: tuple[str, ...] = ()


def understanding_from(result: ParseResult) -> Understanding:
    """Reduce an NLU `ParseResult` to what the bot and the event log use."""
    return Understanding(
        intent=result.intent.name or None,
        confidence=float(result.intent.confidence),
        entities={entity.entity: str(entity.value) for entity in result.entities},
        ranking=tuple(score.name for score in result.intent_ranking),
    )


class Understander:
    """Runs the NLU on a question; one call per update (`bot.context.understanding_of` sees to that).

    Args:
        parser: The local or remote NLU parser.
    """

    def __init__(self, parser: IntentParser) -> None:
        self.parser = parser

    async def understand(self, text: str) -> Understanding:
        """Parse `text` off the event loop; the local engine batches the updates handled concurrently."""
        raw: ParseResult = await self.parser.aparse(text)
        return understanding_from(raw)
