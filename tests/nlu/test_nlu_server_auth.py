"""Rasa's --auth-token: parse and status need ?token=, the bot sends it, tokenless serving is local only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestServer
from typer.testing import CliRunner

from cli.nlu import app as nlu_cli
from nlu import NLUModel, RemoteRasaParser
from nlu.server import build_app

TOKEN = "s3cret-token"


@pytest.fixture
async def secured_url(default_model: NLUModel) -> AsyncIterator[str]:
    server = TestServer(build_app(default_model, auth_token=TOKEN), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.mark.parametrize("query", ["", "?token=wrong", "?token=", f"?token={TOKEN}x"])
async def test_parse_and_status_refuse_a_missing_or_wrong_token(secured_url: str, query: str) -> None:
    async with httpx.AsyncClient() as client:
        parse = await client.post(f"{secured_url}/model/parse{query}", json={"text": "hello"})
        status = await client.get(f"{secured_url}/status{query}")
    for response in (parse, status):
        assert response.status_code == 401
        assert response.json()["reason"] == "NotAuthenticated"


async def test_the_right_token_parses_and_root_and_version_stay_open(
    secured_url: str, default_model: NLUModel
) -> None:
    async with httpx.AsyncClient() as client:
        parse = await client.post(f"{secured_url}/model/parse?token={TOKEN}", json={"text": "hello"})
        root = await client.get(f"{secured_url}/")
        version = await client.get(f"{secured_url}/version")
    assert parse.status_code == 200
    assert parse.json()["intent"]["name"] == default_model.parse("hello").intent.name
    assert (root.status_code, version.status_code) == (200, 200)


async def test_the_bots_remote_client_sends_the_token(secured_url: str, default_model: NLUModel) -> None:
    class Refusing:
        def parse(self, text: str) -> None:
            raise AssertionError("the fallback was used: the token did not reach the server")

    with_token = RemoteRasaParser(secured_url, fallback=Refusing(), timeout_s=5.0, auth_token=TOKEN)  # type: ignore[arg-type]
    assert (await with_token.aparse("hello")).intent.name == default_model.parse("hello").intent.name
    without = RemoteRasaParser(secured_url, fallback=default_model, timeout_s=5.0)
    assert (await without.aparse("hello")) == default_model.parse("hello")  # 401: the local engine answered


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "rasa.internal"])
def test_serving_beyond_loopback_without_a_token_is_refused(host: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(nlu_cli, ["serve", "--host", host, "--model", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1
    assert f"refusing to serve on {host} without --auth-token" in result.output
