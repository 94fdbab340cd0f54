"""Association rules over baskets (mlxtend FP-growth or Apriori), with manager sentences."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth

from analytics.errors import BasketFileError, RuleMiningError
from store.vocabulary import EventKind

logger = logging.getLogger(__name__)

# Thresholds are compared with a tolerance: confidence 8/10 computed from supports is
# 0.7999999…, and arules (the reference) counts it as 0.8.
TOLERANCE = 1e-9
OUTCOMES: frozenset[str] = frozenset({"returned_after_push", "churned_30d"})
ALGORITHMS = ("fpgrowth", "apriori")

_PHRASES = {
    "intent": "asked about {}",
    "action": "{}",
    "feedback": "gave {} feedback",
    "segment": "are in “{}”",
    "product": "did “{}” in the product",
    "trait": "have {}",
}
_ACTIONS: dict[str, str] = {
    EventKind.REACTION: "reacted to messages",
    EventKind.POLL_ANSWER: "answered polls",
    "reply": "replied in groups",  # a message answering another: an attribute, not a kind
    EventKind.COMMAND: "used commands",
    EventKind.FEEDBACK: "rated the bot",
    EventKind.FALLBACK: "hit an unanswered question",
}
_FLAGS = {
    "returned_after_push": "came back after a push",
    "churned_30d": "went silent for 30+ days",
}


@dataclass(frozen=True)
class AssociationRule:
    """One rule X ⇒ Y with mlxtend's measures and a sentence a manager understands."""

    antecedents: tuple[str, ...]
    consequents: tuple[str, ...]
    support: float
    confidence: float
    lift: float
    leverage: float
    conviction: float | None
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready values, for `rapport analytics rules --json`."""
        return {
            "antecedents": list(self.antecedents),
            "consequents": list(self.consequents),
            "support": self.support,
            "confidence": self.confidence,
            "lift": self.lift,
            "leverage": self.leverage,
            "conviction": self.conviction,
            "sentence": self.sentence,
        }


def read_baskets(path: str | Path) -> list[list[str]]:
    """Read a basket file: one basket per line, items comma-separated; blank lines skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BasketFileError(f"cannot read basket file {path}: {exc}") from exc
    baskets = []
    for line in text.splitlines():
        items = [item.strip() for item in line.split(",")]
        items = [item for item in items if item]
        if items:
            baskets.append(items)
    if not baskets:
        raise BasketFileError(f"basket file {path} has no baskets (one per line, items comma-separated)")
    return baskets


def encode_baskets(baskets: Iterable[Collection[str]]) -> pd.DataFrame:
    """One-hot encode baskets into a boolean frame (columns sorted), without Python per-cell work."""
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    n = 0
    for n_row, basket in enumerate(baskets):
        for item in set(basket):
            rows.append(n_row)
            cols.append(vocabulary.setdefault(item, len(vocabulary)))
        n = n_row + 1
    names = sorted(vocabulary)
    position = np.empty(len(names), dtype=np.int64)
    position[np.array([vocabulary[name] for name in names], dtype=np.int64)] = np.arange(len(names))
    matrix = np.zeros((n, len(names)), dtype=bool)
    if rows:
        matrix[np.array(rows), position[np.array(cols)]] = True
    return pd.DataFrame(matrix, columns=names)


def _phrase(item: str) -> str:
    if item in _FLAGS:
        return _FLAGS[item]
    prefix, _, value = item.partition(":")
    if prefix == "action" and value in _ACTIONS:
        return _ACTIONS[value]
    if value and prefix in ("product", "trait"):
        return _PHRASES[prefix].format(value)  # the start-up's own names, verbatim
    if value and prefix in _PHRASES:
        return _PHRASES[prefix].format(value.replace("_", " "))
    return f"“{item}”"


def _is_user_item(item: str) -> bool:
    return item in _FLAGS or item.partition(":")[0] in _PHRASES


