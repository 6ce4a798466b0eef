"""Strawberry's two WebSocket protocol handlers, with the contract's rules on top.

- A missing or invalid token in `connection_init` closes the socket with 4401 (Strawberry's
  rejection closes with 4403; the legacy handler with 1011).
- Past the per-socket limit, a new operation gets an error with QUERY_TOO_COMPLEX, and the
  socket stays open.
- The legacy protocol gets a connection_init timeout (4408), which Strawberry gives only to
  the newer protocol. Keep-alive is uvicorn's: WebSocket pings from the server, which also
  drop a peer that stopped answering.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql import GraphQLError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from schema.context import Context
from schema.live import LIVE_OPERATION, Handoff, LiveOperation, PayloadSender
from server.auth import AuthError
from server.wsprotocol import SEND_TEXT_NOW

if TYPE_CHECKING:
    from server.view import GraphQLView

UNAUTHORIZED = 4401
INIT_TIMEOUT = 4408


def _too_many(limit: int) -> dict[str, Any]:
    return GraphQLError(
        f"This socket already runs {limit} operations; complete one first.",
        extensions={"code": "QUERY_TOO_COMPLEX"},
    ).formatted  # type: ignore[return-value]


def _init_payload(message: Any) -> dict[str, Any]:
    payload = message.get("payload")
    return payload if isinstance(payload, dict) else {}


class _FrameSender:
    """Sends a shared payload as this operation's message, framed around the payload text."""

    __slots__ = ("head", "send_text_now", "ws")

    def __init__(self, websocket: Any, prefix: str, operation_id: object) -> None:
        self.head = prefix % orjson.dumps(operation_id).decode()
        self.ws = websocket.ws  # Starlette's WebSocket, under Strawberry's adapter
        # Ours (server/wsprotocol.py) where uvicorn serves with it; None elsewhere.
        self.send_text_now = self.ws.scope.get("extensions", {}).get(SEND_TEXT_NOW)

    async def __call__(self, payload: str) -> None:
        await self.ws.send({"type": "websocket.send", "text": self.head + payload + "}"})

    def now(self, payload: str) -> bool:
        """Send at once if the socket takes it without waiting; False: nothing was sent."""
        send_text_now = self.send_text_now
        return send_text_now is not None and bool(send_text_now(self.head + payload + "}"))


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, the protocol of the `graphql-ws` client library."""

    @property
    def _view(self) -> GraphQLView:
        return cast("GraphQLView", self.view)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if not self.connection_init_received and not self.connection_timed_out:
            authorization = _init_payload(message).get("Authorization")
            try:
                self.context.viewer = self._view.verifier.from_authorization(authorization)
            except AuthError as exc:
                if self.connection_init_timeout_task:
                    self.connection_init_timeout_task.cancel()
                await self.websocket.close(code=UNAUTHORIZED, reason=f"Unauthorized: {exc}")
                return
            # Strawberry closes on an explicit null payload; the protocol allows it.
            message = cast("Any", {**message, "payload": _init_payload(message)})
        await super().handle_connection_init(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.context.limits.max_subscriptions_per_socket
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            error = {"id": message["id"], "type": "error", "payload": [_too_many(limit)]}
            await self.send_message(cast("Any", error))
            return
        payload = message.get("payload")
        variables = payload.get("variables") if isinstance(payload, dict) else None
        operation_id = message.get("id")
        # Strawberry starts the operation's task inside this call; the task inherits the mark.
        mark = LIVE_OPERATION.set(
            LiveOperation(
                id=str(operation_id),
                variables=variables if isinstance(variables, dict) else None,
                send=self._frame_sender('{"id":%s,"type":"next","payload":', operation_id),
                handoff=True,
            )
        )
        try:
            await super().handle_subscribe(message)
        finally:
            LIVE_OPERATION.reset(mark)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        try:
            await super().run_operation(operation)
            return
        except Handoff as handoff:
            deliver = handoff.take()
        # Out of the except block, so that no traceback keeps Strawberry's frames alive: the
        # shared delivery goes on in this task (cancelled as usual when the client completes
        # the operation or the socket closes), and ends as Strawberry's stream would have.
        try:
            await deliver()
        except Exception as exc:
            # As Strawberry's stream reports a failure: a `next` with the shaped error (its
            # code; internal errors masked and logged), then `complete`.
            errors = [
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            ]
            self.schema.process_errors(errors, None)
            message = {"data": None, "errors": [e.formatted for e in errors]}
            with contextlib.suppress(Exception):
                await operation.send_operation_message(
                    cast("Any", {"id": operation.id, "type": "next", "payload": message})
                )
        with contextlib.suppress(Exception):
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        if self.operations.get(operation.id) is operation:  # the id may be in use again
            del self.operations[operation.id]

    def _frame_sender(self, prefix: str, operation_id: object) -> PayloadSender:
        return _FrameSender(self.websocket, prefix, operation_id)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy `graphql-ws` protocol of subscriptions-transport-ws (Apollo)."""

    _init_timeout: asyncio.Task[None]

    @property
    def _view(self) -> GraphQLView:
        return cast("GraphQLView", self.view)

    async def handle(self) -> None:
        self._init_timeout = asyncio.create_task(self._close_unless_initialised())
        try:
            await super().handle()
        finally:
            self._init_timeout.cancel()

    async def _close_unless_initialised(self) -> None:
        wait: timedelta = self._view.connection_init_wait_timeout
        await asyncio.sleep(wait.total_seconds())
        if not self.connection_acknowledged:
            with contextlib.suppress(WebSocketDisconnected, RuntimeError):
                await self.websocket.close(
                    code=INIT_TIMEOUT, reason="Connection initialisation timeout"
                )

    async def handle_connection_init(self, message: LegacyConnectionInitMessage) -> None:
        if not self.connection_acknowledged:
            authorization = _init_payload(message).get("Authorization")
            try:
                self.context.viewer = self._view.verifier.from_authorization(authorization)
            except AuthError as exc:
                reason = f"Unauthorized: {exc}"
                await self.send_message(
                    {"type": "connection_error", "payload": {"message": reason}}
                )
                await self.websocket.close(code=UNAUTHORIZED, reason=reason)
                return
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self._init_timeout.cancel()

    async def handle_start(self, message: StartMessage) -> None:
        limit = self.context.limits.max_subscriptions_per_socket
        if (
            self.connection_acknowledged
            and message["id"] not in self.tasks
            and len(self.tasks) >= limit
        ):
            error = {"type": "error", "id": message["id"], "payload": _too_many(limit)}
            await self.send_message(cast("Any", error))
            return
        payload = message.get("payload")
        variables = payload.get("variables") if isinstance(payload, dict) else None
        operation_id = message.get("id")
        mark = LIVE_OPERATION.set(
            LiveOperation(
                id=str(operation_id),
                variables=variables if isinstance(variables, dict) else None,
                send=_FrameSender(
                    self.websocket, '{"type":"data","id":%s,"payload":', operation_id
                ),
            )
        )
        try:
            await super().handle_start(message)
        finally:
            LIVE_OPERATION.reset(mark)
