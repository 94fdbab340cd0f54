"""`rapport jobs` and `rapport broadcast`: create, control, report, and send through the local Bot API."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from fakeapi import LocalBotAPI

runner = CliRunner()
USERS = (7101, 7102, 7103)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(f'{{"user_id": {u}, "timestamp": "2026-01-01T00:00:00Z", "kind": "join"}}\n' for u in USERS)
    )
    assert runner.invoke(app, ["events", "import", str(events)]).exit_code == 0
    return tmp_path


def test_broadcast_lifecycle_and_sending_from_the_cli(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = runner.invoke(
        app, ["broadcast", "--segment", "all", "--text", "Hello from the CLI", "--no-send"]
    )
    assert created.exit_code == 0, created.output
    assert "targeted 3" in created.output and "expected end" in created.output
    assert runner.invoke(app, ["broadcast", "pause", "1"]).exit_code == 0
    listed = runner.invoke(app, ["broadcast", "list"])
    assert "#1 broadcast" in listed.output and "paused" in listed.output
    assert runner.invoke(app, ["broadcast", "resume", "1"]).exit_code == 0
    jobs = runner.invoke(app, ["jobs", "list"])
    assert jobs.exit_code == 0 and "reengagement" in jobs.output and "retrain" in jobs.output

    api = LocalBotAPI()
    for user_id in USERS:
        api.add_user(user_id, f"User {user_id}")
    with api.serve_in_thread():
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", api.token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        sent = runner.invoke(app, ["jobs", "run", "deliveries"])
        assert sent.exit_code == 0, sent.output
        assert "sent 3" in sent.output
        assert api.messages_per_chat == {u: 1 for u in USERS}
    report = runner.invoke(app, ["broadcast", "report", "1"])
    assert "sent 3" in report.output and ": done" in report.output


def test_cli_errors_are_one_line(cli_env: Path) -> None:
    unknown = runner.invoke(app, ["jobs", "run", "nope"])
    assert unknown.exit_code == 1 and "unknown job 'nope'" in unknown.output
    segment = runner.invoke(app, ["broadcast", "--segment", "inactive:x", "--text", "hi", "--no-send"])
    assert segment.exit_code == 1 and "inactive:N" in segment.output
    missing = runner.invoke(app, ["broadcast", "pause", "99"])
    assert missing.exit_code == 1 and "no campaign #99" in missing.output
    past = runner.invoke(app, ["broadcast", "--segment", "all", "--text", "hi", "--at", "2020-01-01 10:00"])
    assert past.exit_code != 0 and "in the past" in past.output
    assert "Traceback" not in unknown.output + segment.output + missing.output


def test_reengagement_job_runs_now_without_a_token(cli_env: Path) -> None:
    result = runner.invoke(app, ["jobs", "run", "reengagement"])
    assert result.exit_code == 0, result.output
    assert "3 inactive users" in result.output
    assert "TELEGRAM_BOT_TOKEN is not set" in result.output
