"""Segment-spec calls (identify, track, batch) read into the store's `ProductMessage`s; pure.

Follows the Segment HTTP Tracking API: `userId` names the product account (a string; a
number is taken as its decimal form), `timestamp` is ISO 8601 and defaults to the time the
call was received, `messageId` makes a retry harmless. With `sentAt` (the sender's clock when
it sent the call, on the call or on the batch) the timestamp is corrected for the sender's
clock skew as Segment does: timestamp = receivedAt − (sentAt − timestamp). Calls other than identify and track
inside a batch (page, screen, group, alias) are counted and left out, so a destination that
sends them does not fail; calls with only an `anonymousId` are refused, since nothing can link
them to a Telegram user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from store.product import (
    MAX_ACCOUNT_ID_LENGTH,
    MAX_EVENT_NAME_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    ProductMessage,
    parse_date,
    type_traits,
)

MAX_CALL_BYTES = 32 * 1024
"""Segment's limit on one call (a single request, or one call inside a batch)."""
MAX_BATCH_BYTES = 500 * 1024
"""Segment's limit on one batch request."""
KEPT_TYPES = ("identify", "track")
IGNORED_TYPES = ("page", "screen", "group", "alias")


class CallError(ValueError):
    """A call that cannot be taken; the message says what is wrong (and where, in a batch)."""


@dataclass(frozen=True)
class ParsedCalls:
    """The calls of one request that will be stored, and how many were left out (and their names)."""

    messages: list[ProductMessage]
    ignored: int = 0
    skipped_traits: tuple[str, ...] = ()


def decode_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CallError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CallError("body must be a JSON object")
    return value


def _text(value: Any, name: str, limit: int, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise CallError(f"{name} is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise CallError(f"{name} must be a string")
    if len(value) > limit:
        raise CallError(f"{name} is longer than {limit} characters")
    return value


def _instant(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise CallError(f"{name} must be an ISO 8601 string")
    try:
        return parse_date(value)
    except ValueError as exc:
        raise CallError(f"{name} is not ISO 8601: {value!r:.60}") from exc


def corrected_timestamp(
    timestamp: datetime | None, sent_at: datetime | None, *, received_at: datetime
) -> datetime:
    """When the event happened, on our clock: Segment's skew correction.

    A sender whose clock is off by d stamps both `timestamp` and `sentAt` off by d; their
    difference is right, so receivedAt − (sentAt − timestamp) is the event's time on the
    receiver's clock. Without `sentAt` the timestamp is taken as given; without a timestamp the
    event happened when it was received. A correction can only move the event back in time
    from its receipt: a `sentAt` before the `timestamp` (a contradiction) gives receivedAt.
    """
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    delay = sent_at - timestamp
    return received_at - max(delay, timedelta(0))


def parse_call(
    raw: dict[str, Any], call_type: str, *, received_at: datetime, batch_sent_at: datetime | None = None
) -> tuple[ProductMessage, list[str]]:
    """One identify or track call; the trait names that could not be stored (lists, long text).

    `batch_sent_at` is the batch's `sentAt`, used when the call has none of its own.
    """
    if raw.get("userId") in (None, "") and raw.get("anonymousId") not in (None, ""):
        raise CallError("userId is required: anonymous calls cannot be linked to a Telegram user")
    account_id = _text(raw.get("userId"), "userId", MAX_ACCOUNT_ID_LENGTH, required=True)
    assert account_id is not None
    message_id = _text(raw.get("messageId"), "messageId", MAX_MESSAGE_ID_LENGTH, required=False)
    stamp = raw.get("timestamp")
    timestamp = None if stamp in (None, "") else _instant(stamp, "timestamp")
    sent = raw.get("sentAt")
    sent_at = batch_sent_at if sent in (None, "") else _instant(sent, "sentAt")
    ts = corrected_timestamp(timestamp, sent_at, received_at=received_at)
    if call_type == "identify":
        traits = raw.get("traits")
        if traits is None:
            traits = (
                (raw.get("context") or {}).get("traits") if isinstance(raw.get("context"), dict) else None
            )
        if traits is None:
            traits = {}
        if not isinstance(traits, dict):
            raise CallError("traits must be an object")
        typed, skipped = type_traits(traits)
        return ProductMessage("identify", account_id, ts, message_id, traits=tuple(typed)), skipped
    event = _text(raw.get("event"), "event", MAX_EVENT_NAME_LENGTH, required=True)
    properties = raw.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise CallError("properties must be an object")
    return ProductMessage("track", account_id, ts, message_id, event=event, properties=properties or None), []


def parse_single(raw: dict[str, Any], call_type: str, *, received_at: datetime) -> ParsedCalls:
    """The body of `/v1/identify` or `/v1/track`."""
    declared = raw.get("type")
    if declared not in (None, call_type):
        raise CallError(f"type {declared!r:.30} does not match the endpoint /v1/{call_type}")
    message, skipped = parse_call(raw, call_type, received_at=received_at)
    return ParsedCalls([message], skipped_traits=tuple(skipped))


def _batch_sent_at(raw: dict[str, Any]) -> datetime | None:
    value = raw.get("sentAt")
    return None if value in (None, "") else _instant(value, "sentAt")


def parse_batch(raw: dict[str, Any], *, received_at: datetime) -> ParsedCalls:
    """The body of `/v1/batch`: every call is checked before any is stored."""
    calls = raw.get("batch")
    if not isinstance(calls, list) or not calls:
        raise CallError("batch must be a non-empty array of calls")
    messages: list[ProductMessage] = []
    skipped: list[str] = []
    ignored = 0
    sent_at = _batch_sent_at(raw)
    for index, call in enumerate(calls):
        if not isinstance(call, dict):
            raise CallError(f"batch[{index}] is not an object")
        if len(json.dumps(call, separators=(",", ":"))) > MAX_CALL_BYTES:
            raise CallError(f"batch[{index}] is larger than {MAX_CALL_BYTES // 1024} KB")
        call_type = call.get("type") or call.get("action")
        if call_type in IGNORED_TYPES:
            ignored += 1
            continue
        if call_type not in KEPT_TYPES:
            raise CallError(f"batch[{index}]: type must be identify or track, got {call_type!r:.30}")
        try:
            message, names = parse_call(call, call_type, received_at=received_at, batch_sent_at=sent_at)
        except CallError as exc:
            raise CallError(f"batch[{index}]: {exc}") from exc
        messages.append(message)
        skipped.extend(names)
    return ParsedCalls(messages, ignored=ignored, skipped_traits=tuple(skipped))
