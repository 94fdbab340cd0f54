"""Tests of the follow-up catalogue: the shipped file and validation errors naming file and id."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.catalogue import (
    DEFAULT_CATALOGUE,
    FollowupMessage,
    check_targets,
    load_catalogue,
    loads_catalogue,
)
from analytics.errors import AnalyticsError, CatalogueError, UnknownTargetError
from analytics.sequence import TokenVocabulary
from nlu import FALLBACK_INTENT, default_data_paths, load_training_data

# The bundled NLU data's labels: the intents a default install can log.
NLU_VOCABULARY = TokenVocabulary.of([*load_training_data(default_data_paths()).intents, FALLBACK_INTENT])

VALID = """
version: 1
messages:
  - id: pricing_tips
    text: {en: "Save with batches.", zh: "批量更省钱。"}
    targets: [pricing, billing]
    cooldown_days: 7
  - id: welcome
    text: {en: "Welcome!", zh: "欢迎！"}
    targets: [greet]
    default: true
  - id: come_back
    text: {en: "We miss you.", zh: "好久不见。"}
    targets: [greet]
    segments: [dormant]
    default: true
"""


def test_default_catalogue_is_valid_and_complete() -> None:
    catalogue = load_catalogue()
    assert catalogue.source == str(DEFAULT_CATALOGUE)
    ids = {message.id for message in catalogue.messages}
    assert len(ids) >= 10
    assert {"pricing_tips", "new_model_announcement", "api_key_setup", "we_miss_you"} <= ids
    for message in catalogue.messages:
        assert not NLU_VOCABULARY.unknown(message.targets)  # intents, kinds or product:<event>
        assert message.text_en and message.text_zh
    assert catalogue.default_for(None) is not None
    assert catalogue.default_for("Dormant askers") == catalogue.get("we_miss_you")


def test_parse_and_defaults() -> None:
    catalogue = loads_catalogue(VALID, source="test.yml")
    pricing = catalogue.get("pricing_tips")
    assert pricing == FollowupMessage(
        id="pricing_tips",
        text_en="Save with batches.",
        text_zh="批量更省钱。",
        targets=("pricing", "billing"),
        segments=(),
        cooldown_days=7,
        default=False,
    )
    assert pricing.text("zh-hans") == "批量更省钱。"
    assert pricing.text(None) == "Save with batches."
    assert catalogue.get("welcome").cooldown_days == 14
    assert catalogue.default_for("dormant").id == "come_back"  # type: ignore[union-attr]
    assert catalogue.default_for("active").id == "welcome"  # type: ignore[union-attr]
    assert catalogue.get("come_back").eligible_for("dormant")
    assert not catalogue.get("come_back").eligible_for("active")
    with pytest.raises(KeyError, match="nope"):
        catalogue.get("nope")


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        (
            "targets: [pricing, billing]",
            "targets: [pricing, pricng]",
            r"'pricing_tips': unknown target tokens \['pricng'\]",
        ),
        ("targets: [pricing, billing]", "targets: []", "'pricing_tips': 'targets' must list"),
        ('zh: "批量更省钱。"', 'zh: ""', r"'pricing_tips': text.zh must be"),
        ("cooldown_days: 7", "cooldown_days: -1", "'pricing_tips': cooldown_days"),
        ("cooldown_days: 7", "cooldown: 7", r"'pricing_tips': unknown keys \['cooldown'\]"),
        ("id: welcome", "id: pricing_tips", "'pricing_tips': duplicate id"),
        ("id: welcome", "id: Welcome Message", "message #2: id 'Welcome Message'"),
        ("segments: [dormant]", "segments: []", "'come_back': second default for all segments"),
        (
            "default: true\n  - id: come_back",
            "default: yes please\n  - id: come_back",
            "'welcome': default must",
        ),
        ("version: 1", "version: 2", "unsupported catalogue version 2"),
    ],
)
def test_validation_errors_name_file_and_message(replace: str, by: str, message: str) -> None:
    assert replace in VALID
    with pytest.raises(CatalogueError, match=message) as info:
        loads_catalogue(VALID.replace(replace, by), source="bad.yml", vocabulary=NLU_VOCABULARY)
    assert str(info.value).startswith("bad.yml: ")
    assert isinstance(info.value, AnalyticsError)
    assert isinstance(info.value, ValueError)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("messages: [", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"broken.yml: invalid YAML"):
        load_catalogue(broken)
    empty = tmp_path / "empty.yml"
    empty.write_text("messages: []", encoding="utf-8")
    with pytest.raises(CatalogueError, match="no messages"):
        load_catalogue(empty)
    with pytest.raises(CatalogueError, match="'messages' list"):
        loads_catalogue("- just a list")


def test_targets_are_checked_against_the_nlu_labels_and_event_kinds() -> None:
    # The shipped catalogue against the bundled NLU data: every target is an intent or a kind.
    load_catalogue(vocabulary=NLU_VOCABULARY)
    catalogue = loads_catalogue(VALID, source="mine.yml")  # parsing alone does not know the intents
    check_targets(catalogue, NLU_VOCABULARY)
    renamed = TokenVocabulary.of(NLU_VOCABULARY.intents - {"billing"})  # a model without `billing`
    with pytest.raises(
        UnknownTargetError, match=r"mine.yml: message 'pricing_tips': unknown target tokens \['billing'\]"
    ) as info:
        check_targets(catalogue, renamed)
    assert "pricing" in str(info.value)  # the known intents are listed
    assert isinstance(info.value, CatalogueError)
    # Event kinds are targets whatever the model: a catalogue of kinds passes with no intents.
    kinds_only = loads_catalogue(
        VALID.replace("[pricing, billing]", "[push_response, join]").replace("[greet]", "[reaction]")
    )
    check_targets(kinds_only, TokenVocabulary.of([]))
    with pytest.raises(
        UnknownTargetError, match=r"'pricing_tips': unknown target tokens \['pricing', 'billing'\]"
    ):
        check_targets(catalogue, TokenVocabulary.of([]))
