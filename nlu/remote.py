"""A client for a remote Rasa server's ``/model/parse`` that falls back to the local engine on failure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx

from nlu.errors import ParsePayloadError
from nlu.results import IntentParser, ParseResult

logger = logging.getLogger(__name__)

_FAILURES = (httpx.HTTPError, ValueError, ParsePayloadError)


class RemoteRasaParser(IntentParser):
    """Ask a Rasa server (or ``rapport nlu serve``); on timeout, HTTP error or bad JSON use ``fallback``.

    Args:
        url: base URL of the server, e.g. ``http://rasa:5005``; ``/model/parse`` is appended.
        fallback: the local parser that answers when the remote one cannot.
        timeout_s: connect/read timeout of each request.
    """

    def __init__(
        self, url: str, *, fallback: IntentParser, timeout_s: float = 2.0, auth_token: str | None = None
    ) -> None:
        self.url = url
        self.fallback = fallback
        self.timeout_s = timeout_s
        self._endpoint = url.rstrip("/") + "/model/parse"
        self._params = {"token": auth_token} if auth_token else {}  # Rasa's --auth-token
        self._client = httpx.Client(timeout=timeout_s)

    def _answer(self, response: httpx.Response) -> ParseResult:
        response.raise_for_status()
        payload: Any = response.json()
        return ParseResult.from_rasa(payload)

    def _fail(self, text: str, exc: Exception) -> ParseResult:
        logger.warning("remote NLU at %s failed (%s: %s); using the local engine", self._endpoint,
                       type(exc).__name__, exc)  # fmt: skip
        return self.fallback.parse(text)

    def parse(self, text: str) -> ParseResult:
        """Parse remotely, or locally when the remote server fails."""
        try:
            return self._answer(self._client.post(self._endpoint, json={"text": text}, params=self._params))
        except _FAILURES as exc:
            return self._fail(text, exc)

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Parse each text remotely over one connection (Rasa has no batch endpoint)."""
        return [self.parse(text) for text in texts]

    async def aparse(self, text: str) -> ParseResult:
        """Parse remotely without blocking the event loop; falls back like :meth:`parse`."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self._endpoint, json={"text": text}, params=self._params)
            return self._answer(response)
        except _FAILURES as exc:
            logger.warning("remote NLU at %s failed (%s: %s); using the local engine", self._endpoint,
                           type(exc).__name__, exc)  # fmt: skip
            return await self.fallback.aparse(text)

    def close(self) -> None:
        """Close the pooled HTTP connection."""
        self._client.close()
