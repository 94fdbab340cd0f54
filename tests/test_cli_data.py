"""The data commands of the CLI: one-line errors, non-zero exits, real effects."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


@pytest.fixture
def sqlite_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    return tmp_path


def test_unreachable_database_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot connect to database postgresql+psycopg://nobody@127.0.0.1:1/none" in result.output
    assert "Traceback" not in result.output


def test_import_export_forget_round_trip(sqlite_env: Path) -> None:
    path = sqlite_env / "events.jsonl"
    path.write_text(
        '{"user_id": 5, "timestamp": "2026-01-01T00:00:00Z", "kind": "message", "intent": "pricing"}\n'
        '{"user_id": 6, "timestamp": "2026-01-01T00:01:00Z", "kind": "command", "intent": "start"}\n'
    )
    result = runner.invoke(app, ["events", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 2 events" in result.output
    exported = runner.invoke(app, ["events", "export", "--format", "csv"])
    assert exported.exit_code == 0
    assert "5,2026-01-01T00:00:00+00:00,message,pricing" in exported.output
    forgot = runner.invoke(app, ["users", "forget", "5"])
    assert "forgot user 5: deleted 1 events, 1 users" in forgot.output
    again = runner.invoke(app, ["users", "forget", "5"])
    assert "nothing stored about user 5" in again.output


def test_bad_import_names_lines_and_fails(sqlite_env: Path) -> None:
    path = sqlite_env / "bad.csv"
    path.write_text("user_id,timestamp,kind\n1,yesterday,message\n")
    result = runner.invoke(app, ["events", "import", str(path)])
    assert result.exit_code == 1
    assert "bad.csv:2: timestamp is not ISO 8601" in result.output
    assert "nothing imported" in result.output


def test_missing_import_file_fails_cleanly(sqlite_env: Path) -> None:
    result = runner.invoke(app, ["events", "import", str(sqlite_env / "nope.csv")])
    assert result.exit_code == 1
    assert "file does not exist" in result.output
