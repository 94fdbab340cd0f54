"""Thread-safe records of what the bot did, with waiting on a predicate.

The server runs either in the caller's loop or in its own thread; tests wait for a
sent message from their own event loop, the demo from a plain thread. A
:class:`Recorder` serves both: ``wait_for`` resolves a future in the waiter's loop via
``call_soon_threadsafe``, ``wait_for_blocking`` sleeps on a condition variable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fakeapi.errors import WaitTimeout

__all__ = ["CallRecord", "Recorder", "SentRecord"]

T = TypeVar("T")


@dataclass(frozen=True)
class SentRecord:
    """One message the bot sent or changed (sendMessage, sendPoll, edits).

    Attributes:
        method: Canonical Bot API method name, e.g. ``"sendMessage"``.
        chat_id: Chat the message lives in.
        message_id: The message's id in that chat.
        text: Message text after parse_mode was applied (poll question for polls).
        reply_markup: The reply_markup object as sent, decoded from JSON.
        time: Unix time of the call.
        message: The full Message object returned to the bot.
        params: All call parameters, JSON strings decoded.
    """

    method: str
    chat_id: int
    message_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    time: float
    message: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallRecord:
    """One Bot API call as the server answered it.

    Attributes:
        method: Canonical method name (``"getUpdates"``), or the name as requested if unknown.
        params: Call parameters, JSON strings decoded.
        status: HTTP status of the answer (200, 400, 429, ...).
        description: Error description for failed calls, else ``None``.
        time: Unix time the call arrived.
        result: The ``result`` field for successful calls.
    """

    method: str
    params: dict[str, Any]
    status: int
    description: str | None
    time: float
    result: Any = None

    @property
    def ok(self) -> bool:
        """Whether Telegram would have answered ``"ok": true``."""
        return self.status == 200


@dataclass
class _Waiter(Generic[T]):
    predicate: Callable[[T], bool]
    since: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]


def _resolve(future: asyncio.Future[T], item: T) -> None:
    if not future.done():
        future.set_result(item)


def _fail(future: asyncio.Future[T], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class Recorder(Generic[T]):
    """An append-only list that any thread or event loop can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._cond = threading.Condition()
        self._waiters: list[_Waiter[T]] = []

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items())

    def __getitem__(self, index: int) -> T:
        with self._cond:
            return self._items[index]

    def items(self) -> list[T]:
        """Return a snapshot copy of the records so far."""
        with self._cond:
            return list(self._items)

    def clear(self) -> None:
        """Forget every record (waiters keep waiting for new ones)."""
        with self._cond:
            self._items.clear()
            for waiter in self._waiters:
                waiter.since = 0

    def append(self, item: T) -> None:
        """Add a record and wake every waiter whose predicate it satisfies."""
        with self._cond:
            self._items.append(item)
            index = len(self._items) - 1
            for waiter in list(self._waiters):
                if index < waiter.since:
                    continue
                try:
                    matched = waiter.predicate(item)
                except Exception as exc:  # the waiter's bug: report it to the waiter
                    self._waiters.remove(waiter)
                    waiter.loop.call_soon_threadsafe(_fail, waiter.future, exc)
                    continue
                if matched:
                    self._waiters.remove(waiter)
                    waiter.loop.call_soon_threadsafe(_resolve, waiter.future, item)
            self._cond.notify_all()

    def _first_match(self, predicate: Callable[[T], bool], since: int) -> T | None:
        for item in self._items[since:]:
            if predicate(item):
                return item
        return None

    async def wait_for(
        self,
        predicate: Callable[[T], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
    ) -> T:
        """Return the first record (index >= ``since``) matching ``predicate``, waiting for it.

        Raises:
            WaitTimeout: Nothing matched within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._cond:
            found = self._first_match(predicate, since)
            if found is not None:
                return found
            waiter = _Waiter(predicate, since, loop, future)
            self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise WaitTimeout(f"no record matched within {timeout} s") from exc
        finally:
            with self._cond:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def wait_for_blocking(self, predicate: Callable[[T], bool], timeout: float = 5.0, *, since: int = 0) -> T:
        """Blocking twin of :meth:`wait_for` for plain threads (never the server's own loop).

        Raises:
            WaitTimeout: Nothing matched within ``timeout`` seconds.
        """
        with self._cond:
            found: list[T] = []

            def check() -> bool:
                item = self._first_match(predicate, since)
                if item is None:
                    return False
                found.append(item)
                return True

            if not self._cond.wait_for(check, timeout):
                raise WaitTimeout(f"no record matched within {timeout} s")
            return found[0]
