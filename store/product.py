"""Product data: account links, typed traits, product events (and those waiting for a link).

A product account (the start-up's own user id, a string) is linked to at most one Telegram
user and the other way round. Traits are kept per account, so an identify call may come before
the link; product events need a Telegram user to enter the event log, so those of an unlinked
account wait in `pending_product_events` and move into `events` when the link appears.

Product events sit in `events` with `kind = "product"` (`EventKind.PRODUCT`) and the event's
own name in `attributes.event`: product event names are open-ended (Segment suggests
"Object Action" names such as "Order Completed") and would neither fit `events.kind`'s 32
characters nor stay apart from the bot's own kinds. `attributes.source = "product"` marks them
too, so a user's sequence interleaves Telegram and product events in time order.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.db import unit_of_work
from store.events import insert_records
from store.links import LinkRefusal, PayloadRejected, verify_payload
from store.models import AccountLink, Base, IngestedMessage, PendingProductEvent, Trait, UsedLinkToken, utcnow
from store.records import EventRecord
from store.vocabulary import EventKind

logger = logging.getLogger(__name__)

PRODUCT_SOURCE = "product"
FORGOTTEN_USER_ID = 0
"""Stands in for the user id of a redeemed link token whose user was forgotten."""
MAX_ACCOUNT_ID_LENGTH = 64
MAX_TRAIT_NAME_LENGTH = 64
MAX_CATEGORY_LENGTH = 256
MAX_EVENT_NAME_LENGTH = 128
MAX_MESSAGE_ID_LENGTH = 128
_IN_CHUNK = 500
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


class TraitType(StrEnum):
    """How a trait's value is typed (`traits.value_type`)."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    DATE = "date"


class LinkSource(StrEnum):
    """How an account link came about (`account_links.source`)."""

    DEEP_LINK = "deep_link"
    IMPORT = "import"


class LinkTakenError(ValueError):
    """The account or the Telegram user is already linked to someone else."""


@dataclass(frozen=True)
class TypedTrait:
    """One trait value with its type; exactly one of number, category, date is set."""

    name: str
    value_type: TraitType
    number: float | None = None
    category: str | None = None
    date: datetime | None = None

    @property
    def value(self) -> float | str | datetime:
        """The value, whatever its type."""
        if self.value_type is TraitType.NUMERIC:
            assert self.number is not None
            return self.number
        if self.value_type is TraitType.DATE:
            assert self.date is not None
            return self.date
        assert self.category is not None
        return self.category


