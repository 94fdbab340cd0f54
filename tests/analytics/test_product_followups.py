"""Product events in the follow-up sequences and catalogue: tokens, targets and history conditions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from numpy.typing import NDArray

from analytics.catalogue import FollowupMessage, check_targets, load_catalogue, loads_catalogue
from analytics.errors import CatalogueError, UnknownTargetError
from analytics.followup import UserContext, choose_followups
from analytics.sequence import MarkovModel, TokenVocabulary, event_token, stored_token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_product_events_are_tokens_of_their_name() -> None:
    assert event_token("product", None, "upgrade") == "product:upgrade"
    assert (
        stored_token("product", None, {"event": "api_error_429", "source": "product"})
        == "product:api_error_429"
    )
    assert stored_token("product", None, {"source": "product"}) == "product"  # no name: the kind
    assert stored_token("reaction", None, {"event": "x"}) == "reaction"  # only product events
    assert stored_token("message", "pricing", None) == "pricing"


def test_the_vocabulary_knows_any_named_product_event() -> None:
    vocabulary = TokenVocabulary.of(["pricing"])
    assert "product:upgrade" in vocabulary and "product:Order Completed" in vocabulary
    assert vocabulary.unknown(["product:", "pricng", "product:x"]) == ["product:", "pricng"]


CONDITIONAL = """
version: 1
messages:
  - id: upgrade_offer
    text: {en: "Upgrade?", zh: "升级？"}
    targets: ["product:upgrade"]
    requires: ["product:trial_started"]
    excludes: ["product:upgrade"]
  - id: welcome
    text: {en: "Welcome!", zh: "欢迎！"}
    targets: [greet]
    default: true
"""


def test_catalogue_conditions_are_read_and_checked() -> None:
    catalogue = loads_catalogue(CONDITIONAL, vocabulary=TokenVocabulary.of(["greet"]))
    offer = catalogue.get("upgrade_offer")
    assert offer.requires == ("product:trial_started",) and offer.excludes == ("product:upgrade",)
    assert offer.fits({"greet", "product:trial_started"})
    assert not offer.fits({"product:trial_started", "product:upgrade"})
    assert not offer.fits({"greet"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('excludes: ["product:trial_started"]', "both required and excluded"),
        ('requires: "product:trial_started"', "'requires' must be a list"),
        ('requires: ["product:"]', "names no product event"),
    ],
)
def test_bad_conditions_are_refused(change: str, message: str) -> None:
    text = CONDITIONAL.replace('excludes: ["product:upgrade"]', "").replace(
        'requires: ["product:trial_started"]',
        change + ('\n    requires: ["product:trial_started"]' if "excludes" in change else ""),
    )
    with pytest.raises(CatalogueError, match=message):
        loads_catalogue(text)


def test_an_unknown_condition_token_is_refused_with_a_vocabulary() -> None:
    text = CONDITIONAL.replace('requires: ["product:trial_started"]', "requires: [trail_started]")
    with pytest.raises(UnknownTargetError, match="trail_started"):
        loads_catalogue(text, vocabulary=TokenVocabulary.of(["greet"]))


def test_the_shipped_catalogue_targets_product_events() -> None:
    catalogue = load_catalogue()
    assert "product:api_error_429" in catalogue.get("rate_limit_guide").targets
    offer = catalogue.get("upgrade_offer")
    assert offer.requires == ("product:trial_started",) and offer.excludes == ("product:upgrade",)
    with pytest.raises(UnknownTargetError):  # its intents checked, product tokens accepted
        check_targets(catalogue, TokenVocabulary.of([]))


class FixedModel:
    def __init__(self, distribution: dict[str, float]) -> None:
        self.classes_ = np.array(sorted(distribution), dtype=np.str_)
        self.row = np.array([distribution[token] for token in self.classes_.tolist()])

    def predict_proba(self, prefixes: Sequence[Sequence[str]]) -> NDArray[np.float64]:
        return np.tile(self.row, (len(prefixes), 1))


def test_the_chooser_sends_the_offer_only_to_trial_users_who_did_not_upgrade() -> None:
    messages = list(loads_catalogue(CONDITIONAL).messages)
    model = FixedModel({"product:upgrade": 0.9, "greet": 0.1})
    users = [
        UserContext(1, ("greet", "product:trial_started", "greet"), None, {}),
        UserContext(2, ("product:trial_started", "product:upgrade", "greet"), None, {}),
        UserContext(3, ("greet", "greet", "greet"), None, {}),
    ]
    chosen = dict(
        choose_followups(
            users, messages, stats={}, model=model, now=NOW, rng=np.random.default_rng(0), exploration=0.0
        )
    )
    assert chosen[1] is not None and chosen[1].message_id == "upgrade_offer"
    assert chosen[2] is not None and chosen[2].message_id == "welcome"
    assert chosen[3] is not None and chosen[3].message_id == "welcome"


def test_a_burst_of_rate_limit_errors_makes_the_guide_likely() -> None:
    """A Markov model trained on sequences where 429s precede rate-limit questions predicts it."""
    sequences = [["greet", "product:api_error_429", "product:api_error_429", "rate_limits"]] * 20
    sequences += [["greet", "pricing", "billing"]] * 20
    model = MarkovModel().fit(sequences)
    messages = [
        FollowupMessage("rate_limit_guide", "g", "g", ("rate_limits", "product:api_error_429")),
        FollowupMessage("pricing_tips", "p", "p", ("pricing", "billing")),
    ]
    users = [UserContext(1, ("greet", "product:api_error_429", "product:api_error_429"), None, {})]
    ((_user, choice),) = choose_followups(
        users, messages, stats={}, model=model, now=NOW, rng=np.random.default_rng(0), exploration=0.0
    )
    assert choice is not None and choice.message_id == "rate_limit_guide"
