"""Segment's clock-skew correction: timestamp = receivedAt − (sentAt − timestamp), on calls and batches."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from ingest import create_app
from ingest.segment import CallError, corrected_timestamp, parse_batch, parse_single
from store import load_settings, user_events
from store.db import unit_of_work
from store.product import LinkSource, link_account

RECEIVED = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
KEY = "wk_skew"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_sender_clock_ahead_is_corrected() -> None:
    # The sender's clock is 2 hours fast: the event happened 5 s before it was sent.
    ahead = RECEIVED + timedelta(hours=2)
    call = {
        "userId": "a1",
        "event": "upgrade",
        "timestamp": _iso(ahead - timedelta(seconds=5)),
        "sentAt": _iso(ahead),
    }
    [message] = parse_single(call, "track", received_at=RECEIVED).messages
    assert message.ts == RECEIVED - timedelta(seconds=5)


def test_the_batch_sent_at_applies_to_calls_without_their_own() -> None:
    behind = RECEIVED - timedelta(days=1)  # a clock a day slow
    body = {
        "sentAt": _iso(behind),
        "batch": [
            {"type": "track", "userId": "a1", "event": "e", "timestamp": _iso(behind - timedelta(minutes=3))},
            {
                "type": "track",
                "userId": "a1",
                "event": "f",
                "timestamp": _iso(RECEIVED - timedelta(minutes=1)),
                "sentAt": _iso(RECEIVED),  # its own sentAt wins
            },
            {"type": "track", "userId": "a1", "event": "g"},  # no timestamp: the receive time
        ],
    }
    first, second, third = parse_batch(body, received_at=RECEIVED).messages
    assert first.ts == RECEIVED - timedelta(minutes=3)
    assert second.ts == RECEIVED - timedelta(minutes=1)
    assert third.ts == RECEIVED


def test_without_sent_at_the_timestamp_is_kept() -> None:
    stamp = datetime(2012, 12, 2, 0, 30, 12, tzinfo=UTC)
    assert corrected_timestamp(stamp, None, received_at=RECEIVED) == stamp


def test_a_sent_at_before_the_timestamp_never_moves_the_event_past_its_receipt() -> None:
    stamp = RECEIVED + timedelta(hours=1)
    assert corrected_timestamp(stamp, RECEIVED - timedelta(hours=1), received_at=RECEIVED) == RECEIVED


@pytest.mark.parametrize("sent_at", ["yesterday", 1714560000, "2026-13-45T00:00:00Z"])
def test_a_garbage_sent_at_is_refused(sent_at: object) -> None:
    call = {"userId": "a1", "event": "e", "timestamp": _iso(RECEIVED), "sentAt": sent_at}
    with pytest.raises(CallError, match="sentAt"):
        parse_single(call, "track", received_at=RECEIVED)
    with pytest.raises(CallError, match="sentAt"):
        parse_batch(
            {"sentAt": sent_at, "batch": [{"type": "track", "userId": "a", "event": "e"}]},
            received_at=RECEIVED,
        )


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(write_keys=[KEY], data_dir=tmp_path)
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def test_the_api_stores_the_corrected_time_and_refuses_garbage_whole(
    client: TestClient, engine: Engine
) -> None:
    with unit_of_work(engine) as session:
        link_account(session, "a1", 77, source=LinkSource.IMPORT)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
    future = datetime.now(UTC) + timedelta(days=365)  # a clock a year ahead
    body = {
        "userId": "a1",
        "event": "upgrade",
        "timestamp": _iso(future - timedelta(seconds=30)),
        "sentAt": _iso(future),
    }
    before = datetime.now(UTC)
    response = client.post("/v1/track", content=json.dumps(body), headers=auth)
    assert response.status_code == 200, response.text
    [event] = user_events(engine, 77)
    assert before - timedelta(seconds=31) <= event.ts <= datetime.now(UTC)  # not a year ahead
    bad = {"batch": [{"type": "track", "userId": "a1", "event": "x", "sentAt": "soon"}]}
    refused = client.post("/v1/batch", content=json.dumps(bad), headers=auth)
    assert refused.status_code == 400 and "batch[0]: sentAt is not ISO 8601" in refused.json()["error"]
    assert len(user_events(engine, 77)) == 1
