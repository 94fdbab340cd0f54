"""Saving and loading models: round trip, version check, checksums, and no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlu import FORMAT_VERSION, ModelLoadError, ModelVersionError, NLUModel, load_model, save_model
from nlu.storage import METADATA_FILE, _sha256


@pytest.fixture
def saved(default_model: NLUModel, tmp_path: Path) -> Path:
    model_dir = tmp_path / "model"
    save_model(default_model, model_dir)
    return model_dir


def test_round_trip_parses_identically(default_model: NLUModel, saved: Path) -> None:
    loaded = load_model(saved)
    for text in ["hello", "专业版多少钱", "my api key leaked on 2026-01-01"]:
        assert loaded.parse(text) == default_model.parse(text)
    metadata = json.loads((saved / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["data_hash"] == default_model.metadata["data_hash"]
    assert set(metadata["labels"]) == set(default_model.labels)
    assert set(metadata["thresholds"]) == {"threshold", "ambiguity_threshold"}
    assert "metrics" in metadata
    assert not list(saved.glob("*.pkl")) and not list(saved.glob("*.tmp"))


def test_missing_directory_and_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match=r"has no metadata\.json"):
        load_model(tmp_path)


def test_other_format_version_is_refused(saved: Path) -> None:
    path = saved / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelVersionError, match=f"format version {FORMAT_VERSION + 1}"):
        load_model(saved)


def test_tampered_file_is_refused(saved: Path) -> None:
    (saved / "entities.json").write_text('{"patterns": [], "synonyms": {}}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="does not match its checksum"):
        load_model(saved)


def test_pickled_arrays_are_never_loaded(saved: Path) -> None:
    arrays = saved / "arrays.npz"
    np.savez(arrays, idf=np.array([object()], dtype=object), coef=np.zeros(1), intercept=np.zeros(1))
    path = saved / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["files"]["arrays.npz"] = _sha256(arrays)
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="damaged"):
        load_model(saved)


def test_files_outside_the_model_directory_are_refused(saved: Path, tmp_path: Path) -> None:
    path = saved / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    (saved / "vocabulary.json").rename(tmp_path / "vocabulary.json")
    (saved / "vocabulary.json").symlink_to(tmp_path / "vocabulary.json")
    path.write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(saved)


def test_garbage_metadata_is_a_clear_error(saved: Path) -> None:
    (saved / METADATA_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(saved)


def test_a_version_2_model_still_loads(toy_file: Path, tmp_path: Path) -> None:
    from nlu import TrainingConfig, load_training_data, train

    model = train(load_training_data([toy_file]), config=TrainingConfig(sentence_encoder=None))
    assert "nlu_fallback" not in model.classifier.classes_  # too little data for a nonsense class
    model_dir = tmp_path / "v2"
    save_model(model, model_dir)
    path = model_dir / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["format_version"] = 2
    del metadata["classes"]  # version 2 wrote the classifier's classes as "labels" only
    path.write_text(json.dumps(metadata), encoding="utf-8")
    loaded = load_model(model_dir)
    assert loaded.labels == model.labels
    for text in ["hello", "how much is the pro plan", "will it rain"]:
        assert loaded.parse(text) == model.parse(text)