def rule_sentence(
    antecedents: Sequence[str], consequents: Sequence[str], confidence: float, lift: float, support: float
) -> str:
    """A rule as a sentence: user items in plain words, other baskets (e.g. groceries) as items."""
    items = [*antecedents, *consequents]
    if all(_is_user_item(item) for item in items):
        subject = "users who " + " and ".join(_phrase(i) for i in antecedents) if antecedents else "all users"
        outcome = " and ".join(_phrase(i) for i in consequents)
        return (
            f"Of {subject}, {confidence:.0%} also {outcome} "
            f"({lift:.1f}× as likely as average; {support:.1%} of users)."
        )
    subject = ", ".join(antecedents) if antecedents else "anything"
    return (
        f"Baskets with {subject} also contain {', '.join(consequents)} in {confidence:.0%} of cases "
        f"(lift {lift:.2f}; {support:.2%} of baskets)."
    )


def check_thresholds(min_support: float, min_confidence: float, min_lift: float, algorithm: str) -> None:
    """Refuse thresholds outside their range and unknown algorithms (both engines call this).

    Raises:
        RuleMiningError: naming the bad value.
    """
    if algorithm not in ALGORITHMS:
        raise RuleMiningError(f"algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    for name, value in (("min_support", min_support), ("min_confidence", min_confidence)):
        if not 0.0 < value <= 1.0:
            raise RuleMiningError(f"{name}={value} must be in (0, 1]")
    if min_lift < 0:
        raise RuleMiningError(f"min_lift={min_lift} must be >= 0")


def mine_rules(
    baskets: Iterable[Collection[str]] | pd.DataFrame,
    *,
    min_support: float = 0.01,
    min_confidence: float = 0.5,
    min_lift: float = 1.0,
    algorithm: str = "fpgrowth",
    max_len: int | None = 10,
    single_consequent: bool = True,
    outcomes: Collection[str] | None = None,
) -> list[AssociationRule]:
    """Mine rules from baskets (or an already one-hot frame), strongest lift first.

    Args:
        baskets: Lists of items, or a boolean one-hot frame.
        min_support: Minimum share of baskets containing the whole rule.
        min_confidence: Minimum P(consequent | antecedent).
        min_lift: Minimum lift (1 = independent).
        algorithm: "fpgrowth" (default, fast) or "apriori".
        max_len: Longest itemset (arules' default is 10).
        single_consequent: Keep only rules with one consequent item, as arules does.
        outcomes: If given, keep only rules whose consequents are all in it.

    Raises:
        RuleMiningError: A threshold outside its range or an unknown algorithm.
    """
    check_thresholds(min_support, min_confidence, min_lift, algorithm)
    onehot = baskets if isinstance(baskets, pd.DataFrame) else encode_baskets(baskets)
    if onehot.empty or onehot.shape[1] == 0:
        return []
    miner = fpgrowth if algorithm == "fpgrowth" else apriori
    itemsets = miner(onehot, min_support=min_support - TOLERANCE, use_colnames=True, max_len=max_len)
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        logger.info("no itemset of two or more items reaches support %s", min_support)
        return []
    # Items in every basket make mlxtend divide by zero for its extra metrics (certainty,
    # conviction); those come out inf/nan, which is the honest value, so no warning.
    with np.errstate(divide="ignore", invalid="ignore"):
        table = association_rules(itemsets, metric="confidence", min_threshold=min_confidence - TOLERANCE)
    if table.empty:
        return []
    keep = table["lift"] >= min_lift - TOLERANCE
    if single_consequent:
        keep &= table["consequents"].map(len) == 1
    if outcomes is not None:
        allowed = frozenset(outcomes)
        keep &= table["consequents"].map(lambda items: set(items) <= allowed)
    table = table[keep].sort_values(["lift", "confidence", "support"], ascending=False)
    return [_rule(row) for row in table.itertuples(index=False)]


def _rule(row: Any) -> AssociationRule:
    antecedents = tuple(sorted(row.antecedents))
    consequents = tuple(sorted(row.consequents))
    conviction = float(row.conviction)
    return AssociationRule(
        antecedents=antecedents,
        consequents=consequents,
        support=float(row.support),
        confidence=float(row.confidence),
        lift=float(row.lift),
        leverage=float(row.leverage),
        conviction=conviction if np.isfinite(conviction) else None,
        sentence=rule_sentence(
            antecedents, consequents, float(row.confidence), float(row.lift), float(row.support)
        ),
    )


def mine_basket_file(path: str | Path, **options: Any) -> list[AssociationRule]:
    """`read_baskets` then `mine_rules`: the Python side of `rapport analytics rules --baskets`."""
    return mine_rules(read_baskets(path), **options)
