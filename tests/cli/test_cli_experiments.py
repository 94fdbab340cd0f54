"""`rapport broadcast --variant ...` and `rapport experiments list|report`: create, send, decide, report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from cli.broadcast import parse_duration
from fakeapi import LocalBotAPI

runner = CliRunner()
USERS = tuple(range(8001, 8041))


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RAPPORT_HOLDOUT_SHARE", "0")
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(f'{{"user_id": {u}, "timestamp": "2026-01-01T00:00:00Z", "kind": "join"}}\n' for u in USERS)
    )
    assert runner.invoke(app, ["events", "import", str(events)]).exit_code == 0
    return tmp_path


def test_variants_with_buttons_are_sent_and_reported(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created = runner.invoke(
        app,
        ["broadcast", "--segment", "all", "--variant", "Try our new model", "--variant", "New model is out",
         "--button", "A:Show me", "--button", "Docs|https://example.com/docs", "--control-share", "0.25",
         "--goal", "click", "--no-send"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "targeted 40" in created.output and "experiment #1 (broadcast)" in created.output
    assert "“Docs” are not trackable" in created.output
    assert "experiment #1: 2 variants, running (rapport experiments report 1)" in created.output
    api = LocalBotAPI()
    for user_id in USERS:
        api.add_user(user_id, f"User {user_id}")
    with api.serve_in_thread():
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", api.token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        sent = runner.invoke(app, ["jobs", "run", "deliveries"])
        assert sent.exit_code == 0, sent.output
        records = list(api.sent)
    assert records and set(api.messages_per_chat.values()) == {1}
    keyboards = {r.text: r.reply_markup["inline_keyboard"] for r in records if r.reply_markup}
    a, b = keyboards["Try our new model"], keyboards["New model is out"]
    assert a[0][0]["text"] == "Show me" and a[0][0]["callback_data"].startswith("push:")
    assert a[1][0] == {"text": "Docs", "url": "https://example.com/docs"}
    assert b == [[{"text": "Docs", "url": "https://example.com/docs"}]]  # "A:" put "Show me" on A only
    report = runner.invoke(app, ["experiments", "report", "1", "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    arms = {arm["arm"]: arm for arm in data["arms"]}
    assert set(arms) == {"A", "B", "control"} and data["goal"] == "click"
    assert sum(arm["sends"] for arm in arms.values()) == 40
    assert arms["A"]["sends"] + arms["B"]["sends"] == len(records)
    listed = runner.invoke(app, ["experiments", "list"])
    assert listed.exit_code == 0 and "experiment #1" in listed.output and "#followups" in listed.output


def test_phased_experiment_is_decided_by_the_job_and_says_the_default_was_sent(cli_env: Path) -> None:
    created = runner.invoke(
        app,
        ["broadcast", "--segment", "all", "--variant", "One", "--variant", "Two", "--test-share", "0.5",
         "--pick-winner-after", "1s", "--default-variant", "B", "--no-send"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "phased: 50% of the audience tested first" in created.output
    targeted = int(created.output.split("targeted ")[1].split(",")[0])
    assert 0 < targeted < len(USERS)
    time.sleep(1.1)
    decided = runner.invoke(app, ["jobs", "run", "experiments"])
    assert decided.exit_code == 0, decided.output
    assert "no significant winner" in decided.output and "default B" in decided.output
    again = runner.invoke(app, ["jobs", "run", "experiments", "--no-send"])
    assert "no experiment was due" in again.output
    report = runner.invoke(app, ["experiments", "report", "1"])
    assert ": decided" in report.output and "decision: no significant winner" in report.output
    campaign = runner.invoke(app, ["broadcast", "report", "1", "--json"])
    assert json.loads(campaign.output)["targeted"] == len(USERS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "only one"], "2 to 8 variants"),
        (
            ["--variant", "a", "--variant", "b", "--test-share", "0.2", "--pick-winner-after", "soon"],
            "duration",
        ),
        (["--variant", "a", "--variant", "b", "--test-share", "0.2"], "pick-winner-after"),
        (["--variant", "a", "--text", "b"], "either --text or --variant"),
        (["--text", "a", "--control-share", "0.2"], "need --variant"),
        (["--variant", "a", "--variant", "b", "--button", "C:x"], "only A, B exist"),
        (["--variant", "a", "--variant", "b", "--goal", "click:x"], "goal 'click:x'"),
    ],
)
def test_bad_experiment_options_fail_with_one_line_and_create_nothing(
    cli_env: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["broadcast", "--segment", "all", "--no-send", *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert "No campaigns yet" in runner.invoke(app, ["broadcast", "list"]).output


def test_report_of_an_unknown_experiment_is_one_line(cli_env: Path) -> None:
    missing = runner.invoke(app, ["experiments", "report", "99"])
    assert missing.exit_code == 1 and "no experiment #99" in missing.output
    bad = runner.invoke(app, ["experiments", "report", "abc"])
    assert bad.exit_code == 1 and "expected a number, 'followups' or followup:<message id>" in bad.output


def test_durations() -> None:
    assert parse_duration("90m").total_seconds() == 5400
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("1d").total_seconds() == 86400
    assert parse_duration("2.5h").total_seconds() == 9000
