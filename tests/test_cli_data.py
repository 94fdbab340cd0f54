"""The data commands of the CLI: one-line errors, non-zero exits, real effects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli import app
from store import count_events, create_db_engine, unit_of_work
from store.models import ImportBatch

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


@pytest.fixture
def any_db_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> str:
    """The CLI on an empty migrated database: SQLite file or PostgreSQL schema."""
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RAPPORT_DATABASE_URL", db_url)
    return db_url


def _stored(db_url: str) -> tuple[int, int]:
    """(events, recorded imports) in the database."""
    engine = create_db_engine(db_url)
    try:
        with unit_of_work(engine) as session:
            imports = session.scalar(select(func.count()).select_from(ImportBatch)) or 0
        return count_events(engine), imports
    finally:
        engine.dispose()


HEADER = "user_id,timestamp,kind,text,attributes\n"
GOOD_LINE = '{"user_id": 1, "timestamp": "2026-01-01T00:00:00Z", "kind": "message"}\n'


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("huge.csv", HEADER + "1,1e20,message,,\n", "timestamp '1e20' is out of range (years 1 to 9999)"),
        ("inf.csv", HEADER + "1,inf,message,,\n", "timestamp must be a finite number, got 'inf'"),
        (
            "year1.csv",
            HEADER + "1,0001-01-01T00:00:00+01:00,message,,\n",
            "timestamp '0001-01-01T00:00:00+01:00' is out of range in UTC (years 1 to 9999)",
        ),
        (
            "bigid.csv",
            HEADER + f"{2**70},2026-01-01,message,,\n",
            f"user_id {2**70} is out of range (a 64-bit integer)",
        ),
        ("markup.csv", HEADER + "1,[/x],message,,\n", "timestamp is not ISO 8601: '[/x]'"),
        (
            "nulkind.jsonl",
            GOOD_LINE + GOOD_LINE.replace('"message"', '"mes\\u0000sage"'),
            "kind contains a NUL character",
        ),
        (
            "nultext.jsonl",
            GOOD_LINE + GOOD_LINE.replace("}", ', "text": "a\\u0000b"}'),
            "text contains a NUL character",
        ),
        (
            "surrogate.jsonl",
            GOOD_LINE + GOOD_LINE.replace("}", ', "text": "a\\ud800b"}'),
            "text contains a lone surrogate (not valid Unicode)",
        ),
        (
            "nan.jsonl",
            GOOD_LINE + GOOD_LINE.replace("}", ', "attributes": {"score": NaN}}'),
            "attributes contains nan, which JSON cannot store",
        ),
        (
            "nan.csv",
            HEADER + '1,2026-01-01,message,,"{""a"": [Infinity]}"\n',
            "attributes contains inf, which JSON cannot store",
        ),
        (
            "deep.jsonl",
            GOOD_LINE + GOOD_LINE.replace("}", ', "attributes": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"),
            "invalid JSON: nested too deeply",
        ),
    ],
)
def test_a_bad_row_is_one_line_naming_it_and_nothing_changes(
    any_db_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: str, reason: str
) -> None:
    monkeypatch.setenv("RAPPORT_STORE_TEXT", "true")
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["events", "import", str(path)])
    assert isinstance(result.exception, SystemExit), result.exception  # no crash, a chosen exit
    assert result.exit_code == 1
    assert f"{path}:2: {reason}" in result.output.splitlines()
    assert "nothing imported" in result.output
    assert _stored(any_db_env) == (0, 0)


def test_skip_invalid_with_every_row_bad_fails_and_records_nothing(any_db_env: str, tmp_path: Path) -> None:
    path = tmp_path / "all-bad.csv"
    path.write_text(HEADER + "x,2026-01-01,message,,\n1,never,message,,\n", encoding="utf-8")
    result = runner.invoke(app, ["events", "import", "--skip-invalid", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: user_id must be an integer, got 'x'" in result.output.splitlines()
    assert "every row is invalid" in result.output
    assert _stored(any_db_env) == (0, 0)
    path.write_text(HEADER + "1,2026-01-01,message,,\n", encoding="utf-8")
    fixed = runner.invoke(app, ["events", "import", str(path)])
    assert fixed.exit_code == 0, fixed.output
    assert _stored(any_db_env) == (1, 1)


def test_a_csv_saved_by_excel_with_a_byte_order_mark_is_accepted(any_db_env: str, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "7,2026-01-01T00:00:00Z,[/x],,\r\n").encode("utf-8"))
    result = runner.invoke(app, ["events", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 1 events" in result.output
    assert _stored(any_db_env) == (1, 1)


def test_forget_reports_the_ids_it_removed_from_other_users_events(sqlite_env: Path) -> None:
    path = sqlite_env / "group.jsonl"
    path.write_text(
        '{"user_id": 5, "timestamp": "2026-01-01T00:00:00Z", "kind": "message", "chat_id": -1}\n'
        '{"user_id": 6, "timestamp": "2026-01-01T00:01:00Z", "kind": "join", "chat_id": -1,'
        ' "attributes": {"by": 5}}\n'
    )
    assert runner.invoke(app, ["events", "import", str(path)]).exit_code == 0
    forgot = runner.invoke(app, ["users", "forget", "5"])
    assert forgot.exit_code == 0, forgot.output
    assert (
        "forgot user 5: deleted 1 events, 1 users; removed their id from 1 event references" in forgot.output
    )
    exported = runner.invoke(app, ["events", "export"])
    assert '"attributes": {"by": null}' in exported.output


def test_text_that_is_not_stored_is_not_checked(any_db_env: str, tmp_path: Path) -> None:
    path = tmp_path / "nul-text.jsonl"
    path.write_text(GOOD_LINE.replace("}", ', "text": "a\\u0000b"}'), encoding="utf-8")
    result = runner.invoke(app, ["events", "import", str(path)])  # RAPPORT_STORE_TEXT is off
    assert result.exit_code == 0, result.output
    assert _stored(any_db_env) == (1, 1)
