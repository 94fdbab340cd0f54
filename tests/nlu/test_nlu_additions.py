"""The deployment's added examples and topics: validated, Rasa YAML on disk, promoted after training."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import load_training_data
from nlu.additions import AdditionError, DeploymentData, NewTopic, check_intent_name

BASE = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
- intent: pricing
  examples: |
    - how much
    - price please
"""


@pytest.fixture
def data(tmp_path: Path) -> DeploymentData:
    base = tmp_path / "base.yml"
    base.write_text(BASE, encoding="utf-8")
    return DeploymentData(tmp_path / "nlu", [base])


@pytest.mark.parametrize("name", ["a", "Pricing", "price plan", "1st", "x" * 65, "ümlaut", "nlu_fallback"])
def test_bad_intent_names_are_refused(name: str) -> None:
    with pytest.raises(AdditionError, match="intent name"):
        check_intent_name(name)


def test_good_intent_names_pass_stripped() -> None:
    assert check_intent_name("  shipping_to_mars2 ") == "shipping_to_mars2"


def test_additions_are_rasa_yaml_the_reader_reads_and_change_the_version(data: DeploymentData) -> None:
    before = data.version()
    assert data.add_examples("pricing", ["what's the cost: 5$ / month?", "价格 是多少"]) == 2
    assert data.version() != before
    read = load_training_data(data.pending_path)
    assert [(e.text, e.intent) for e in read.examples] == [
        ("what's the cost: 5$ / month?", "pricing"),
        ("价格 是多少", "pricing"),
    ]
    assert "pricing" in data.known_intents()


def test_a_topic_needs_two_examples_and_short_titles(data: DeploymentData) -> None:
    topic = NewTopic("mars", {"en": "Mars", "zh": "火星"}, {"en": "No.", "zh": "不。"})
    with pytest.raises(AdditionError, match="at least 2 example"):
        data.create_topic(topic, ["ship to mars?"])
    long_title = NewTopic("mars", {"en": "M" * 41, "zh": "火星"}, {"en": "No.", "zh": "不。"})
    with pytest.raises(AdditionError, match="en title is 41 characters"):
        data.create_topic(long_title, ["ship to mars?", "mars delivery"])
    assert not data.directory.exists()
    assert data.create_topic(topic, ["ship to mars?", "mars delivery"]) == 2
    assert data.topics()["mars"].answer == {"en": "No.", "zh": "不。"}
    with pytest.raises(AdditionError, match="already exists"):
        data.create_topic(topic, ["mars again", "mars once more"])


def test_promotion_keeps_what_was_added_while_training_ran(data: DeploymentData, tmp_path: Path) -> None:
    data.add_examples("pricing", ["cost?", "fee?"])
    learned = data.pending()
    candidate = data.candidate_accepted(learned, tmp_path / "candidate.yml")
    data.add_examples("greet", ["good day"])  # arrives during the training
    data.promote(candidate, learned)
    assert [(e.text, e.intent) for e in data.accepted()] == [("cost?", "pricing"), ("fee?", "pricing")]
    assert [(e.text, e.intent) for e in data.pending()] == [("good day", "greet")]
    assert [e.text for e in data.active_data().examples][-2:] == ["cost?", "fee?"]
