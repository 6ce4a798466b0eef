"""uvicorn's sans-I/O WebSocket protocol, lighter per idle connection.

Ten thousand dashboards mostly wait: what each socket holds while nothing happens is the
server's memory. uvicorn gives every socket an asyncio.Queue (four deques of ~760 bytes each,
empty), an asyncio.Event for write back-pressure (another deque), and keeps the handshake's
request and response, headers and all, for the socket's lifetime. Here the queue and the event
allocate only while someone waits or a message is queued, and the handshake is dropped once the
socket is accepted. The protocol itself is uvicorn's, unchanged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState


class _Mailbox:
    """The part of asyncio.Queue uvicorn uses (put_nowait, get, empty)."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._waiters: deque[asyncio.Future[None]] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        # Wake one getter, as asyncio.Queue does (a cancelled one is skipped).
        self._wake_next()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = deque()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
                if waiter.done() and not waiter.cancelled() and self._items:
                    # Woken and cancelled at once: pass the wake-up on.
                    self._wake_next()
                raise
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _Gate:
    """The part of asyncio.Event uvicorn uses for write back-pressure (set, clear, wait)."""

    __slots__ = ("_open", "_waiters")

    def __init__(self, is_open: bool) -> None:
        self._open = is_open
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    def is_set(self) -> bool:
        """Whether a write may go out now."""
        return self._open

    async def wait(self) -> None:
        if self._open:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `websockets-sansio` protocol with less held per idle connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = cast("asyncio.Queue[Any]", _Mailbox())
        self.writable = cast("asyncio.Event", _Gate(is_open=True))

    def handle_connect(self, event: Any) -> None:
        """uvicorn's, then `send_text_now` put in the scope (the app's task has not started)."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.setdefault("extensions", {})[SEND_TEXT_NOW] = self.send_text_now

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's; and the scope lets go of this protocol, which reference counting then
        frees without waiting for the cyclic collector."""
        super().connection_lost(exc)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.get("extensions", {}).pop(SEND_TEXT_NOW, None)

    def send_text_now(self, text: str) -> bool:
        """Write a text message at once, as `send` would, if it need not wait: the socket
        open and accepted, its buffer below the high-water mark. False: nothing written."""
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def start_keepalive(self) -> None:
        # Called once, right after the handshake's response is written (a hook here rather than
        # an override of `send`, which every message goes through). uvicorn reads the request
        # and response only before that. The request lives on in websockets' parser (a local
        # of its generator): its headers are emptied; the scope keeps what the app reads.
        super().start_keepalive()
        if self.handshake_complete and hasattr(self, "response"):
            self.request.headers.clear()
            del self.request, self.response


# The scope extension holding a socket's `send_text_now` (for a sender that can skip the ASGI
# `send` and its task when nothing stands in the way).
SEND_TEXT_NOW = "workflow_runs.send_text_now"

# For uvicorn's `ws` setting, wherever the service is served (the CLI, tests, benchmarks).
WS_PROTOCOL = f"{__name__}:{LeanWebSocketProtocol.__name__}"