def parse_date(value: str) -> datetime:
    """An ISO 8601 date or datetime as UTC (a value without an offset is taken as UTC)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def type_trait(name: str, value: Any, *, value_type: TraitType | None = None) -> TypedTrait:
    """Type one trait value: numbers are numeric, ISO dates are dates, other scalars categorical.

    Booleans are categorical (`"true"` / `"false"`). With `value_type` the type is forced.

    Raises:
        ValueError: the name or value cannot be stored (too long, a list, not the forced type).
    """
    if not isinstance(name, str) or not name or len(name) > MAX_TRAIT_NAME_LENGTH:
        raise ValueError(f"trait name must be 1 to {MAX_TRAIT_NAME_LENGTH} characters, got {name!r:.80}")
    if value is None or isinstance(value, list | dict):
        raise ValueError(f"trait {name!r}: value must be a number, string, boolean or date")
    if value_type is None:
        if isinstance(value, bool):
            value_type, value = TraitType.CATEGORICAL, "true" if value else "false"
        elif isinstance(value, int | float):
            value_type = TraitType.NUMERIC
        elif isinstance(value, str) and _ISO_DATE.match(value.strip()):
            value_type = TraitType.DATE
        else:
            value_type = TraitType.CATEGORICAL
    if value_type is TraitType.NUMERIC:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"trait {name!r}: {value!r:.80} is not a number") from exc
        if not math.isfinite(number):
            raise ValueError(f"trait {name!r}: {value!r} is not a finite number")
        return TypedTrait(name, value_type, number=number)
    if value_type is TraitType.DATE:
        try:
            return TypedTrait(name, value_type, date=parse_date(str(value)))
        except ValueError as exc:
            raise ValueError(f"trait {name!r}: {value!r:.80} is not an ISO 8601 date") from exc
    category = str(value)
    if len(category) > MAX_CATEGORY_LENGTH:
        raise ValueError(
            f"trait {name!r}: a categorical value holds at most {MAX_CATEGORY_LENGTH} characters"
        )
    return TypedTrait(name, TraitType.CATEGORICAL, category=category)


def flatten_traits(traits: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted names (Segment's `address.city`), the rest as given."""
    flat: dict[str, Any] = {}
    for key, value in traits.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_traits(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def type_traits(traits: Mapping[str, Any]) -> tuple[list[TypedTrait], list[str]]:
    """Type every trait of an identify call; the names that cannot be stored are returned apart."""
    typed: list[TypedTrait] = []
    skipped: list[str] = []
    for name, value in flatten_traits(traits).items():
        if value is None:
            skipped.append(name)
            continue
        try:
            typed.append(type_trait(name, value))
        except ValueError:
            skipped.append(name)
    return typed, skipped


@dataclass(frozen=True)
class ProductMessage:
    """One validated Segment call: `identify` (traits) or `track` (event and properties)."""

    type: Literal["identify", "track"]
    account_id: str
    ts: datetime
    message_id: str | None = None
    event: str | None = None
    properties: dict[str, Any] | None = None
    traits: tuple[TypedTrait, ...] = ()


@dataclass(frozen=True)
class IngestReport:
    """What one ingest call did."""

    accepted: int
    duplicates: int
    logged: int
    """Product events written to the event log (their account is linked)."""
    pending: int
    """Product events kept until their account is linked."""
    traits: int


def _table(model: type[Base]) -> Table:
    """A model's Core table, for executemany inserts without ORM objects."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def product_event_record(
    user_id: int,
    account_id: str,
    ts: datetime,
    name: str,
    properties: dict[str, Any] | None,
    message_id: str | None,
) -> EventRecord:
    """The event-log record of one product event of a linked account (the one shape for every path)."""
    attributes: dict[str, Any] = {"source": PRODUCT_SOURCE, "event": name, "account_id": account_id}
    if properties:
        attributes["properties"] = properties
    if message_id:
        attributes["message_id"] = message_id
    return EventRecord(user_id=user_id, ts=ts, kind=EventKind.PRODUCT, attributes=attributes)


def upsert_traits(
    session: Session, account_id: str, traits: Iterable[TypedTrait], updated_at: datetime
) -> int:
    """Keep the latest value per trait name: an older update than the stored one is ignored."""
    written = 0
    for trait in traits:
        row = session.get(Trait, (account_id, trait.name))
        if row is None:
            row = Trait(account_id=account_id, name=trait.name)
            session.add(row)
        elif row.updated_at > updated_at:
            continue
        row.value_type = trait.value_type.value
        row.number, row.category, row.date = trait.number, trait.category, trait.date
        row.updated_at = updated_at
        written += 1
    return written


def _new_messages(
    session: Session, key_id: str, messages: Sequence[ProductMessage], now: datetime
) -> tuple[list[ProductMessage], int]:
    """The messages not taken before from this key (by messageId), remembering their ids."""
    ids = sorted({m.message_id for m in messages if m.message_id})
    seen: set[str] = set()
    for chunk in _chunks(ids):
        seen.update(
            session.scalars(
                select(IngestedMessage.message_id).where(
                    IngestedMessage.key_id == key_id, IngestedMessage.message_id.in_(chunk)
                )
            )
        )
    fresh: list[ProductMessage] = []
    taken: list[dict[str, Any]] = []
    for message in messages:
        if message.message_id:
            if message.message_id in seen:
                continue
            seen.add(message.message_id)
            taken.append({"key_id": key_id, "message_id": message.message_id, "received_at": now})
        fresh.append(message)
    if taken:  # Core executemany: ORM objects cost more than the insert itself here
        session.execute(insert(_table(IngestedMessage)), taken)
    return fresh, len(messages) - len(fresh)


def linked_users(session: Session | Connection, accounts: Sequence[str]) -> dict[str, int]:
    """The Telegram user of each linked account among `accounts` (unlinked ones are absent)."""
    links: dict[str, int] = {}
    for chunk in _chunks(accounts):
        query = select(AccountLink.account_id, AccountLink.user_id).where(AccountLink.account_id.in_(chunk))
        links.update((str(account), int(user)) for account, user in session.execute(query))
    return links


def _ingest_once(
    engine: Engine, messages: Sequence[ProductMessage], key_id: str, now: datetime
) -> IngestReport:
    with unit_of_work(engine) as session:
        fresh, duplicates = _new_messages(session, key_id, messages, now)
        links = linked_users(session, sorted({m.account_id for m in fresh if m.type == "track"}))
        rows: list[EventRecord] = []
        waiting: list[dict[str, Any]] = []
        traits = 0
        for message in fresh:
            if message.type == "identify":
                traits += upsert_traits(session, message.account_id, message.traits, message.ts)
                continue
            assert message.event is not None
            user_id = links.get(message.account_id)
            if user_id is None:
                waiting.append(
                    {
                        "account_id": message.account_id,
                        "ts": message.ts,
                        "name": message.event,
                        "properties": message.properties or None,
                        "message_id": message.message_id,
                        "received_at": now,
                    }
                )
            else:
                rows.append(
                    product_event_record(
                        user_id,
                        message.account_id,
                        message.ts,
                        message.event,
                        message.properties,
                        message.message_id,
                    )
                )
        session.flush()
        if waiting:
            session.execute(insert(_table(PendingProductEvent)), waiting)
        insert_records(session.connection(), rows)
    return IngestReport(
        accepted=len(fresh), duplicates=duplicates, logged=len(rows), pending=len(waiting), traits=traits
    )


def ingest(
    engine: Engine, messages: Sequence[ProductMessage], *, key_id: str, now: datetime | None = None
) -> IngestReport:
    """Store identify and track calls in one transaction, once per (write key, messageId).

    A concurrent request carrying the same messageId makes one of the two commits fail on the
    primary key; it is run again once, and then finds those ids taken.
    """
    moment = now or utcnow()
    try:
        return _ingest_once(engine, messages, key_id, moment)
    except IntegrityError:
        logger.info("concurrent duplicate messageId from key %s: retrying the batch once", key_id)
        return _ingest_once(engine, messages, key_id, moment)


@dataclass(frozen=True)
class LinkResult:
    """What linking did: whether the link is new and how many waiting events it brought in."""

    account_id: str
    user_id: int
    new: bool
    attached: int


def link_account(
    session: Session, account_id: str, user_id: int, *, source: LinkSource, now: datetime | None = None
) -> LinkResult:
    """Link an account to a Telegram user on an open session and attach its waiting events.

    Linking the same pair again changes nothing.

    Raises:
        LinkTakenError: the account or the user is linked to someone else.
    """
    existing = session.get(AccountLink, account_id)
    if existing is not None:
        if existing.user_id == user_id:
            return LinkResult(account_id, user_id, new=False, attached=0)
        raise LinkTakenError(f"account {account_id!r} is already linked to another Telegram user")
    other = session.scalar(select(AccountLink.account_id).where(AccountLink.user_id == user_id))
    if other is not None:
        raise LinkTakenError(f"Telegram user {user_id} is already linked to another account")
    session.add(
        AccountLink(account_id=account_id, user_id=user_id, linked_at=now or utcnow(), source=source.value)
    )
    waiting = list(
        session.scalars(
            select(PendingProductEvent)
            .where(PendingProductEvent.account_id == account_id)
            .order_by(PendingProductEvent.ts, PendingProductEvent.id)
        )
    )
    rows = [
        product_event_record(user_id, account_id, p.ts, p.name, p.properties, p.message_id) for p in waiting
    ]
    session.flush()
    insert_records(session.connection(), rows)
    if waiting:
        session.execute(delete(PendingProductEvent).where(PendingProductEvent.account_id == account_id))
        logger.info("account %s linked: %d waiting product events attached", account_id, len(rows))
    return LinkResult(account_id, user_id, new=True, attached=len(rows))


def redeem_payload(
    engine: Engine, payload: str, user_id: int, *, secret: str | None, now: datetime | None = None
) -> LinkResult:
    """Verify a `/start` payload and link its account to `user_id`, once.

    The same user redeeming their own payload again is told they are linked (`new=False`);
    anyone else gets REUSED.

    Raises:
        PayloadRejected: malformed, forged, expired, reused, taken, or no secret configured.
    """
    moment = now or utcnow()
    link = verify_payload(payload, secret or "", now=moment)
    try:
        with unit_of_work(engine) as session:
            session.execute(delete(UsedLinkToken).where(UsedLinkToken.expires_at < moment))
            used = session.get(UsedLinkToken, link.token_id)
            if used is not None:
                if used.user_id == user_id and session.get(AccountLink, link.account_id) is not None:
                    return LinkResult(link.account_id, user_id, new=False, attached=0)
                raise PayloadRejected(LinkRefusal.REUSED, "payload redeemed before")
            try:
                result = link_account(
                    session, link.account_id, user_id, source=LinkSource.DEEP_LINK, now=moment
                )
            except LinkTakenError as exc:
                raise PayloadRejected(LinkRefusal.TAKEN, str(exc)) from exc
            session.add(
                UsedLinkToken(
                    token_id=link.token_id,
                    account_id=link.account_id,
                    user_id=user_id,
                    used_at=moment,
                    expires_at=link.expires_at,
                )
            )
    except IntegrityError as exc:  # a concurrent redemption of the same payload or account won
        raise PayloadRejected(LinkRefusal.REUSED, "payload or account linked concurrently") from exc
    return result


def account_of(engine: Engine, user_id: int) -> str | None:
    """The product account linked to a Telegram user, or None."""
    with unit_of_work(engine) as session:
        return session.scalar(select(AccountLink.account_id).where(AccountLink.user_id == user_id))


def user_of(engine: Engine, account_id: str) -> int | None:
    """The Telegram user linked to a product account, or None."""
    with unit_of_work(engine) as session:
        link = session.get(AccountLink, account_id)
        return None if link is None else link.user_id


def traits_of(engine: Engine, account_id: str) -> dict[str, tuple[TypedTrait, datetime]]:
    """An account's traits by name, each with its update time."""
    with unit_of_work(engine) as session:
        return {
            row.name: (
                TypedTrait(
                    row.name,
                    TraitType(row.value_type),
                    number=row.number,
                    category=row.category,
                    date=row.date,
                ),
                row.updated_at,
            )
            for row in session.scalars(select(Trait).where(Trait.account_id == account_id))
        }


def pending_count(engine: Engine, account_id: str | None = None) -> int:
    """How many product events wait for a link (of one account, if given)."""
    with unit_of_work(engine) as session:
        query = select(PendingProductEvent.id)
        if account_id is not None:
            query = query.where(PendingProductEvent.account_id == account_id)
        return len(list(session.scalars(query)))


def forget_product_data(session: Session, user_id: int) -> dict[str, int]:
    """Delete a user's account link and the linked account's traits and waiting events.

    Runs on the forget path's open session and returns the rows touched per table; the
    user's redeemed link tokens are kept anonymised so that their payloads stay spent.

    Product events already in the log carry the Telegram user id and go with `events`.
    """
    deleted: dict[str, int] = {}
    account_id = session.scalar(select(AccountLink.account_id).where(AccountLink.user_id == user_id))
    if account_id is not None:
        for name, statement in (
            ("traits", delete(Trait).where(Trait.account_id == account_id)),
            (
                "pending_product_events",
                delete(PendingProductEvent).where(PendingProductEvent.account_id == account_id),
            ),
            ("account_links", delete(AccountLink).where(AccountLink.account_id == account_id)),
        ):
            deleted[name] = int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
    # The redeemed tokens stay (so a payload stays single-use after /forget) but lose the user id.
    tokens = session.execute(
        update(UsedLinkToken).where(UsedLinkToken.user_id == user_id).values(user_id=FORGOTTEN_USER_ID)
    )
    deleted["used_link_tokens"] = int(tokens.rowcount)  # type: ignore[attr-defined]
    return deleted
