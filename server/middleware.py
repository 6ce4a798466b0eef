"""ASGI middleware: one front layer that gives every request its id, refuses bodies over the
size limit, and takes /graphql past Starlette's routing."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import REQUEST_ID

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def error_body(message: str, code: str) -> bytes:
    """A GraphQL-shaped error response body."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


class Front:
    """The first layer every request meets (inside Starlette's server-error handler).

    - Every request gets an id, the client's X-Request-ID if sane, echoed in the response
      and carried by every log line written while serving it.
    - Request bodies over `max_bytes` are refused with 413 before anything parses them.
    - /graphql goes straight to its handlers: WebSockets to `socket_app` (a coroutine frame
      held for each socket's whole life, and a wrapper every message went through, spared),
      HTTP to `http_handler`, past routing and the per-request wrappers of `send`.

    One layer, not three: as three middlewares (and the router) they cost a lookup by id an
    eighth of its CPU (docs/benchmarks.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        http_handler: Callable[[Request], Awaitable[Response]],
        socket_app: ASGIApp,
        max_bytes: int,
    ) -> None:
        self.app = app
        self.path = path
        self.http_handler = http_handler
        self.socket_app = socket_app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = b""
        declared = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
            elif name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        text = given.decode("latin-1")
        # 128 random bits, as uuid4().hex spells them, at a fifth of its cost.
        request_id = text if _REQUEST_ID.match(text) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)
        ours = _route_path(scope) == self.path
        if kind == "websocket":
            await (self.socket_app if ours else self.app)(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, request_id)
            return
        if chunked or declared is None or not declared.isdigit():
            # Counted as it arrives. A declared length alone frames the body (the HTTP parser
            # reads no more); with Transfer-Encoding too, some servers (h11) read it chunked.
            receive = _Counted(receive, self.max_bytes)
        sending = None
        try:
            if ours:
                # The handler reads the whole body before it answers.
                response = await self.http_handler(Request(scope, receive))
                response.raw_headers.append((b"x-request-id", request_id.encode()))
                await response(scope, receive, send)
            else:
                sending = _WithId(send, request_id)
                await self.app(scope, receive, sending)
        except _TooLarge:
            # A streamed response (static files) may read the body while it sends: then
            # nothing more can be said.
            if sending is None or not sending.started:
                await self._refuse(send, request_id)

    async def _refuse(self, send: Send, request_id: str) -> None:
        body = error_body(f"Request body is larger than {self.max_bytes} bytes.", "BAD_USER_INPUT")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path


class _TooLarge(Exception):
    pass


class _Counted:
    """`receive` for a body that its Content-Length alone does not frame: raises _TooLarge
    past `max_bytes`."""

    def __init__(self, receive: Receive, max_bytes: int) -> None:
        self.receive = receive
        self.max_bytes = max_bytes
        self.received = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                raise _TooLarge
        return message


class _WithId:
    """`send` that adds the request id to the response's headers."""

    def __init__(self, send: Send, request_id: str) -> None:
        self.send = send
        self.request_id = request_id
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = [*message.get("headers", ()), (b"x-request-id", self.request_id.encode())]
            message = {**message, "headers": headers}
        await self.send(message)
