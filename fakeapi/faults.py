"""Fault injection: make upcoming calls fail or stall the way Telegram sometimes does."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fakeapi.errors import BotApiError, too_many_requests

__all__ = ["Fault", "FaultPlan"]

_SERVER_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Fault:
    """One kind of failure to apply to matching calls.

    Attributes:
        error: The error answered, or ``None`` for a pure delay.
        delay: Seconds to stall before answering (or before failing).
        method: Lower-case method name it applies to; ``None`` for any method.
        chat_ids: Only calls whose ``chat_id`` is in this set; ``None`` for all calls.
    """

    error: BotApiError | None
    delay: float = 0.0
    method: str | None = None
    chat_ids: frozenset[int] | None = None

    def matches(self, method: str, chat_id: int | None) -> bool:
        """Whether this fault applies to a call of ``method`` for ``chat_id``."""
        if self.method is not None and self.method != method.lower():
            return False
        return self.chat_ids is None or chat_id in self.chat_ids


@dataclass
class _Entry:
    fault: Fault
    remaining: int


def _fault(error: BotApiError | None, delay: float, method: str | None, chat_ids: list[int] | None) -> Fault:
    return Fault(
        error,
        delay,
        method.lower() if method else None,
        frozenset(chat_ids) if chat_ids is not None else None,
    )


class FaultPlan:
    """Queue of faults, each used for a number of matching calls, first added first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []

    def add(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` matching calls."""
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        with self._lock:
            self._entries.append(_Entry(fault, times))

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._entries.clear()

    @property
    def pending(self) -> int:
        """How many faulty answers are still queued."""
        with self._lock:
            return sum(entry.remaining for entry in self._entries)

    def take(self, method: str, chat_id: int | None) -> Fault | None:
        """Consume and return the first fault matching this call, if any."""
        with self._lock:
            for entry in self._entries:
                if entry.fault.matches(method, chat_id):
                    entry.remaining -= 1
                    if not entry.remaining:
                        self._entries.remove(entry)
                    return entry.fault
        return None

    # ---- conveniences ----------------------------------------------------------------
    def _add_error(
        self, error: BotApiError, method: str | None, times: int, chat_ids: list[int] | None
    ) -> None:
        self.add(_fault(error, 0.0, method, chat_ids), times)

    def retry_after(
        self,
        seconds: int = 3,
        *,
        method: str | None = None,
        times: int = 1,
        chat_ids: list[int] | None = None,
    ) -> None:
        """Answer 429 "Too Many Requests: retry after N" with ``parameters.retry_after``."""
        self._add_error(too_many_requests(seconds), method, times, chat_ids)

    def forbidden(
        self,
        description: str = "Forbidden: bot was blocked by the user",
        *,
        method: str | None = None,
        times: int = 1,
        chat_ids: list[int] | None = None,
    ) -> None:
        """Answer 403 (by default "Forbidden: bot was blocked by the user")."""
        self._add_error(BotApiError(403, description), method, times, chat_ids)

    def bad_request(
        self,
        description: str = "Bad Request: chat not found",
        *,
        method: str | None = None,
        times: int = 1,
        chat_ids: list[int] | None = None,
    ) -> None:
        """Answer 400 with the given Telegram description."""
        self._add_error(BotApiError(400, description), method, times, chat_ids)

    def server_error(
        self,
        code: int = 500,
        *,
        method: str | None = None,
        times: int = 1,
        chat_ids: list[int] | None = None,
    ) -> None:
        """Answer 500/502/503, as Telegram's front ends do during outages."""
        if code not in _SERVER_ERRORS:
            raise ValueError(f"server error code must be one of {sorted(_SERVER_ERRORS)}, got {code}")
        error = BotApiError(code, _SERVER_ERRORS[code])
        self._add_error(error, method, times, chat_ids)

    def delay(
        self,
        seconds: float,
        *,
        method: str | None = None,
        times: int = 1,
        chat_ids: list[int] | None = None,
    ) -> None:
        """Stall the answer by ``seconds`` and then process the call normally."""
        if seconds < 0:
            raise ValueError(f"delay must be >= 0, got {seconds}")
        self.add(_fault(None, seconds, method, chat_ids), times)
