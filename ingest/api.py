"""The Segment-spec HTTP API as a FastAPI router: `POST /v1/identify`, `/v1/track`, `/v1/batch`.

Authentication is Segment's: HTTP Basic with a write key (from `RAPPORT_WRITE_KEYS`) as the
username and an empty password. Bodies are bounded by Segment's limits (32 KB a call, 500 KB a
batch) while they are read, so an oversized body is refused without being held in memory.
Each key has its own rate limit (`RAPPORT_INGEST_RATE_PER_S`, HTTP 429 with Retry-After).
Writes are idempotent on `messageId` per key: a retried call is acknowledged and not stored
again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ingest.limits import KeyRateLimiter
from ingest.segment import (
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    CallError,
    ParsedCalls,
    decode_json,
    parse_batch,
    parse_single,
)
from store import Settings
from store.models import utcnow
from store.product import ingest

logger = logging.getLogger(__name__)


def key_id(write_key: str) -> str:
    """What the store keeps of a write key (never the key itself): 16 hex digits of its SHA-256."""
    return hashlib.sha256(write_key.encode("utf-8")).hexdigest()[:16]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers=headers)


class WriteKeys:
    """The configured write keys, compared in constant time."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode("utf-8") for key in keys if key]

    def authenticate(self, header: str | None) -> str:
        """The write key of a valid `Authorization: Basic` header; HTTP 401 otherwise."""
        challenge = {"WWW-Authenticate": 'Basic realm="rapport"'}
        if not self._keys:
            raise _error(401, "no write keys are configured (RAPPORT_WRITE_KEYS)", challenge)
        if header is None or not header.lower().startswith("basic "):
            raise _error(401, "HTTP Basic auth with the write key as username is required", challenge)
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _error(401, "malformed Basic credentials", challenge) from exc
        username = decoded.partition(b":")[0]
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(username, key)
        if not matched:
            raise _error(401, "unknown write key", challenge)
        return username.decode("utf-8")


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused with HTTP 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _error(413, f"body is larger than {limit // 1024} KB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _error(413, f"body is larger than {limit // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


def create_router(settings: Settings, engine: Engine, *, limiter: KeyRateLimiter | None = None) -> APIRouter:
    """The `/v1/*` routes, ready to mount into the dashboard's app (or `create_app`'s)."""
    keys = WriteKeys(settings.write_keys)
    rates = limiter or KeyRateLimiter(settings.ingest_rate_per_s)
    router = APIRouter(prefix="/v1", tags=["ingest"])

    async def handle(request: Request, limit: int, parse: Any) -> JSONResponse:
        try:
            return await take(request, limit, parse)
        except HTTPException as exc:  # answered here, so the router behaves the same when mounted
            return _error_response(exc)

    async def take(request: Request, limit: int, parse: Any) -> JSONResponse:
        write_key = keys.authenticate(request.headers.get("authorization"))
        ident = key_id(write_key)
        wait = rates.acquire(ident)
        if wait > 0:
            raise _error(429, "rate limit exceeded for this write key", {"Retry-After": str(math.ceil(wait))})
        body = await read_bounded(request, limit)
        received_at: datetime = utcnow()
        try:
            parsed: ParsedCalls = parse(decode_json(body), received_at)
        except CallError as exc:
            logger.info("ingest: refused a call from key %s: %s", ident, exc)
            raise _error(400, str(exc)) from exc
        report = await run_in_threadpool(ingest, engine, parsed.messages, key_id=ident, now=received_at)
        return JSONResponse(
            {
                "success": True,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "logged": report.logged,
                "pending": report.pending,
                "traits": report.traits,
                "ignored": parsed.ignored,
                "skipped_traits": list(parsed.skipped_traits),
            }
        )

    @router.post("/identify")
    async def identify(request: Request) -> JSONResponse:
        """Segment `identify`: a product account's traits."""
        return await handle(
            request, MAX_CALL_BYTES, lambda raw, at: parse_single(raw, "identify", received_at=at)
        )

    @router.post("/track")
    async def track(request: Request) -> JSONResponse:
        """Segment `track`: one product event."""
        return await handle(
            request, MAX_CALL_BYTES, lambda raw, at: parse_single(raw, "track", received_at=at)
        )

    @router.post("/batch")
    async def batch(request: Request) -> JSONResponse:
        """Segment `batch`: identify and track calls, all checked before any is stored."""
        return await handle(request, MAX_BATCH_BYTES, lambda raw, at: parse_batch(raw, received_at=at))

    return router


def _error_response(exc: HTTPException) -> JSONResponse:
    """Segment-style error bodies: `{"success": false, "error": ...}`."""
    return JSONResponse(
        {"success": False, "error": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


def create_app(settings: Settings, engine: Engine, *, limiter: KeyRateLimiter | None = None) -> FastAPI:
    """A standalone app serving only the ingest API (tests, benchmarks, a separate process)."""
    app = FastAPI(title="Rapport ingest", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router(settings, engine, limiter=limiter))
    return app
