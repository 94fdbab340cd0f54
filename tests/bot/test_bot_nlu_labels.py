"""The composition roots hand the NLU model's labels to the scheduler, which checks its catalogue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.app import nlu_labels
from cli.jobs import _nlu_labels
from nlu import FALLBACK_INTENT, RemoteRasaParser
from store import load_settings


def test_the_local_models_labels_and_its_fallback_reach_the_scheduler(nlu_parser: Any) -> None:
    labels = nlu_labels(nlu_parser)
    assert labels is not None
    assert FALLBACK_INTENT in labels
    assert {"pricing", "greet"} <= labels
    assert set(nlu_parser.labels) <= labels


def test_a_remote_rasa_servers_labels_are_unknown(nlu_parser: Any) -> None:
    assert nlu_labels(RemoteRasaParser("http://127.0.0.1:9", fallback=nlu_parser)) is None


def test_the_cli_reads_the_labels_from_the_saved_models_metadata(
    nlu_parser: Any, nlu_model_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings(nlu_model_dir=nlu_model_dir)
    assert _nlu_labels(settings) == nlu_labels(nlu_parser)
    assert _nlu_labels(load_settings(nlu_model_dir=tmp_path / "none")) is None
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metadata.json").write_text(json.dumps({"format_version": 0}), encoding="utf-8")
    assert _nlu_labels(load_settings(nlu_model_dir=tmp_path / "old")) is None
