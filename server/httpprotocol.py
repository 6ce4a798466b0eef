"""uvicorn's httptools protocol, writing each response's head and body in one system call.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, and the body when it sends `http.response.body`: two writes, two
system calls and two TCP segments for every small response, though the app sends both
messages in one go. Here a connection's writes are gathered and go out together once the
event loop is done with the current callback: one write for the whole response. The
protocol itself is uvicorn's, unchanged; a WebSocket upgrade gets the connection's own
transport back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _Gathering:
    """An asyncio transport whose writes are joined and sent on the next turn of the loop."""

    __slots__ = ("_loop", "_pending", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        """Queue `data` behind what is pending; sent on the next turn of the loop."""
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        """Queue each chunk, as `write`."""
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what was written so far."""
        pending, self._pending = self._pending, None
        if pending and not self.transport.is_closing():
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        """Send what is pending, then half-close."""
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        """Send what is pending, then close."""
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, pause_reading, get_extra_info, ...) as the transport.
        return getattr(self.transport, name)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `httptools` protocol with one write per response."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """uvicorn's, then the gathering wrapper around the transport."""
        super().connection_made(transport)
        # Flow control (set up above) watches the transport itself.
        self.gathering = _Gathering(transport, self.loop)
        self.transport = cast("asyncio.Transport", self.gathering)

    def handle_websocket_upgrade(self) -> None:
        """uvicorn's, handing the socket the transport itself (frames go out as sent)."""
        self.gathering.flush()
        self.transport = self.gathering.transport
        super().handle_websocket_upgrade()


# For uvicorn's `http` setting, wherever the service is served (the CLI, tests, benchmarks).
HTTP_PROTOCOL = f"{__name__}:{GatheringHttpToolsProtocol.__name__}"
