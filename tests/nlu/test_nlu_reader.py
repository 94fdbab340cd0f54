"""Reading Rasa 3.x YAML and CSV training data, and the errors and warnings about it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nlu import TrainingDataError, load_training_data, reads_csv, reads_yaml, validate
from nlu.training_data import EntityAnnotation


def test_reads_intents_entities_synonyms_regex_and_lookup(toy_file: Path) -> None:
    data = load_training_data([toy_file])
    assert data.intents == ["greet", "pricing", "weather"]
    example = next(e for e in data.examples if e.text.startswith("price of the"))
    assert example.text == "price of the professional plan"
    assert example.entities == (EntityAnnotation("plan", 13, 25, "pro"),)
    assert example.text[13:25] == "professional"
    assert example.source == f"{toy_file}:13"
    assert data.synonyms == {"professional": "pro", "enterprise plan": "enterprise"}
    assert [(r.name, r.pattern) for r in data.regexes] == [("date", r"\d{4}-\d{2}-\d{2}")]
    assert [(t.name, t.elements) for t in data.lookups] == [("model", ("rapport-mini", "rapport-pro"))]


def test_annotation_forms_and_roles() -> None:
    data = reads_yaml(
        "nlu:\n- intent: fly\n  examples: |\n"
        '    - from [Berlin]{"entity": "city", "role": "departure"} to [NYC](city:New York)\n'
    )
    (example,) = data.examples
    assert example.text == "from Berlin to NYC"
    assert example.entities == (
        EntityAnnotation("city", 5, 11, "Berlin", "departure"),
        EntityAnnotation("city", 15, 18, "New York"),
    )
    assert data.synonyms == {"nyc": "New York"}


def test_retrieval_intents_keep_their_full_name() -> None:
    data = reads_yaml("nlu:\n- intent: faq/ask_price\n  examples: |\n    - what does it cost\n")
    assert data.intents == ["faq/ask_price"]


def test_examples_as_a_list_of_text_maps() -> None:
    data = reads_yaml("nlu:\n- intent: greet\n  examples:\n  - text: hi\n  - text: hello\n")
    assert data.texts == ["hi", "hello"]


def test_folder_reads_every_file_and_ignores_non_nlu_yaml(tmp_path: Path, toy_file: Path) -> None:
    (tmp_path / "domain.yml").write_text('version: "3.1"\nintents:\n- greet\n', encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "extra.csv").write_text("text,intent\nbye now,goodbye\nsee you,goodbye\n", encoding="utf-8")
    data = load_training_data([tmp_path])
    assert "goodbye" in data.intents and "greet" in data.intents


def test_csv_maps_oos_to_out_of_scope() -> None:
    data = reads_csv("text,intent\nhello,greet\nwhat is love,oos\n")
    assert data.labels == ["greet", "out_of_scope"]


@pytest.mark.parametrize("header", ["text,label", "Text,Category", "id,text,intent", "label,text"])
def test_csv_label_column_may_be_named_label_or_category(header: str) -> None:
    names = header.split(",")
    values = {"text": "where is my card", "label": "card_arrival", "category": "card_arrival"}
    values["intent"] = "card_arrival"
    row = ",".join(values.get(name.lower(), "7") for name in names)
    data = reads_csv(f"{header}\n{row}\n")
    assert data.labels == ["card_arrival"]
    assert data.examples[0].text == "where is my card"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n  - oops: [\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=rf"{bad}:\d+: YAML error"):
        load_training_data([bad])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("nlu:\n- intent: greet\n", r"<string>:2: intent 'greet' has no 'examples'"),
        ("nlu:\n- intent: greet\n  examples: |\n    - hi\n    oops\n", r"<string>:5: example must start"),
        ("nlu:\n- regex: d\n  examples: |\n    - ([0-9\n", r"<string>:4: bad regex"),
        ("nlu:\n- greet: x\n", r"<string>:2: item needs exactly one of"),
        ("nlu: hello\n", r"<string>:1: 'nlu' must be a list"),
        ('nlu:\n- intent: a\n  examples: |\n    - [x]{"role": 1}\n', r"<string>:4: .*needs an 'entity' key"),
        ("nlu:\n- intent: a\n  examples: |\n    - [x]{not json}\n", r"<string>:4: bad entity annotation"),
    ],
)
def test_structural_errors_point_at_the_line(content: str, match: str) -> None:
    with pytest.raises(TrainingDataError, match=match):
        reads_yaml(content)


def test_csv_errors() -> None:
    with pytest.raises(TrainingDataError, match="<string>:1: CSV header"):
        reads_csv("sentence,label\nhi,greet\n")
    with pytest.raises(TrainingDataError, match="<string>:3: empty intent"):
        reads_csv("text,intent\nhi,greet\nhello,\n")


def test_missing_path_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no such file"):
        load_training_data([tmp_path / "nope.yml"])
    other = tmp_path / "data.txt"
    other.write_text("hi", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="unknown training data format"):
        load_training_data([other])
    empty = tmp_path / "empty.yml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="no intent examples"):
        load_training_data([empty])


def test_warns_on_thin_intents_and_conflicting_examples(caplog: pytest.LogCaptureFixture) -> None:
    data = reads_yaml(
        "nlu:\n- intent: a\n  examples: |\n    - hello there\n    - hi\n"
        "- intent: b\n  examples: |\n    - Hello  there\n"
    )
    with caplog.at_level(logging.WARNING, logger="nlu.training_data"):
        warnings = validate(data)
    assert len(warnings) == 2
    assert "under intent 'b' and under 'a'" in warnings[0] and "<string>:8" in warnings[0]
    assert "intent 'b' has 1 example(s)" in warnings[1]
    assert len(caplog.records) == 2


def test_duplicates_and_blank_examples_are_dropped() -> None:
    from nlu.training_data import TrainingData, sanitize

    data = reads_yaml("nlu:\n- intent: a\n  examples: |\n    - hi\n    - hi\n    -\n    - yo\n")
    assert [e.text for e in sanitize(data.examples)] == ["hi", "yo"]
    assert sanitize(TrainingData().examples) == ()
