"""The Rasa-compatible HTTP server: POST /model/parse, GET /, /status and /version."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp.test_utils import TestServer

from nlu import NLUModel, ParseResult
from nlu.server import build_app


@pytest.fixture
async def base_url(default_model: NLUModel) -> AsyncIterator[str]:
    server = TestServer(
        build_app(default_model, status={"model_file": "m", "model_id": "abc"}), host="127.0.0.1"
    )
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_parse_answers_in_rasas_shape(base_url: str, default_model: NLUModel) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base_url}/model/parse", json={"text": "专业版多少钱"})
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"text", "intent", "entities", "intent_ranking"}
    assert ParseResult.from_rasa(payload) == default_model.parse("专业版多少钱")


async def test_status_root_and_version(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        root = await client.get(f"{base_url}/")
        status = await client.get(f"{base_url}/status")
        version = await client.get(f"{base_url}/version")
    assert root.text.startswith("Hello from Rapport NLU")
    assert status.json() == {"model_file": "m", "model_id": "abc", "num_active_training_jobs": 0}
    assert "version" in version.json()


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{not json", "must be JSON"), (b'{"text": 3}', "'text' must be a string"), (b"[]", "'text' must be")],
)
async def test_bad_requests_get_rasas_error_body(base_url: str, body: bytes, message: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base_url}/model/parse", content=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["status"] == "failure" and payload["code"] == 400
    assert message in payload["message"]
