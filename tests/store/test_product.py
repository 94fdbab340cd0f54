"""Product data in the store: typed traits, product events in the log, pending until linked,
imports all or nothing, and forgetting a user's product data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from store import ImportFileError, forget_user, user_events
from store.db import unit_of_work
from store.product import (
    LinkSource,
    ProductMessage,
    TraitType,
    account_of,
    ingest,
    link_account,
    pending_count,
    traits_of,
    type_trait,
    type_traits,
)
from store.product_import import import_links, import_traits
from store.vocabulary import EventKind

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _track(account: str, name: str, minutes: int, message_id: str | None = None) -> ProductMessage:
    return ProductMessage(
        "track", account, T0 + timedelta(minutes=minutes), message_id, event=name, properties={"n": minutes}
    )


def _link(engine: Engine, account: str, user_id: int) -> int:
    with unit_of_work(engine) as session:
        return link_account(session, account, user_id, source=LinkSource.IMPORT).attached


@pytest.mark.parametrize(
    ("value", "kind", "stored"),
    [
        (5, TraitType.NUMERIC, 5.0),
        (19.99, TraitType.NUMERIC, 19.99),
        ("free", TraitType.CATEGORICAL, "free"),
        (True, TraitType.CATEGORICAL, "true"),
        ("2026-11-01", TraitType.DATE, datetime(2026, 11, 1, tzinfo=UTC)),
        ("2012-12-02T00:30:08.276Z", TraitType.DATE, datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)),
        ("12", TraitType.CATEGORICAL, "12"),
    ],
)
def test_traits_are_typed(value: object, kind: TraitType, stored: object) -> None:
    trait = type_trait("t", value)
    assert trait.value_type is kind
    assert trait.value == stored


def test_a_declared_type_is_enforced_and_bad_values_refused() -> None:
    assert type_trait("spend", "12.5", value_type=TraitType.NUMERIC).value == 12.5
    for value, declared in (
        ("abc", TraitType.NUMERIC),
        ("soon", TraitType.DATE),
        ([1], None),
        (float("nan"), None),
    ):
        with pytest.raises(ValueError, match="trait 'x'"):
            type_trait("x", value, value_type=declared)
    with pytest.raises(ValueError, match="trait name"):
        type_trait("n" * 65, 1)


def test_nested_traits_are_flattened_and_unstorable_ones_listed() -> None:
    typed, skipped = type_traits(
        {"address": {"city": "Berlin"}, "tags": ["a"], "bio": "x" * 300, "gone": None}
    )
    assert [(t.name, t.value) for t in typed] == [("address.city", "Berlin")]
    assert sorted(skipped) == ["bio", "gone", "tags"]


def test_events_wait_for_the_link_then_interleave_with_telegram_events(engine: Engine) -> None:
    report = ingest(
        engine,
        [_track("acct", "api_error_429", 5, "m1"), _track("acct", "Plan Upgraded", 1, "m2")],
        key_id="k",
    )
    assert (report.accepted, report.pending, report.logged) == (2, 2, 0)
    assert pending_count(engine, "acct") == 2
    assert _link(engine, "acct", 77) == 2
    assert pending_count(engine) == 0
    events = user_events(engine, 77)
    assert [(e.kind, e.attributes and e.attributes["event"]) for e in events] == [
        (EventKind.PRODUCT, "Plan Upgraded"),
        (EventKind.PRODUCT, "api_error_429"),
    ]
    assert events[0].attributes is not None and events[0].attributes["source"] == "product"
    later = ingest(engine, [_track("acct", "api_call", 3)], key_id="k")
    assert (later.logged, later.pending) == (1, 0)
    assert [e.ts for e in user_events(engine, 77)] == sorted(e.ts for e in user_events(engine, 77))


def test_a_message_id_is_taken_once_per_key(engine: Engine) -> None:
    _link(engine, "acct", 5)
    first = ingest(engine, [_track("acct", "a", 1, "dup"), _track("acct", "a", 1, "dup")], key_id="k1")
    assert (first.accepted, first.duplicates) == (1, 1)
    again = ingest(engine, [_track("acct", "a", 1, "dup")], key_id="k1")
    assert (again.accepted, again.duplicates) == (0, 1)
    other_key = ingest(engine, [_track("acct", "a", 1, "dup")], key_id="k2")
    assert other_key.accepted == 1
    assert len(user_events(engine, 5)) == 2


def test_the_latest_trait_value_wins_by_update_time(engine: Engine) -> None:
    plan = type_trait("plan", "pro")
    ingest(engine, [ProductMessage("identify", "acct", T0 + timedelta(days=1), traits=(plan,))], key_id="k")
    older = type_trait("plan", "free")
    report = ingest(
        engine, [ProductMessage("identify", "acct", T0, traits=(older, type_trait("seats", 3)))], key_id="k"
    )
    assert report.traits == 1
    traits = traits_of(engine, "acct")
    assert traits["plan"][0].value == "pro" and traits["plan"][1] == T0 + timedelta(days=1)
    assert traits["seats"][0].value_type is TraitType.NUMERIC


def test_forget_removes_link_traits_and_product_events(engine: Engine) -> None:
    _link(engine, "acct", 9)
    ingest(
        engine,
        [_track("acct", "a", 1), ProductMessage("identify", "acct", T0, traits=(type_trait("plan", "x"),))],
        key_id="k",
    )
    ingest(engine, [_track("other", "b", 1)], key_id="k")  # another, unlinked account stays
    report = forget_user(engine, 9)
    assert report.deleted["account_links"] == 1 and report.deleted["traits"] == 1
    assert account_of(engine, 9) is None
    assert traits_of(engine, "acct") == {}
    assert user_events(engine, 9) == []
    assert pending_count(engine, "other") == 1


def test_links_import_is_all_or_nothing(engine: Engine, tmp_path: Path) -> None:
    ingest(engine, [_track("a1", "signup", 0)], key_id="k")
    good = tmp_path / "links.csv"
    good.write_text("account_id,telegram_id\na1,101\na2,102\n", encoding="utf-8")
    report = import_links(engine, good)
    assert (report.imported, report.attached) == (2, 1)
    assert account_of(engine, 101) == "a1" and len(user_events(engine, 101)) == 1
    assert import_links(engine, good).unchanged == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"account_id": "a3", "telegram_id": 103}\n{"account_id": "a4", "telegram_id": "x"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ImportFileError) as caught:
        import_links(engine, bad)
    assert [row.line for row in caught.value.bad_rows] == [2]
    taken = tmp_path / "taken.csv"
    taken.write_text("account_id,telegram_id\na5,105\na1,999\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="line 3: account 'a1' is already linked"):
        import_links(engine, taken)
    assert account_of(engine, 103) is None and account_of(engine, 105) is None  # nothing of either file
    twice = tmp_path / "twice.csv"
    twice.write_text("account_id,telegram_id\nb1,201\nb1,202\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="line 3"):
        import_links(engine, twice)
    header = tmp_path / "header.csv"
    header.write_text("account,telegram\nx,1\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing account_id, telegram_id"):
        import_links(engine, header)


def test_traits_import_is_typed_and_all_or_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "traits.csv"
    path.write_text(
        "account_id,name,value,type,updated_at\n"
        "a1,plan,free,,2026-11-01T00:00:00Z\n"
        "a1,spend,12.5,numeric,2026-11-01T00:00:00Z\n"
        "a1,signup,2026-10-01,,\n",
        encoding="utf-8",
    )
    assert import_traits(engine, path).imported == 3
    traits = traits_of(engine, "a1")
    assert {name: t.value_type for name, (t, _) in traits.items()} == {
        "plan": TraitType.CATEGORICAL,
        "spend": TraitType.NUMERIC,
        "signup": TraitType.DATE,
    }
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"account_id": "a2", "name": "plan", "value": "pro"}\n'
        '{"account_id": "a2", "name": "spend", "value": "lots", "type": "numeric"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ImportFileError) as caught:
        import_traits(engine, bad)
    assert caught.value.bad_rows[0].line == 2 and "not a number" in caught.value.bad_rows[0].reason
    assert traits_of(engine, "a2") == {}
