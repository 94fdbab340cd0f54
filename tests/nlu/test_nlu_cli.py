"""`rapport nlu` commands via Typer's CliRunner: train, parse, evaluate and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.nlu import app

runner = CliRunner()


def test_train_parse_evaluate(tmp_path: Path, toy_file: Path) -> None:
    out = tmp_path / "model"
    trained = runner.invoke(app, ["train", "--data", str(toy_file), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert (out / "metadata.json").is_file()

    parsed = runner.invoke(app, ["parse", "--model", str(out)], input="hello there\n\nweather today?\n")
    assert parsed.exit_code == 0, parsed.output
    lines = [json.loads(line) for line in parsed.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["hello there", "", "weather today?"]
    assert lines[0]["intent"]["name"] == "greet"
    assert lines[1]["intent"]["name"] == "nlu_fallback"

    evaluated = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(toy_file), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["n_examples"] == 12
    assert {"accuracy", "macro_f1", "per_intent", "out_of_scope_recall", "confused_pairs"} <= set(report)

    table = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(toy_file)])
    assert table.exit_code == 0 and "macro F1" in table.stdout


def test_train_without_encoder(tmp_path: Path, toy_file: Path) -> None:
    out = tmp_path / "plain"
    trained = runner.invoke(app, ["train", "--data", str(toy_file), "--out", str(out), "--no-encoder"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((out / "metadata.json").read_text(encoding="utf-8"))["encoder"] is None
    parsed = runner.invoke(app, ["parse", "--model", str(out)], input="hello there\n")
    assert json.loads(parsed.stdout)["intent"]["name"] == "greet"


def test_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", "--model", str(tmp_path / "none")], input="hi\n")
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_bad_training_data_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: a\n  examples: [\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "YAML error" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_serve_refuses_a_missing_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "none"), "--port", "0"])
    assert result.exit_code == 1
    assert "does not exist" in result.output
