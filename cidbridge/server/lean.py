"""Smaller per-connection objects: what every connected Socket.IO client costs, cut down.

Each WebSocket client keeps, for as long as it is connected, what python-engineio and
uvicorn build for it.  Found with ``bench/client_memory.py`` (tracemalloc, per client):

* two ``asyncio.Queue`` objects (Engine.IO's packets out, uvicorn's messages in), each
  three ``collections.deque`` and an ``asyncio.Event`` with a fourth: about 3.3 kB a
  queue that holds, almost always, nothing.  :class:`LeanQueue` does their job in a
  few hundred bytes, and its :meth:`~LeanQueue.get` is a future rather than a
  coroutine, so ``asyncio.wait_for(queue.get(), …)`` (Engine.IO's writer) runs no
  task of its own;
* the request and response of the WebSocket handshake (two ``Headers`` objects), kept
  by uvicorn's protocol after the handshake, when nothing reads them again
  (``LeanWebSocketProtocol`` lets them go, and empties the request's headers, which
  the websockets parser keeps too);
* the WSGI-style ``wsgi.input`` python-engineio puts in every request's environ: an
  object of a class defined anew for each request (about 2.6 kB with its class).  A
  WebSocket request has no body to read: :func:`lean_translate_request` gives it one
  shared empty input instead.

What this relies on inside python-engineio and uvicorn is listed and checked in
:mod:`cidbridge.internals`, like the fan-out's names.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from cidbridge import internals

T = TypeVar("T")


class LeanQueue(Generic[T]):
    """An unbounded FIFO queue for one event loop, with ``asyncio.Queue``'s methods.

    What a caller can rely on, as with ``asyncio.Queue``: items come out in the order
    they went in; ``put``/``put_nowait`` never wait (there is no ``maxsize``);
    ``task_done``/``join`` count unfinished items.  The one difference: :meth:`get`
    returns a future, not a coroutine (await it the same way).  An item is handed to
    the oldest waiting ``get`` when it is put; a ``get`` cancelled before that takes
    nothing.  Memory is allocated only while there is something to hold.
    """

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    maxsize = 0

    def __init__(self) -> None:
        self._items: collections.deque[T] | None = None
        self._getters: list[asyncio.Future[T]] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        """Items waiting (not counting those already handed to a ``get``)."""
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def waiting(self) -> int:
        """How many ``get`` calls are waiting for an item."""
        getters = self._getters
        if not getters:
            return 0
        if len(getters) == 1:  # the usual case (one writer), on the fan-out's path for every client
            return 0 if getters[0].done() else 1
        return sum(1 for getter in getters if not getter.done())

    def put_nowait(self, item: T) -> None:
        self._unfinished += 1
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():  # a cancelled get takes nothing
                getter.set_result(item)
                return
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)

    async def put(self, item: T) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> T:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None  # a deque keeps a 760-byte block even when empty
        return item

    def get(self) -> asyncio.Future[T]:
        """A future of the next item (already done when one is waiting)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self.get_nowait())
            return future
        getters = self._getters
        if getters is None:
            self._getters = [future]
        else:
            # Gets cancelled (a timeout) while nothing came take nothing: forget them.
            getters[:] = [getter for getter in getters if not getter.done()]
            getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            for joiner in self._joiners:
                if not joiner.done():
                    joiner.set_result(None)
            self._joiners = None

    async def join(self) -> None:
        """Wait until every item put has been marked done."""
        if self._unfinished > 0:
            joiner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner


class _NoBody:
    """The ``wsgi.input`` of a WebSocket request, which has no body."""

    __slots__ = ()

    async def read(self, length: int | None = None) -> bytes:
        return b""


NO_BODY = _NoBody()

Translate = Callable[[dict[str, Any], Any, Any], Awaitable[dict[str, Any]]]


def lean_translate_request(translate: Translate) -> Translate:
    """python-engineio's ``translate_request``, with one shared empty input for WebSockets."""

    async def translate_request(scope: dict[str, Any], receive: Any, send: Any) -> dict[str, Any]:
        environ = await translate(scope, receive, send)
        if environ and scope.get("type") == "websocket":
            environ["wsgi.input"] = NO_BODY
        return environ

    return translate_request


def install(eio: Any) -> bool:
    """Give this Engine.IO server's sockets a :class:`LeanQueue` and WebSockets no body.

    Only for this server (the driver table is shared, so it is copied).  Returns False,
    changing nothing, when a name this needs has changed (:mod:`cidbridge.internals`).
    """
    if not internals.usable(internals.LEAN):
        return False
    eio.create_queue = LeanQueue  # what each socket's .queue is made by
    table = eio._async
    if "translate_request" in table:
        eio._async = {**table, "translate_request": lean_translate_request(table["translate_request"])}
    return True


def websocket_protocol() -> type | str:
    """uvicorn's ``ws=``: its ``websockets-sansio`` protocol, lean when the names it needs are there."""
    if not internals.usable(internals.LEAN):
        return "websockets-sansio"
    return _lean_protocol(internals.websocket_protocol_class())


@functools.cache
def _lean_protocol(base: type) -> type:
    class LeanWebSocketProtocol(base):  # type: ignore[misc, valid-type]
        """uvicorn's ``websockets-sansio`` protocol with a :class:`LeanQueue` for its messages,
        that forgets the handshake's request and response once it has answered."""

        request: Any = None
        response: Any = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.queue = LeanQueue()

        async def send(self, message: Any) -> None:
            await super().send(message)
            if self.response is not None and self.handshake_complete:
                # The parser of websockets keeps the request (a local of its generator)
                # for the connection's life: empty its headers, read by nobody from now on.
                self.request.headers.clear()
                self.request = self.response = None

    return LeanWebSocketProtocol
