"""An aiohttp server speaking Rasa's HTTP API: POST /model/parse, GET /, /status and /version.

Authentication is Rasa's `--auth-token`: with a token, `/model/parse` and `/status` answer only
requests carrying `?token=<token>` (compared in constant time) and refuse the rest with Rasa's
401 body; `/` and `/version` stay open, as in Rasa.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nlu.results import IntentParser

logger = logging.getLogger(__name__)

SERVER_VERSION = "rapport-nlu 1"
_PARSER_KEY: web.AppKey[IntentParser] = web.AppKey("parser", IntentParser)  # type: ignore[type-abstract]
_STATUS_KEY: web.AppKey[Any] = web.AppKey("status")
_PROTECTED = frozenset({"/model/parse", "/status"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _failure(status: int, reason: str, message: str) -> web.Response:
    """Rasa's error body, so clients that read ``message`` keep working."""
    body = {
        "version": SERVER_VERSION,
        "status": "failure",
        "message": message,
        "reason": reason,
        "code": status,
    }
    return web.json_response(body, status=status)


async def _parse(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _failure(400, "BadRequest", 'request body must be JSON like {"text": "hello"}')
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str):
        return _failure(400, "BadRequest", f"'text' must be a string, got {text!r}")
    result = await request.app[_PARSER_KEY].aparse(text)
    return web.json_response(result.to_rasa(), dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text=f"Hello from Rapport NLU: {SERVER_VERSION}")


async def _status(request: web.Request) -> web.Response:
    return web.json_response({**request.app[_STATUS_KEY], "num_active_training_jobs": 0})


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"version": SERVER_VERSION, "minimum_compatible_version": SERVER_VERSION})


def _token_check(token: str) -> Any:
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _PROTECTED:
            given = request.query.get("token", "").encode()
            if not hmac.compare_digest(given, expected):
                return _failure(401, "NotAuthenticated", "User is not authenticated.")
        return await handler(request)

    return check


def build_app(
    parser: IntentParser, *, status: dict[str, Any] | None = None, auth_token: str | None = None
) -> web.Application:
    """The web application; ``status`` is what ``GET /status`` reports (``model_file``, ``model_id``).

    With ``auth_token``, parsing and status need ``?token=`` (Rasa's ``--auth-token``).
    """
    app = web.Application(middlewares=[_token_check(auth_token)] if auth_token else [])
    app[_PARSER_KEY] = parser
    app[_STATUS_KEY] = dict(status or {})
    app.router.add_post("/model/parse", _parse)
    app.router.add_get("/", _hello)
    app.router.add_get("/status", _status)
    app.router.add_get("/version", _version)
    return app


def run_server(
    parser: IntentParser,
    *,
    host: str,
    port: int,
    status: dict[str, Any] | None = None,
    auth_token: str | None = None,
) -> None:
    """Serve until interrupted."""
    logger.info(
        "serving Rasa-compatible NLU on http://%s:%d/model/parse (%s)",
        host,
        port,
        "token required" if auth_token else "no token",
    )
    web.run_app(build_app(parser, status=status, auth_token=auth_token), host=host, port=port, print=None)
