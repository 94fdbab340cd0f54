"""The Segment-spec HTTP API with the Segment documentation's own example payloads.

Payloads follow the HTTP Tracking API page (twilio.com/docs/segment/connections/sources/catalog/
libraries/server/http-api) and the Identify spec page: identify, track and batch, with and
without `timestamp`; plus bad auth, oversized and malformed bodies, duplicate messageIds.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

with warnings.catch_warnings():
    # Starlette 1.x nags at import that it prefers `httpx2`; the pinned httpx works the same here.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from ingest import KeyRateLimiter, create_app
from store import load_settings, user_events
from store.db import unit_of_work
from store.product import LinkSource, link_account, pending_count, traits_of
from store.vocabulary import EventKind

KEY = "wk_9dT2kq"


def _auth(key: str = KEY, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{key}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


SEGMENT_IDENTIFY = {
    "userId": "019mr8mf4r",
    "traits": {"email": "pgibbons@example.com", "name": "Peter Gibbons", "industry": "Technology"},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:08.276Z",
}
SEGMENT_SPEC_IDENTIFY = {  # the Identify spec's "typical call", no timestamp
    "type": "identify",
    "traits": {"name": "Peter Gibbons", "email": "peter@example.com", "plan": "premium", "logins": 5},
    "userId": "97980cfea0067",
}
SEGMENT_TRACK = {
    "userId": "019mr8mf4r",
    "event": "Item Purchased",
    "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:12.984Z",
}
SEGMENT_BATCH = {
    "batch": [
        {
            "type": "identify",
            "userId": "019mr8mf4r",
            "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
            "timestamp": "2012-12-01T23:18:00.000Z",
        },
        {
            "type": "track",
            "userId": "019mr8mf4r",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
            "timestamp": "2012-12-01T23:18:00.000Z",
        },
        {
            "type": "track",
            "userId": "971mj8mk7p",
            "event": "Song Played",
            "properties": {"name": "Get Right", "artist": "Jennifer Lopez"},
            "timestamp": "2012-12-01T23:18:00.000Z",
        },
    ],
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}


def _link(engine: Engine, account: str, user_id: int) -> None:
    with unit_of_work(engine) as session:
        link_account(session, account, user_id, source=LinkSource.IMPORT)


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(write_keys=[KEY, "second_key"], data_dir=tmp_path)
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


def _post(client: TestClient, path: str, body: Any, **headers: str) -> Any:
    return client.post(
        path, content=json.dumps(body), headers={**_auth(), "Content-Type": "application/json", **headers}
    )


def test_identify_from_the_docs_stores_typed_traits(client: TestClient, engine: Engine) -> None:
    response = _post(client, "/v1/identify", SEGMENT_IDENTIFY)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    traits = traits_of(engine, "019mr8mf4r")
    assert {name: str(t.value) for name, (t, _) in traits.items()} == {
        "email": "pgibbons@example.com",
        "name": "Peter Gibbons",
        "industry": "Technology",
    }
    assert {at for _, at in traits.values()} == {datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)}


def test_identify_without_timestamp_uses_the_receive_time(client: TestClient, engine: Engine) -> None:
    before = datetime.now(UTC)
    assert _post(client, "/v1/identify", SEGMENT_SPEC_IDENTIFY).status_code == 200
    traits = traits_of(engine, "97980cfea0067")
    assert traits["logins"][0].value == 5.0 and traits["plan"][0].value == "premium"
    assert traits["plan"][1] >= before.replace(microsecond=0)


def test_track_of_a_linked_account_enters_the_log(client: TestClient, engine: Engine) -> None:
    _link(engine, "019mr8mf4r", 4242)
    response = _post(client, "/v1/track", SEGMENT_TRACK)
    assert response.status_code == 200 and response.json()["logged"] == 1
    [event] = user_events(engine, 4242)
    assert event.kind == EventKind.PRODUCT
    assert event.ts == datetime(2012, 12, 2, 0, 30, 12, 984000, tzinfo=UTC)
    assert event.attributes == {
        "source": "product",
        "event": "Item Purchased",
        "account_id": "019mr8mf4r",
        "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    }


def test_track_without_timestamp_and_unlinked_waits_then_attaches(client: TestClient, engine: Engine) -> None:
    body = {key: value for key, value in SEGMENT_TRACK.items() if key != "timestamp"}
    response = _post(client, "/v1/track", body)
    assert response.json()["pending"] == 1
    assert pending_count(engine, "019mr8mf4r") == 1
    _link(engine, "019mr8mf4r", 7)
    [event] = user_events(engine, 7)
    assert event.attributes is not None and event.attributes["event"] == "Item Purchased"
    assert abs((datetime.now(UTC) - event.ts).total_seconds()) < 60


def test_batch_from_the_docs(client: TestClient, engine: Engine) -> None:
    _link(engine, "019mr8mf4r", 1)
    response = _post(client, "/v1/batch", SEGMENT_BATCH)
    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in ("accepted", "logged", "pending", "traits")} == {
        "accepted": 3,
        "logged": 1,
        "pending": 1,
        "traits": 3,
    }
    assert traits_of(engine, "019mr8mf4r")["age"][0].value == 26.0
    assert pending_count(engine, "971mj8mk7p") == 1


def test_other_call_types_in_a_batch_are_left_out(client: TestClient) -> None:
    body = {"batch": [*SEGMENT_BATCH["batch"], {"type": "page", "userId": "x", "name": "Home"}]}  # type: ignore[misc]
    response = _post(client, "/v1/batch", body)
    assert response.status_code == 200 and response.json()["ignored"] == 1


def test_duplicate_message_id_is_acknowledged_and_stored_once(client: TestClient, engine: Engine) -> None:
    _link(engine, "019mr8mf4r", 3)
    body = {**SEGMENT_TRACK, "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db"}
    assert _post(client, "/v1/track", body).json()["accepted"] == 1
    again = _post(client, "/v1/track", body)
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    batch = {"batch": [{**body, "type": "track"}, {**body, "type": "track", "messageId": "fresh"}]}
    assert _post(client, "/v1/batch", batch).json()["duplicates"] == 1
    assert len(user_events(engine, 3)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wk_9dT2kq"},
        {"Authorization": "Basic !!!notbase64"},
        _auth("wrong_key"),
        _auth(""),
    ],
    ids=["none", "bearer", "garbage", "unknown-key", "empty-key"],
)
def test_bad_auth_is_refused_and_stores_nothing(
    engine: Engine, tmp_path: Path, headers: dict[str, str]
) -> None:
    settings = load_settings(write_keys=[KEY], data_dir=tmp_path)
    with TestClient(create_app(settings, engine)) as client:
        response = client.post("/v1/track", content=json.dumps(SEGMENT_TRACK), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["success"] is False
    assert pending_count(engine) == 0


def test_no_configured_keys_refuses_everything(engine: Engine, tmp_path: Path) -> None:
    with TestClient(create_app(load_settings(data_dir=tmp_path), engine)) as client:
        response = client.post("/v1/track", content=json.dumps(SEGMENT_TRACK), headers=_auth())
    assert response.status_code == 401 and "RAPPORT_WRITE_KEYS" in response.json()["error"]


def test_oversized_bodies_are_refused(client: TestClient, engine: Engine) -> None:
    big = {**SEGMENT_TRACK, "properties": {"blob": "x" * (33 * 1024)}}
    assert _post(client, "/v1/track", big).status_code == 413
    # 33 KB is fine inside a batch as a whole, not as one of its calls.
    assert _post(client, "/v1/batch", {"batch": [{**big, "type": "track"}]}).status_code == 400
    calls = [{**SEGMENT_TRACK, "type": "track", "properties": {"blob": "y" * 20_000}} for _ in range(30)]
    assert _post(client, "/v1/batch", {"batch": calls}).status_code == 413
    assert pending_count(engine) == 0


def test_oversized_body_without_content_length_is_cut_off(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"userId": "a", "event": "e", "properties": {"p": "'
        for _ in range(40):
            yield b"z" * 1024
        yield b'"}}'

    response = client.post("/v1/track", content=chunks(), headers=_auth())
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/track", b"{not json", "not valid JSON"),
        ("/v1/track", b"[1, 2]", "JSON object"),
        ("/v1/track", json.dumps({"userId": "a"}).encode(), "event is required"),
        (
            "/v1/track",
            json.dumps({"anonymousId": "507f191e810c19729de860ea", "event": "x"}).encode(),
            "anonymous",
        ),
        (
            "/v1/track",
            json.dumps({"userId": "a", "event": "x", "timestamp": "yesterday"}).encode(),
            "ISO 8601",
        ),
        ("/v1/track", json.dumps({"userId": "a", "event": "x", "properties": [1]}).encode(), "properties"),
        ("/v1/identify", json.dumps({"userId": "a", "traits": "plan=pro"}).encode(), "traits"),
        ("/v1/identify", json.dumps({"type": "track", "userId": "a"}).encode(), "does not match"),
        ("/v1/track", json.dumps({"userId": "u" * 65, "event": "x"}).encode(), "userId is longer"),
        ("/v1/batch", json.dumps({"batch": []}).encode(), "non-empty"),
        (
            "/v1/batch",
            json.dumps({"batch": [SEGMENT_TRACK | {"type": "track"}, {"type": "track"}]}).encode(),
            "batch[1]",
        ),
        (
            "/v1/batch",
            json.dumps({"batch": [{"type": "delete", "userId": "a"}]}).encode(),
            "identify or track",
        ),
    ],
)
def test_malformed_bodies_are_refused_whole(
    client: TestClient, engine: Engine, path: str, body: bytes, needle: str
) -> None:
    response = client.post(path, content=body, headers=_auth())
    assert response.status_code == 400
    assert needle in response.json()["error"]
    assert pending_count(engine) == 0


def test_each_write_key_has_its_own_rate_limit(engine: Engine, tmp_path: Path) -> None:
    now = [0.0]
    limiter = KeyRateLimiter(2.0, burst=2.0, clock=lambda: now[0])
    settings = load_settings(write_keys=[KEY, "second_key"], data_dir=tmp_path)
    with TestClient(create_app(settings, engine, limiter=limiter)) as client:
        codes = [_post(client, "/v1/identify", SEGMENT_SPEC_IDENTIFY).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = _post(client, "/v1/identify", SEGMENT_SPEC_IDENTIFY)
        assert limited.headers["retry-after"] == "1"
        other = client.post(
            "/v1/identify", content=json.dumps(SEGMENT_SPEC_IDENTIFY), headers=_auth("second_key")
        )
        assert other.status_code == 200
        now[0] = 0.5  # one token back at 2/s
        assert _post(client, "/v1/identify", SEGMENT_SPEC_IDENTIFY).status_code == 200
