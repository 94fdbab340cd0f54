"""Event import/export: all or nothing, every bad line named, no duplicate imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from store import ImportFileError, count_events, import_events
from store.transfer import export_to_string

GOOD_CSV = (
    "user_id,timestamp,kind,intent,chat_id,text,attributes\n"
    '1,2026-01-01T10:00:00Z,message,pricing,1,hello,"{""a"": 1}"\n'
    "1,2026-01-02T10:00:00+02:00,command,start,,,\n"
    "2,1767261600,reaction,,-100,,\n"
)


def test_csv_import_round_trips_through_jsonl_export(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(GOOD_CSV)
    report = import_events(engine, path, store_text=True)
    assert report.imported == 3
    exported = [json.loads(line) for line in export_to_string(engine).splitlines()]
    assert [(e["user_id"], e["kind"], e["intent"]) for e in exported] == [
        (1, "message", "pricing"),
        (1, "command", "start"),
        (2, "reaction", None),
    ]
    assert exported[0]["attributes"] == {"a": 1}
    assert exported[0]["text"] == "hello"
    assert exported[1]["timestamp"] == "2026-01-02T08:00:00+00:00"
    again = tmp_path / "again.jsonl"
    again.write_text(export_to_string(engine))
    import_events(engine, again)
    assert count_events(engine) == 6


def test_bad_rows_reject_the_whole_file_with_line_numbers(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(GOOD_CSV + "abc,2026-01-01,message,,,,\n3,not-a-date,message,,,,\n4,2026-01-01,,,,,\n")
    with pytest.raises(ImportFileError) as info:
        import_events(engine, path)
    assert [row.line for row in info.value.bad_rows] == [5, 6, 7]
    assert "user_id must be an integer" in info.value.bad_rows[0].reason
    assert count_events(engine) == 0


def test_skip_invalid_imports_the_good_rows(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"user_id": 1, "timestamp": "2026-01-01T00:00:00Z", "kind": "message"}\n'
        "{not json\n"
        '{"user_id": 1, "timestamp": "2026-01-01T00:00:00Z", "kind": "message", "attributes": [1]}\n'
        '{"user_id": 2, "timestamp": "2026-01-01T00:00:00Z", "kind": "message", "confidence": "x"}\n'
    )
    report = import_events(engine, path, skip_invalid=True)
    assert report.imported == 1
    assert [row.line for row in report.skipped] == [2, 3, 4]
    assert count_events(engine) == 1


def test_the_same_file_is_not_imported_twice(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(GOOD_CSV)
    import_events(engine, path)
    with pytest.raises(ImportFileError, match="already imported"):
        import_events(engine, path)
    assert count_events(engine) == 3
    import_events(engine, path, allow_duplicate=True)
    assert count_events(engine) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no events"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"foo,bar\n1,2\n", "header must name"),
    ],
)
def test_corrupt_files_are_refused_clearly(
    engine: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "corrupt.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        import_events(engine, path)
    assert count_events(engine) == 0
