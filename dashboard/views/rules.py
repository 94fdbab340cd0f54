"""Association rules as the Insights page shows them: filters, and which rules only restate a segment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from store.analytics_results import RuleInfo

SEGMENT_PREFIX = "segment:"
SORTS = ("lift", "confidence", "support")


@dataclass(frozen=True)
class RuleFilter:
    """What the manager asked to see."""

    min_support: float = 0.0
    min_confidence: float = 0.0
    min_lift: float = 0.0
    item: str = ""
    segment: str = ""
    sort: str = "lift"
    show_restating: bool = False
    show_redundant: bool = False


def restates_segment(rule: RuleInfo) -> bool:
    """A rule concluding that users are in a segment only restates how the segments were drawn.

    Segments are clusters of the very behaviour the other items describe, so "users who asked
    about docs are in Power users" says nothing a segment's profile does not; rules *from* a
    segment to a behaviour ("Power users also ask about models") stay.
    """
    return any(item.startswith(SEGMENT_PREFIX) for item in rule.consequents)


def mentions_segment(rule: RuleInfo, name: str) -> bool:
    """Whether the rule starts from this segment (and does not merely restate it)."""
    return f"{SEGMENT_PREFIX}{name}" in rule.antecedents and not restates_segment(rule)


def redundant_rules(rules: Sequence[RuleInfo], *, tolerance: float = 0.01) -> set[int]:
    """Indexes of rules for which a simpler one (fewer conditions, same conclusion) is as confident.

    "Users who asked about docs and billing also ask about models, 100%" adds nothing when "users
    who asked about docs also ask about models, 100%" is there.
    """
    by_conclusion: dict[tuple[str, ...], list[tuple[frozenset[str], float]]] = {}
    for rule in rules:
        by_conclusion.setdefault(rule.consequents, []).append((frozenset(rule.antecedents), rule.confidence))
    found = set()
    for index, rule in enumerate(rules):
        ante = frozenset(rule.antecedents)
        if any(
            other < ante and confidence >= rule.confidence - tolerance
            for other, confidence in by_conclusion[rule.consequents]
        ):
            found.add(index)
    return found


def filter_rules(rules: Sequence[RuleInfo], wanted: RuleFilter) -> tuple[list[RuleInfo], int, int]:
    """The rules passing the filter, sorted; how many were hidden for restating a segment, for redundancy."""
    item = wanted.item.strip().casefold()
    segment = f"{SEGMENT_PREFIX}{wanted.segment}" if wanted.segment else ""
    kept: list[RuleInfo] = []
    hidden = 0
    hidden_redundant = 0
    redundant = set() if wanted.show_redundant else redundant_rules(rules)
    for index, rule in enumerate(rules):
        items = (*rule.antecedents, *rule.consequents)
        if rule.support < wanted.min_support or rule.confidence < wanted.min_confidence:
            continue
        if rule.lift < wanted.min_lift:
            continue
        if item and not any(item in i.casefold() for i in items):
            continue
        if segment and segment not in items:
            continue
        if restates_segment(rule) and not wanted.show_restating:
            hidden += 1
            continue
        if index in redundant:
            hidden_redundant += 1
            continue
        kept.append(rule)
    key = wanted.sort if wanted.sort in SORTS else "lift"
    kept.sort(key=lambda r: (getattr(r, key), r.confidence, r.support), reverse=True)
    return kept, hidden, hidden_redundant


def item_words(item: str) -> str:
    """An item in plain words, for chips beside the rule's sentence."""
    kind, _, value = item.partition(":")
    if not value:
        return item.replace("_", " ")
    return {"intent": "asked about", "action": "", "segment": "in", "feedback": "feedback"}.get(
        kind, kind
    ) + (f" {value.replace('_', ' ')}")
