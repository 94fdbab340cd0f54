"""Product events keyed by account id in the event import: validated rows, then linked or kept waiting.

`rapport events import` takes a row with `account_id` (the product's own user id) in place of
`user_id` when it is a product event (`kind` `product`, the name in `attributes.event`). At
import the account is looked up among the links: a linked account's event enters the log
under its Telegram user, an unlinked one's waits in `pending_product_events` and moves into
the log when the link appears, as events sent to the HTTP API do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from store.product import (
    MAX_ACCOUNT_ID_LENGTH,
    MAX_EVENT_NAME_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    linked_users,
    product_event_record,
)
from store.records import EventRecord
from store.vocabulary import EventKind


@dataclass(frozen=True)
class AccountEvent:
    """One product event of a product account, before its account is resolved to a Telegram user."""

    account_id: str
    ts: datetime
    name: str
    properties: dict[str, Any] | None = None
    message_id: str | None = None


def is_account_row(raw: dict[str, Any]) -> bool:
    """Whether an import row is keyed by `account_id` (and not by `user_id`)."""
    return raw.get("account_id") not in (None, "") and raw.get("user_id") in (None, "")


def account_event(raw: dict[str, Any], ts: datetime, attributes: dict[str, Any] | None) -> AccountEvent:
    """Validate the account part of a row whose timestamp and attributes are already parsed.

    Raises:
        ValueError: naming what is wrong: a kind other than `product`, a missing or long event
            name, an account id that is not 1-64 characters, properties that are not an object.
    """
    if raw.get("kind") != EventKind.PRODUCT:
        raise ValueError(
            f"a row keyed by account_id must be a product event (kind product), got {raw.get('kind')!r:.40}"
        )
    account = raw["account_id"]
    if isinstance(account, int) and not isinstance(account, bool):
        account = str(account)
    if not isinstance(account, str) or not account.strip() or len(account.strip()) > MAX_ACCOUNT_ID_LENGTH:
        raise ValueError(f"account_id must be a string of 1 to {MAX_ACCOUNT_ID_LENGTH} characters")
    attributes = attributes or {}
    name = attributes.get("event")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_EVENT_NAME_LENGTH:
        raise ValueError(
            f"attributes.event must name the product event (1 to {MAX_EVENT_NAME_LENGTH} characters)"
        )
    properties = attributes.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise ValueError("attributes.properties must be a JSON object")
    message_id = attributes.get("message_id")
    if message_id is not None and (
        not isinstance(message_id, str) or len(message_id) > MAX_MESSAGE_ID_LENGTH
    ):
        raise ValueError(
            f"attributes.message_id must be a string of at most {MAX_MESSAGE_ID_LENGTH} characters"
        )
    return AccountEvent(account.strip(), ts, name, properties or None, message_id or None)


def resolve(
    connection: Connection, events: Sequence[AccountEvent], *, now: datetime
) -> tuple[list[EventRecord], list[dict[str, Any]]]:
    """Split account events into log records (linked accounts) and `pending_product_events` rows.

    Runs on the import's own connection, inside its transaction, so a link made while the file
    is read cannot leave an event both logged and waiting.
    """
    links = linked_users(connection, sorted({e.account_id for e in events}))
    records: list[EventRecord] = []
    waiting: list[dict[str, Any]] = []
    for e in events:
        user = links.get(e.account_id)
        if user is None:
            waiting.append(
                {
                    "account_id": e.account_id,
                    "ts": e.ts,
                    "name": e.name,
                    "properties": e.properties,
                    "message_id": e.message_id,
                    "received_at": now,
                }
            )
        else:
            records.append(product_event_record(user, e.account_id, e.ts, e.name, e.properties, e.message_id))
    return records, waiting
