"""A lean graphql-transport-ws subscriber: websockets' sans-I/O protocol on an asyncio
Protocol, with no task per connection, so that one load-generator core can hold 10,000.

Each received `next` message is timestamped (time.perf_counter) as its bytes arrive, before
any parsing beyond the frame."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

SUBPROTOCOL = Subprotocol("graphql-transport-ws")


class Subscription(asyncio.Protocol):
    """One WebSocket with one subscription; `ready` resolves once it is subscribed."""

    def __init__(self, url: str, token: str, query: str, variables: dict[str, Any]) -> None:
        self._ws = ClientProtocol(parse_uri(url), subprotocols=[SUBPROTOCOL], max_size=None)
        self._init = orjson.dumps(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        self._subscribe = orjson.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        self._transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        # (arrival time, payload) of each `next`, in order.
        self.receipts: list[tuple[float, Any]] = []
        self.problems: list[str] = []
        # When the server completed or failed the operation (it should not), and how the
        # connection ended, if it did.
        self.ended_at: float | None = None
        self.close_code: int | None = None
        self.lost_at: float | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._ws.send_request(self._ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT and event.fin:
                    self._message(now, event.data)
                elif event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    self.problems.append(f"unexpected frame {event.opcode.name}")
                elif event.opcode is Opcode.CLOSE:
                    self.close_code = self._ws.close_code
                    self.problems.append(f"closed by server: {self._ws.close_code}")
            elif isinstance(event, Response):
                if self._ws.handshake_exc is not None:
                    self._fail(f"handshake failed: {self._ws.handshake_exc!r}")
                else:
                    self._ws.send_text(self._init)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.perf_counter()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc!r}"))

    # --- graphql-transport-ws -------------------------------------------------------------

    def _message(self, now: float, data: bytes) -> None:
        message = orjson.loads(data)
        kind = message.get("type")
        if kind == "next":
            payload = message.get("payload")
            if isinstance(payload, dict) and payload.get("errors"):
                # An operation error delivered as a result: not a receipt of an event.
                self.ended_at = now
                self.problems.append(f"next with errors: {_first_error(payload['errors'])}")
                return
            self.receipts.append((now, payload))
        elif kind == "ping":
            self._ws.send_text(b'{"type":"pong"}')
        elif kind == "connection_ack":
            self._ws.send_text(self._subscribe)
            if not self.ready.done():
                self.ready.set_result(now)
        elif kind == "error":
            self.ended_at = now
            self.problems.append(f"error: {_first_error(message.get('payload'))}")
        elif kind == "complete":
            self.ended_at = self.ended_at or now
            self.problems.append("complete")

    def _fail(self, problem: str) -> None:
        self.problems.append(problem)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(problem))
        self.abort()

    def _flush(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        for chunk in self._ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    def close(self) -> None:
        """Close politely (a close frame, then the socket)."""
        if self._transport is not None and not self._transport.is_closing():
            try:
                self._ws.send_close(1000)
                self._flush()
            finally:
                self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _first_error(errors: Any) -> str:
    """`message [code]` of the first GraphQL error in a payload."""
    first = errors[0] if isinstance(errors, list) and errors else errors
    if not isinstance(first, dict):
        return str(first)[:200]
    code = (first.get("extensions") or {}).get("code")
    return f"{first.get('message')} [{code}]"[:200]


async def subscribe(
    host: str, port: int, url: str, token: str, query: str, variables: dict[str, Any]
) -> Subscription:
    """Connect, initialise and subscribe; returns once the server acknowledged the init."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: Subscription(url, token, query, variables), host, port
    )
    await protocol.ready
    return protocol
