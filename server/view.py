"""The WebSocket side of /graphql, and the GraphiQL page: Strawberry's ASGI view, with our
protocol handlers and context. HTTP GraphQL requests are server/http.py's."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types.unset import UNSET

from schema.context import Context
from server.auth import TokenVerifier
from server.runtime import Runtime
from server.websockets import LegacyWSHandler, TransportWSHandler


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # Waits while the client is not reading (uvicorn applies backpressure to the close frame
    # too); uvicorn's keepalive ping timeout drops a client that never reads again.
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason)


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        super().__init__(
            runtime.schema,
            graphql_ide="graphiql",
            keep_alive=True,
            keep_alive_interval=settings.keep_alive_interval_s,
            connection_init_wait_timeout=timedelta(seconds=settings.connection_init_timeout_s),
            # Enforced by our handlers, which answer with an extensions.code.
            max_subscriptions_per_connection=None,
        )
        self.runtime = runtime

    @property
    def verifier(self) -> TokenVerifier:
        return self.runtime.verifier

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        self.runtime.sockets += 1
        try:
            return await super().run(request, context, root_value)
        finally:
            self.runtime.sockets -= 1

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        # Only sockets come here; the viewer is set when connection_init authenticates.
        assert isinstance(request, WebSocket)

        def disconnect(code: int, reason: str) -> None:
            self.runtime.spawn(_close(request, code, reason))

        return self.runtime.context(request, viewer=None, socket=True, disconnect=disconnect)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: Strawberry sends bytes as binary WebSocket frames.
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)
