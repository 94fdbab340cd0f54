"""`rapport accounts link-url|import` and `rapport users import`: real effects, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from store import create_db_engine
from store.links import verify_payload
from store.product import account_of, traits_of

runner = CliRunner()
SECRET = "cli-secret"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RAPPORT_LINK_SECRET", SECRET)
    return tmp_path


def test_link_url_prints_a_verifiable_link(env: Path) -> None:
    result = runner.invoke(
        app, ["accounts", "link-url", "acct_1", "--bot-username", "rapport_bot", "--ttl-days", "2"]
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert url.startswith("https://t.me/rapport_bot?start=")
    assert verify_payload(url.split("start=", 1)[1], SECRET).account_id == "acct_1"


def test_link_url_errors_are_one_line(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    too_long = runner.invoke(app, ["accounts", "link-url", "x" * 40, "--bot-username", "rapport_bot"])
    assert too_long.exit_code == 1 and "at most 32" in too_long.output and "Traceback" not in too_long.output
    no_bot = runner.invoke(app, ["accounts", "link-url", "acct"])
    assert no_bot.exit_code == 1 and "RAPPORT_BOT_USERNAME" in no_bot.output
    monkeypatch.delenv("RAPPORT_LINK_SECRET")
    monkeypatch.setenv("RAPPORT_BOT_USERNAME", "rapport_bot")
    no_secret = runner.invoke(app, ["accounts", "link-url", "acct"])
    assert no_secret.exit_code == 1 and "RAPPORT_LINK_SECRET is not set" in no_secret.output


def test_accounts_and_traits_import(env: Path) -> None:
    links = env / "links.csv"
    links.write_text("account_id,telegram_id\nacct_1,501\n", encoding="utf-8")
    result = runner.invoke(app, ["accounts", "import", str(links)])
    assert result.exit_code == 0, result.output
    assert "linked 1 accounts" in result.output
    traits = env / "traits.jsonl"
    traits.write_text('{"account_id": "acct_1", "name": "plan", "value": "free"}\n', encoding="utf-8")
    result = runner.invoke(app, ["users", "import", str(traits)])
    assert result.exit_code == 0, result.output
    assert "imported 1 traits" in result.output
    engine = create_db_engine(f"sqlite:///{env / 'var' / 'rapport.db'}")
    try:
        assert account_of(engine, 501) == "acct_1"
        assert traits_of(engine, "acct_1")["plan"][0].value == "free"
    finally:
        engine.dispose()
    forgot = runner.invoke(app, ["users", "forget", "501"])
    assert "deleted 1 traits, 1 account_links" in forgot.output


def test_bad_rows_name_the_line_and_change_nothing(env: Path) -> None:
    links = env / "links.csv"
    links.write_text("account_id,telegram_id\nacct_1,501\nacct_2,minus\n", encoding="utf-8")
    result = runner.invoke(app, ["accounts", "import", str(links)])
    assert result.exit_code == 1
    assert "links.csv:3: telegram_id must be a positive integer" in result.output
    assert "nothing imported" in result.output
    traits = env / "traits.csv"
    traits.write_text("account_id,name,value,type\nacct_1,spend,lots,numeric\n", encoding="utf-8")
    result = runner.invoke(app, ["users", "import", str(traits)])
    assert result.exit_code == 1 and "traits.csv:2: trait 'spend'" in result.output
    engine = create_db_engine(f"sqlite:///{env / 'var' / 'rapport.db'}")
    try:
        assert account_of(engine, 501) is None and traits_of(engine, "acct_1") == {}
    finally:
        engine.dispose()
