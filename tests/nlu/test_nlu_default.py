"""The bundled data and the default model: trained on first use, reloaded, retrained when data changes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nlu import load_or_train_default, read
from nlu.default import default_data_paths
from nlu.storage import FORMAT_VERSION, METADATA_FILE

SHARED_INTENTS = {
    "greet", "goodbye", "thanks", "getting_started", "pricing", "api_keys", "rate_limits", "models",
    "billing", "account", "data_privacy", "bug_report", "feature_request", "community_events", "docs",
    "fine_tuning", "service_status", "human_handoff", "out_of_scope",
}  # fmt: skip


@pytest.mark.parametrize("language", ["en", "zh"])
def test_bundled_data_covers_every_intent_with_15_examples(language: str) -> None:
    (path,) = [p for p in default_data_paths() if p.stem == language]
    data = read(path)
    counts = Counter(data.labels)
    assert set(counts) == SHARED_INTENTS
    assert min(counts.values()) >= 15
    assert {a.entity for e in data.examples for a in e.entities} >= {"plan", "model", "date", "email"}


def test_trains_once_then_loads(tmp_path: Path) -> None:
    model_dir = tmp_path / "nlu"
    first = load_or_train_default(model_dir)
    stamp = (model_dir / METADATA_FILE).stat().st_mtime_ns
    second = load_or_train_default(model_dir)
    assert (model_dir / METADATA_FILE).stat().st_mtime_ns == stamp
    assert second.parse("hello") == first.parse("hello")
    assert set(second.labels) == SHARED_INTENTS


def test_retrains_when_the_data_changes_or_the_model_is_unreadable(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    rows = "hi,greet\nhello,greet\nhey,greet\nbye,goodbye\nsee you,goodbye\nciao,goodbye\n"
    data.write_text("text,intent\n" + rows)
    model_dir = tmp_path / "model"
    load_or_train_default(model_dir, [data])
    old_hash = json.loads((model_dir / METADATA_FILE).read_text())["data_hash"]
    data.write_text(data.read_text() + "thanks,thanks\nthank you,thanks\nthx,thanks\n")
    model = load_or_train_default(model_dir, [data])
    assert "thanks" in model.labels
    new_hash = json.loads((model_dir / METADATA_FILE).read_text())["data_hash"]
    assert new_hash != old_hash
    (model_dir / METADATA_FILE).write_text('{"format_version": 0}')
    assert "thanks" in load_or_train_default(model_dir, [data]).labels


def test_a_model_of_an_older_format_version_is_retrained(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(
        "text,intent\nhi,greet\nhello,greet\nhey,greet\nbye,goodbye\nsee you,goodbye\nciao,goodbye\n"
    )
    model_dir = tmp_path / "model"
    load_or_train_default(model_dir, [data])
    path = model_dir / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["format_version"] = 2  # same data hash: only the version says it predates the nonsense class
    path.write_text(json.dumps(metadata))
    load_or_train_default(model_dir, [data])
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION
