"""The WebSocket rules of the contract, checked at the protocol level with a raw client."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from server.app import create_app
from server.config import Settings
from tests.support import SUBSCRIBE, running, token, ws_url

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] not in ("ping", "pong", "ka"):
            return message


async def _open(server: str, protocol: str = TRANSPORT_WS) -> ClientConnection:
    return await websockets.connect(ws_url(server), subprotocols=[protocol])  # type: ignore[list-item]


async def _init(ws: ClientConnection, tok: str | None) -> None:
    payload = {"Authorization": f"Bearer {tok}"} if tok else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))


def _subscribe(op_id: str, workspace: str = "ws-a") -> str:
    return json.dumps(
        {
            "id": op_id,
            "type": "subscribe",
            "payload": {"query": SUBSCRIBE, "variables": {"ws": workspace}},
        }
    )


async def _closed_with(ws: ClientConnection) -> int | None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed:
        return ws.close_code


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("bad", [None, "not-a-jwt", "expired"])
async def test_a_socket_without_a_valid_token_is_closed_with_4401(
    server: str, protocol: str, bad: str | None
) -> None:
    tok = token(["ws-a"], ttl_s=-60) if bad == "expired" else bad
    ws = await _open(server, protocol)
    await _init(ws, tok)
    assert await _closed_with(ws) == 4401


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_socket_that_never_initialises_is_closed_with_4408(
    settings: Settings, protocol: str
) -> None:
    quick = replace(settings, connection_init_timeout_s=0.3)
    async with running(create_app(quick)) as server:
        ws = await _open(server, protocol)
        assert await _closed_with(ws) == 4408


async def test_a_forbidden_subscription_fails_alone_and_the_socket_stays_open(
    server: str,
) -> None:
    async with await _open(server) as ws:
        await _init(ws, token(["ws-a"]))
        assert (await _recv(ws))["type"] == "connection_ack"
        await ws.send(_subscribe("foreign", workspace="ws-b"))
        refused = await _recv(ws)
        assert refused["id"] == "foreign"
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        # The same socket still serves a permitted subscription.
        await ws.send(_subscribe("own"))
        await ws.send(json.dumps({"id": "own", "type": "complete"}))
        await ws.send(json.dumps({"type": "ping"}))
        assert (await ws.recv()) and ws.close_code is None


async def test_past_the_per_socket_limit_a_subscription_gets_query_too_complex(
    settings: Settings,
) -> None:
    limited = replace(settings, limits=replace(settings.limits, max_subscriptions_per_socket=2))
    async with running(create_app(limited)) as server, await _open(server) as ws:
        await _init(ws, token(["ws-a"]))
        assert (await _recv(ws))["type"] == "connection_ack"
        await ws.send(_subscribe("1"))
        await ws.send(_subscribe("2"))
        await ws.send(_subscribe("3"))
        refused = await _recv(ws)
        assert refused["id"] == "3" and refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        # Completing one frees its slot.
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await ws.send(_subscribe("4"))
        await ws.send(_subscribe("5"))
        refused = await _recv(ws)
        assert refused["id"] == "5" and refused["type"] == "error"
        assert ws.close_code is None


@pytest.mark.parametrize(
    ("after", "code"),
    [("garbage", "BAD_USER_INPUT"), ("00000000" + "0" * 16, "BAD_USER_INPUT")],
)
async def test_a_malformed_or_foreign_cursor_is_bad_user_input(
    server: str, after: str, code: str
) -> None:
    async with await _open(server) as ws:
        await _init(ws, token(["ws-a"]))
        assert (await _recv(ws))["type"] == "connection_ack"
        message = {
            "id": "x",
            "type": "subscribe",
            "payload": {"query": SUBSCRIBE, "variables": {"ws": "ws-a", "after": after}},
        }
        await ws.send(json.dumps(message))
        refused = await _recv(ws)
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == code


@pytest.mark.parametrize("document", ["syntax", "too many tokens"])
async def test_a_subscription_that_does_not_parse_gets_parse_failed_and_the_socket_stays(
    server: str, document: str
) -> None:
    # As over HTTP, for this operation alone: GRAPHQL_PARSE_FAILED, or QUERY_TOO_COMPLEX for a
    # document over the token limit (the parser stops there).
    query = (
        "subscription { workflowRunStatusChanged("
        if document == "syntax"
        else (
            'subscription { workflowRunStatusChanged(workspaceId: "ws-a") { '
            + "status " * 6000
            + "} }"
        )
    )
    ws = await _open(server)
    await _init(ws, token())
    assert (await _recv(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    refused = await asyncio.wait_for(_recv(ws), 10)
    assert refused["id"] == "1" and refused["type"] == "error"
    code = "GRAPHQL_PARSE_FAILED" if document == "syntax" else "QUERY_TOO_COMPLEX"
    assert [e["extensions"]["code"] for e in refused["payload"]] == [code]
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
    await ws.close()
