"""The HTTP protocol the service is served with (server/httpprotocol.py), seen from a raw
socket: each response goes out whole, in order, and nothing waits behind another write."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette

from tests.support import running, token

QUERY = b'{"query":"{ workflowRunStatusCounts(workspaceId: \\"ws-a\\") { status count } }"}'


@pytest.fixture
async def raw(app: Starlette) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain TCP connection to the service on a real uvicorn."""
    async with running(app) as base_url:
        parts = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            yield reader, writer
        finally:
            writer.close()


def _graphql_post(*, close: bool = False) -> bytes:
    headers = [
        b"POST /graphql HTTP/1.1",
        b"Host: test",
        b"Content-Type: application/json",
        b"Authorization: Bearer " + token(["ws-a"]).encode(),
        b"Content-Length: " + str(len(QUERY)).encode(),
    ]
    if close:
        headers.append(b"Connection: close")
    return b"\r\n".join(headers) + b"\r\n\r\n" + QUERY


async def _response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response's head and body (framed by its Content-Length)."""
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
    return head, body


def _assert_whole_answer(received: bytes) -> None:
    """`received` is exactly one 200 response to QUERY: its head and all of its body."""
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b'"workflowRunStatusCounts"' in body
    assert f"content-length: {len(body)}".encode() in head.lower()


async def test_a_small_response_arrives_in_one_piece(app: Starlette) -> None:
    """Head and body in one write. uvicorn's own protocol writes the head first and the body
    after: a client reading in another thread then gets the head alone from its first read."""

    def first_read(host: str, port: int) -> bytes:
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(_graphql_post())
            return sock.recv(65_536)

    async with running(app) as base_url:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        firsts = [
            await asyncio.to_thread(first_read, parts.hostname, parts.port) for _ in range(20)
        ]
    for first in firsts:
        _assert_whole_answer(first)


async def test_pipelined_requests_are_answered_whole_and_in_order(
    raw: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    reader, writer = raw
    writer.write(
        b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
        + _graphql_post()
        + b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n"
    )
    await writer.drain()
    bodies = [(await _response(reader))[1] for _ in range(3)]
    assert bodies[0] == b'{"status":"ok"}'
    assert b'"workflowRunStatusCounts"' in bodies[1]
    assert bodies[2] == b'{"status":"ready"}'


async def test_a_head_request_gets_its_headers_without_a_body(
    raw: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    reader, writer = raw
    writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    # No body is written after the head: the head must not wait for one.
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    # The same connection answers the next request.
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    _, body = await _response(reader)
    assert body == b'{"status":"ok"}'


async def test_a_closing_connection_gets_its_whole_response_first(
    raw: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    reader, writer = raw
    writer.write(_graphql_post(close=True))
    await writer.drain()
    async with asyncio.timeout(10):
        everything = await reader.read()  # to the end: the server closes after answering
    _assert_whole_answer(everything)


async def test_a_large_response_arrives_whole_through_back_pressure(
    raw: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """A static asset of megabytes, sent in chunks: more than the socket buffers hold, so the
    server waits for the reader (whose stream pauses past 128 KiB unread) as it writes."""
    reader, writer = raw
    writer.write(b"GET /static/graphiql/vendor/graphiql@3.8.3/graphiql.min.js HTTP/1.1\r\n")
    writer.write(b"Host: test\r\n\r\n")
    await writer.drain()
    head, body = await _response(reader)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert len(body) > 1024 * 1024
    # And the connection still serves.
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    assert (await _response(reader))[1] == b'{"status":"ok"}'
