"""Errors of the local Bot API server.

Two families live here: :class:`BotApiError` is what a Bot API method answers over
HTTP (Telegram's ``error_code``/``description``), while :class:`SimulationError`
and :class:`WaitTimeout` are raised to the Python caller that drives the simulation.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BotApiError",
    "LocalApiError",
    "SimulationError",
    "WaitTimeout",
    "bad_request",
    "too_many_requests",
]


class LocalApiError(Exception):
    """Base class of every error raised by :mod:`fakeapi`."""


class BotApiError(LocalApiError):
    """An error answer of a Bot API method, rendered as Telegram renders it.

    Args:
        error_code: The HTTP status and ``error_code`` field (400, 401, 403, 404, 409, 429, ...).
        description: Telegram's human-readable description, e.g. ``"Bad Request: chat not found"``.
        retry_after: Seconds to wait, sent as ``parameters.retry_after`` (429 answers).
    """

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None):
        super().__init__(f"{error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        """Return the JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> BotApiError:
    """Build a 400 answer with Telegram's ``"Bad Request: "`` prefix."""
    return BotApiError(400, f"Bad Request: {detail}")


def too_many_requests(retry_after: int) -> BotApiError:
    """Build a 429 answer exactly as Telegram words it."""
    return BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


class SimulationError(LocalApiError, ValueError):
    """The simulation was asked for something Telegram could not produce."""


class WaitTimeout(LocalApiError, TimeoutError):
    """No record matched a ``wait_for`` predicate within the timeout."""
