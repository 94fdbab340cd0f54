"""Account links and traits from CSV or JSONL files: all or nothing, every bad line named.

`rapport accounts import FILE` takes `account_id, telegram_id` rows; `rapport users import FILE`
takes traits as `account_id, name, value` rows with optional `type` (numeric, categorical or
date: inferred when absent) and `updated_at` (ISO 8601 or epoch seconds; default: now). Like
the event import, the whole file is checked first and one bad row rejects it, the database
unchanged.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from store.db import unit_of_work
from store.errors import BadRow, ImportFileError
from store.models import utcnow
from store.product import (
    MAX_ACCOUNT_ID_LENGTH,
    LinkSource,
    LinkTakenError,
    TraitType,
    TypedTrait,
    link_account,
    type_trait,
    upsert_traits,
)
from store.transfer import parse_event, raw_records

logger = logging.getLogger(__name__)

LINK_FIELDS = ("account_id", "telegram_id")
TRAIT_FIELDS = ("account_id", "name", "value")


@dataclass(frozen=True)
class ProductImportReport:
    """What a links or traits import did."""

    path: str
    imported: int
    unchanged: int
    attached: int = 0
    """Waiting product events that entered the log with the new links."""


def _read(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, Any] | None, str]]:
    if not path.is_file():
        raise ImportFileError(str(path), [], detail="file does not exist")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # a spreadsheet's BOM is fine
            records = list(raw_records(path, handle, required))
    except UnicodeDecodeError as exc:
        raise ImportFileError(str(path), [], detail=f"not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise ImportFileError(str(path), [], detail=f"malformed CSV: {exc}") from exc
    if not records:
        raise ImportFileError(str(path), [], detail="no rows in file")
    return records


def _account_id(raw: dict[str, Any]) -> str:
    value = raw.get("account_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing account_id")
    value = value.strip()
    if len(value) > MAX_ACCOUNT_ID_LENGTH:
        raise ValueError(f"account_id is longer than {MAX_ACCOUNT_ID_LENGTH} characters")
    return value


def _telegram_id(raw: dict[str, Any]) -> int:
    value = raw.get("telegram_id")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"telegram_id must be a positive integer, got {value!r:.40}")
    return value


def _timestamp(value: Any) -> datetime:
    if value in (None, ""):
        return utcnow()
    # The event import's timestamp rules (ISO 8601 or epoch seconds; no offset means UTC).
    ts: datetime = parse_event({"user_id": 0, "timestamp": value, "kind": "x"}).ts
    return ts


def import_links(engine: Engine, path: Path, *, now: datetime | None = None) -> ProductImportReport:
    """Import `account_id, telegram_id` pairs in one transaction, all or nothing.

    A pair already stored is counted unchanged; an account or user linked to someone else,
    here or in the file, is a bad row.
    """
    pairs: list[tuple[int, str, int]] = []
    bad: list[BadRow] = []
    accounts: dict[str, int] = {}
    users: dict[int, str] = {}
    for number, raw, error in _read(path, LINK_FIELDS):
        if raw is None:
            bad.append(BadRow(number, error))
            continue
        try:
            account_id, user_id = _account_id(raw), _telegram_id(raw)
        except ValueError as exc:
            bad.append(BadRow(number, str(exc)))
            continue
        if accounts.get(account_id, user_id) != user_id or users.get(user_id, account_id) != account_id:
            bad.append(
                BadRow(number, f"account {account_id!r} or user {user_id} appears twice with another partner")
            )
            continue
        accounts[account_id], users[user_id] = user_id, account_id
        pairs.append((number, account_id, user_id))
    if bad:
        raise ImportFileError(str(path), bad)
    moment = now or datetime.now(UTC)
    imported = unchanged = attached = 0
    with unit_of_work(engine) as session:
        taken: list[BadRow] = []
        for number, account_id, user_id in pairs:
            try:  # link_account checks before it writes: a refused pair leaves nothing behind
                result = link_account(session, account_id, user_id, source=LinkSource.IMPORT, now=moment)
            except LinkTakenError as exc:
                taken.append(BadRow(number, str(exc)))
                continue
            imported += result.new
            unchanged += not result.new
            attached += result.attached
        if taken:
            # Raising inside the unit of work rolls every link of this file back.
            raise ImportFileError(str(path), taken)
    logger.info("imported %d account links from %s (%d unchanged)", imported, path, unchanged)
    return ProductImportReport(str(path), imported=imported, unchanged=unchanged, attached=attached)


def _trait_row(raw: dict[str, Any]) -> tuple[str, TypedTrait, datetime]:
    account_id = _account_id(raw)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("missing name")
    declared = raw.get("type") or None
    try:
        value_type = None if declared is None else TraitType(str(declared).strip().lower())
    except ValueError as exc:
        raise ValueError(f"type must be numeric, categorical or date, got {declared!r:.40}") from exc
    value = raw.get("value")
    if value in (None, ""):
        raise ValueError("missing value")
    return (
        account_id,
        type_trait(name.strip(), value, value_type=value_type),
        _timestamp(raw.get("updated_at")),
    )


def import_traits(engine: Engine, path: Path) -> ProductImportReport:
    """Import typed traits in one transaction, all or nothing; the latest per name is kept."""
    rows: list[tuple[str, TypedTrait, datetime]] = []
    bad: list[BadRow] = []
    for number, raw, error in _read(path, TRAIT_FIELDS):
        if raw is None:
            bad.append(BadRow(number, error))
            continue
        try:
            rows.append(_trait_row(raw))
        except ValueError as exc:
            bad.append(BadRow(number, str(exc)))
    if bad:
        raise ImportFileError(str(path), bad)
    written = 0
    with unit_of_work(engine) as session:
        for account_id, trait, updated_at in rows:
            written += upsert_traits(session, account_id, [trait], updated_at)
            session.flush()
    logger.info("imported %d traits from %s (%d older than stored)", written, path, len(rows) - written)
    return ProductImportReport(str(path), imported=written, unchanged=len(rows) - written)
