"""Follow-up variants end to end: `jobs run reengagement` to the fake Bot API, then the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analytics.catalogue import load_catalogue
from cli import app
from fakeapi import LocalBotAPI
from scheduler.policy import in_holdout

runner = CliRunner()
USERS = tuple(range(9001, 9061))
CATALOGUE = """
messages:
  - id: tips
    text: {en: "Tips.", zh: "提示。"}
    targets: [pricing]
    default: true
    control_share: 0.2
    variants:
      - text: {en: "Save with batches.", zh: "批量更省钱。"}
        buttons: [{text: "Show me"}, {text: "Docs", url: "https://example.com/docs"}]
      - text: {en: "Batches cost less.", zh: "批量更便宜。"}
"""


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RAPPORT_HOLDOUT_SHARE", "0.1")
    monkeypatch.setenv("RAPPORT_BEST_TIME_SENDS", "false")
    monkeypatch.setenv("RAPPORT_QUIET_HOURS_START", "0")
    monkeypatch.setenv("RAPPORT_QUIET_HOURS_END", "0")
    monkeypatch.setenv("RAPPORT_FOLLOWUP_EXPLORATION", "0")
    catalogue = tmp_path / "followups.yml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    monkeypatch.setenv("RAPPORT_FOLLOWUP_CATALOGUE", str(catalogue))
    events = tmp_path / "events.jsonl"
    events.write_text(
        "".join(f'{{"user_id": {u}, "timestamp": "2026-01-01T00:00:00Z", "kind": "join"}}\n' for u in USERS)
    )
    assert runner.invoke(app, ["events", "import", str(events)]).exit_code == 0
    return catalogue


def test_variants_reach_the_bot_api_and_the_report_counts_them(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = load_catalogue(cli_env).get("tips")
    treated = [u for u in USERS if not in_holdout(u, 0.1)]
    arms = {u: message.arm_for(u) for u in treated}
    api = LocalBotAPI()
    for user_id in USERS:
        api.add_user(user_id, f"User {user_id}")
    with api.serve_in_thread():
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", api.token)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
        run = runner.invoke(app, ["jobs", "run", "reengagement"])
        assert run.exit_code == 0, run.output
        records = list(api.sent)
    assert f"control {sum(a is None for a in arms.values())}" in run.output
    by_chat = {r.chat_id: r for r in records}
    assert set(by_chat) == {u for u, arm in arms.items() if arm is not None}
    for user_id, record in by_chat.items():
        arm = arms[user_id]
        assert arm is not None and record.text == arm.text_en
        if arm.key == "A":
            keyboard = record.reply_markup["inline_keyboard"]
            assert keyboard[0][0]["text"] == "Show me" and keyboard[0][0]["callback_data"].startswith("push:")
            assert keyboard[1][0] == {"text": "Docs", "url": "https://example.com/docs"}
        else:
            assert not record.reply_markup
    report = runner.invoke(app, ["experiments", "report", "followup:tips", "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    figures = {arm["arm"]: arm["sends"] for arm in data["arms"]}
    assert figures == {
        "A": sum(a is not None and a.key == "A" for a in arms.values()),
        "B": sum(a is not None and a.key == "B" for a in arms.values()),
        "control": sum(a is None for a in arms.values()),
    }
    assert data["kind"] == "followup" and data["name"] == "followup:tips"
    text = runner.invoke(app, ["experiments", "report", "followup:tips"])
    assert "URL button(s) “Docs” are not trackable" in text.output


def test_a_bad_variant_catalogue_stops_the_job_with_one_line_and_plans_nothing(cli_env: Path) -> None:
    one_variant = CATALOGUE.split('      - text: {en: "Batches')[0]  # variant A only
    cli_env.write_text(one_variant, encoding="utf-8")
    run = runner.invoke(app, ["jobs", "run", "reengagement", "--no-send"])
    assert run.exit_code == 1 and "'tips': 'variants' must list 2 to 8 variants, got 1" in run.output
    assert "Traceback" not in run.output
    assert "No campaigns yet" in runner.invoke(app, ["broadcast", "list"]).output
    missing = runner.invoke(app, ["experiments", "report", "followup:tips"])
    assert missing.exit_code == 1 and "'tips' has no variant experiment" in missing.output
