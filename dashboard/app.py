"""`create_app(config)`: the dashboard's FastAPI application, its refusal pages and security headers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard import auth
from dashboard.cache import TTLCache
from dashboard.config import DashboardConfig
from dashboard.errors import AccessDenied, LoginLinkRejected
from dashboard.predictions import NextEventPredictor
from dashboard.templating import render
from dashboard.views import (
    audit,
    broadcast,
    campaigns,
    followups,
    insights,
    overview,
    questions,
    segments,
    users,
)

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
RUN_CACHE_S = 24 * 3600.0
# Telegram Web shows Mini Apps in an iframe: allow it (and only it) to frame the dashboard.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _default_lang(request: Request) -> str:
    """Before login: Chinese when the browser prefers it, else English."""
    accept = request.headers.get("accept-language", "").lower()
    return "zh" if accept.startswith("zh") else "en"


def create_app(config: DashboardConfig, *, now: Callable[[], datetime] = _utcnow) -> FastAPI:
    """The dashboard for one database; `now` is injectable so tests can move the clock."""
    app = FastAPI(title="Rapport dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.now = now
    app.state.default_lang = _default_lang
    app.state.cache = TTLCache(config.cache_ttl_s)
    # Per-run figures (a run's events end at its as_of): kept until a restart or a forgotten user.
    app.state.run_cache = TTLCache(RUN_CACHE_S)
    # The follow-up model, loaded once per active model run (the LSTM in a background thread).
    app.state.predictor = NextEventPredictor()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(auth.router)
    for module in (overview, campaigns, broadcast, segments, insights, questions, followups, users, audit):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path != "/static" and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(AccessDenied)
    async def on_denied(request: Request, exc: AccessDenied) -> Response:
        detail = f"bad_link.{exc.args[0]}" if isinstance(exc, LoginLinkRejected) and exc.args else None
        return render(
            request,
            "error.html",
            session=None,
            status_code=exc.status,
            status=exc.status,
            message_key=exc.message_key,
            detail_key=detail,
            detail=None if detail else (str(exc.args[0]) if exc.args else None),
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        key = "not_found" if exc.status_code == 404 else "bad_request"
        return render(
            request,
            "error.html",
            session=None,
            status_code=exc.status_code,
            status=exc.status_code,
            message_key=key,
            detail_key=None,
            detail=None if exc.status_code == 404 else str(exc.detail),
        )

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in exc.errors()) or "request"
        return render(
            request,
            "error.html",
            session=None,
            status_code=400,
            status=400,
            message_key="bad_request",
            detail_key=None,
            detail=f"check: {fields}",
        )

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> Response:
        logger.error("dashboard error on %s %s", request.method, request.url.path, exc_info=exc)
        return render(
            request,
            "error.html",
            session=None,
            status_code=500,
            status=500,
            message_key="server_error",
            detail_key=None,
            detail=None,
        )

    return app
