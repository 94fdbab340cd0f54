"""The event import keyed by product account id: linked rows enter the log, unlinked ones wait."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from store import ImportFileError, import_events, user_events
from store.db import unit_of_work
from store.product import LinkSource, link_account, pending_count
from store.vocabulary import EventKind


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _product(account: str, name: str, minute: int, **extra: object) -> dict[str, object]:
    return {
        "account_id": account,
        "timestamp": f"2026-04-01T10:{minute:02d}:00Z",
        "kind": "product",
        "attributes": {"event": name, **extra},
    }


def _link(engine: Engine, account: str, user: int) -> int:
    with unit_of_work(engine) as session:
        return link_account(session, account, user, source=LinkSource.IMPORT).attached


def test_rows_keyed_by_account_are_resolved_through_the_links(engine: Engine, tmp_path: Path) -> None:
    _link(engine, "acct-1", 501)
    path = _jsonl(
        tmp_path / "product.jsonl",
        [
            _product("acct-1", "trial_started", 1, properties={"plan": "pro"}),
            _product("acct-2", "upgrade", 2, message_id="m-2"),  # not linked yet
            {"user_id": 501, "timestamp": "2026-04-01T10:03:00Z", "kind": "message", "intent": "pricing"},
        ],
    )
    report = import_events(engine, path)
    assert (report.imported, report.pending) == (2, 1)
    first, second = user_events(engine, 501)
    assert first.kind == EventKind.PRODUCT and first.attributes == {
        "source": "product",
        "event": "trial_started",
        "account_id": "acct-1",
        "properties": {"plan": "pro"},
    }
    assert second.intent == "pricing"
    assert pending_count(engine, "acct-2") == 1
    assert _link(engine, "acct-2", 502) == 1  # the waiting event attaches on linking
    [upgrade] = user_events(engine, 502)
    assert upgrade.attributes is not None and upgrade.attributes["message_id"] == "m-2"
    assert upgrade.ts == datetime(2026, 4, 1, 10, 2, tzinfo=UTC)


def test_a_csv_keyed_by_account_id_alone_is_accepted(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "product.csv"
    path.write_text(
        "account_id,timestamp,kind,attributes\n"
        'acct-9,2026-04-01T10:00:00Z,product,"{""event"": ""upgrade""}"\n'
    )
    assert import_events(engine, path).pending == 1


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            {"account_id": "a", "timestamp": "2026-04-01T10:00:00Z", "kind": "message"},
            "must be a product event",
        ),
        ({"account_id": "a", "timestamp": "2026-04-01T10:00:00Z", "kind": "product"}, "attributes.event"),
        (
            {
                "account_id": "x" * 65,
                "timestamp": "2026-04-01T10:00:00Z",
                "kind": "product",
                "attributes": {"event": "e"},
            },
            "account_id must be",
        ),
        (
            {
                "account_id": "a",
                "user_id": 5,
                "timestamp": "2026-04-01T10:00:00Z",
                "kind": "product",
                "attributes": {"event": "e"},
            },
            "not both",
        ),
        ({"timestamp": "2026-04-01T10:00:00Z", "kind": "product"}, "missing user_id (or account_id"),
        (
            {"account_id": "a", "timestamp": "soon", "kind": "product", "attributes": {"event": "e"}},
            "ISO 8601",
        ),
        (
            {
                "account_id": "a",
                "timestamp": "2026-04-01T10:00:00Z",
                "kind": "product",
                "attributes": {"event": "e", "properties": [1]},
            },
            "properties must be a JSON object",
        ),
    ],
)
def test_bad_account_rows_reject_the_file_and_store_nothing(
    engine: Engine, tmp_path: Path, row: dict[str, object], reason: str
) -> None:
    _link(engine, "acct-1", 501)
    path = _jsonl(
        tmp_path / "bad.jsonl", [_product("acct-1", "upgrade", 1), _product("acct-3", "upgrade", 2), row]
    )
    with pytest.raises(ImportFileError) as caught:
        import_events(engine, path)
    assert any(bad.line == 3 and reason in bad.reason for bad in caught.value.bad_rows), caught.value.bad_rows
    assert user_events(engine, 501) == [] and pending_count(engine) == 0


def test_a_csv_header_without_any_id_column_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "noid.csv"
    path.write_text("timestamp,kind\n2026-04-01T10:00:00Z,product\n")
    with pytest.raises(ImportFileError, match="user_id or account_id"):
        import_events(engine, path)
