"""ASGI middleware: a request id on every request, the request body size limit, and the
WebSocket endpoint's short path."""

from __future__ import annotations

import re
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import REQUEST_ID

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def error_body(message: str, code: str) -> bytes:
    """A GraphQL-shaped error response body."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


class RequestId:
    """Gives each request an id (the client's X-Request-ID if sane) and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        # Every log line written while serving this request carries its id.
        REQUEST_ID.set(request_id)
        if scope["type"] == "websocket":
            # No response headers to add; not wrapping `send` spares every message a call.
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class SocketRoute:
    """Hands WebSocket connections on `path` straight to `socket_app`, past the layers below
    (exception handling, routing): each is a coroutine frame held for the socket's whole life,
    and a wrapper that every message sent goes through. Other requests pass on to `app`."""

    def __init__(self, app: ASGIApp, path: str, socket_app: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.socket_app = socket_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path: str = scope["path"]
            root_path: str = scope.get("root_path", "")
            if path.startswith(root_path):
                path = path[len(root_path) :]
            if path == self.path:
                await self.socket_app(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = error_body(f"Request body is larger than {self.max_bytes} bytes.", "BAD_USER_INPUT")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
