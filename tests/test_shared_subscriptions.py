"""Shared execution of subscriptions: one execution per event and shape, and the same bytes
on the wire as Strawberry's own per-subscriber execution."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
import websockets
from starlette.applications import Starlette

from server.app import create_app
from server.config import Settings
from tests.support import (
    GraphQLClient,
    create_run,
    running,
    subscribers_registered,
    token,
    wait_for,
    ws_url,
)

RICH = """
subscription Rich($ws: ID!, $after: String, $n: Int!, $withEvents: Boolean!) {
  workflowRunStatusChanged(workspaceId: $ws, after: $after) {
    ...Change
    again: status
    run {
      id status durationMs input output startedAt
      parent { id subjectId }
      children(first: $n) { totalCount nodes { id status } pageInfo { hasNextPage } }
      events @include(if: $withEvents) { previousStatus status }
    }
  }
}
fragment Change on WorkflowRunEvent { cursor runId previousStatus status occurredAt }
"""


class RawSubscription:
    """One subscription on its own socket, keeping each message's exact text."""

    def __init__(self, server: str, query: str, variables: dict[str, Any], *, legacy: bool = False):
        self.server, self.query, self.variables, self.legacy = server, query, variables, legacy
        self.messages: list[str] = []

    async def __aenter__(self) -> RawSubscription:
        protocol = "graphql-ws" if self.legacy else "graphql-transport-ws"
        self.ws = await websockets.connect(ws_url(self.server), subprotocols=[protocol])  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token()}"}}
        await self.ws.send(json.dumps(init))
        assert json.loads(await self.ws.recv())["type"] == "connection_ack"
        kind = "start" if self.legacy else "subscribe"
        payload = {"query": self.query, "variables": self.variables}
        await self.ws.send(json.dumps({"id": "op-1", "type": kind, "payload": payload}))
        return self

    async def collect(self, count: int) -> list[str]:
        while len(self.messages) < count:
            text = str(await self.ws.recv())
            if json.loads(text)["type"] in ("next", "data", "error", "complete"):
                self.messages.append(text)
        return self.messages

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()


async def _changes(client: GraphQLClient, *watchers: RawSubscription) -> None:
    """Four changes; nested fields show the database as it is when an event is executed, so
    each change waits until every watcher has received the previous one."""
    seen = 0

    async def settle() -> None:
        nonlocal seen
        seen += 1
        for watcher in watchers:
            await watcher.collect(seen)

    parent = await create_run(client)
    await settle()
    child = await create_run(client, parentRunId=parent["id"], input={"k": [1, 2.5, None]})
    await settle()
    start = "mutation($id: ID!) { startWorkflowRun(id: $id) { id } }"
    await client.data(start, {"id": child["id"]})
    await settle()
    complete = "mutation($id: ID!) { completeWorkflowRun(id: $id, output: {ok: true}) { id } }"
    await client.data(complete, {"id": child["id"]})
    await settle()


@pytest.mark.parametrize("legacy", [False, True], ids=["graphql-transport-ws", "graphql-ws"])
async def test_shared_payloads_are_byte_for_byte_those_of_per_subscriber_execution(
    settings: Settings, legacy: bool
) -> None:
    shared_app = create_app(settings)
    generic_app = create_app(replace(settings, shared_subscriptions=False))
    variables = {"ws": "ws-a", "n": 5, "withEvents": True}
    async with running(shared_app) as shared, running(generic_app) as generic:
        client = GraphQLClient(shared, token())
        async with (
            RawSubscription(shared, RICH, variables, legacy=legacy) as a,
            RawSubscription(generic, RICH, variables, legacy=legacy) as b,
        ):
            await subscribers_registered(shared_app, 1)
            await subscribers_registered(generic_app, 1)
            await _changes(client, a, b)
            shared_messages = await a.collect(4)
            generic_messages = await b.collect(4)
        await client.aclose()
        assert shared_app.state.runtime.live.executions == 4
        assert generic_app.state.runtime.live is None
    assert shared_messages == generic_messages
    kinds = {json.loads(m)["type"] for m in shared_messages}
    assert kinds == {"data" if legacy else "next"}


async def test_subscribers_with_one_shape_share_one_execution_per_event(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    variables = {"ws": "ws-a", "n": 3, "withEvents": False}
    subscriptions = [RawSubscription(server, RICH, variables) for _ in range(5)]
    # A different value of a variable the selection uses is another shape.
    other = RawSubscription(server, RICH, {**variables, "n": 1})
    for s in [*subscriptions, other]:
        await s.__aenter__()
    try:
        await subscribers_registered(app, 6)
        await _changes(client, *subscriptions, other)
        received = [await s.collect(4) for s in subscriptions]
        other_received = await other.collect(4)
    finally:
        for s in [*subscriptions, other]:
            await s.__aexit__()
    assert app.state.runtime.live.executions == 8  # 4 events x 2 shapes, not x 6 subscribers
    assert all(r == received[0] for r in received)
    # The root field's own arguments (here `after`) do not split a shape; `n` does.
    first_payload = json.loads(received[0][0])["payload"]
    assert first_payload == json.loads(other_received[0])["payload"]  # no children yet
    await wait_for(lambda: app.state.runtime.fanout.subscriber_count == 0, what="cleanup")


async def test_a_completed_shared_subscription_stops_and_its_id_can_be_used_again(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    watch = "subscription($ws: ID!) { workflowRunStatusChanged(workspaceId: $ws) { runId } }"
    received: dict[str, list[str]] = {"a": [], "b": []}
    ends: list[dict[str, Any]] = []

    async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]

        async def send(message: dict[str, Any]) -> None:
            await ws.send(json.dumps(message))

        async def subscribe(op: str) -> None:
            payload = {"query": watch, "variables": {"ws": "ws-a"}}
            await send({"id": op, "type": "subscribe", "payload": payload})

        async def until(check: Any) -> None:
            while not check():
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] == "next":
                    run_id = message["payload"]["data"]["workflowRunStatusChanged"]["runId"]
                    received[message["id"]].append(run_id)
                elif message["type"] in ("complete", "error"):
                    ends.append(message)

        await send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token()}"}})
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await subscribe("a")
        await subscribe("b")
        await subscribers_registered(app, 2)
        first = await create_run(client)
        await until(lambda: len(received["a"]) == 1 and len(received["b"]) == 1)

        await send({"id": "a", "type": "complete"})
        fanout = app.state.runtime.fanout
        await wait_for(lambda: fanout.subscriber_count == 1, what="a's subscriber to go")
        second = await create_run(client)
        await until(lambda: len(received["b"]) == 2)

        await subscribe("a")
        await subscribers_registered(app, 2)
        third = await create_run(client)
        await until(lambda: len(received["a"]) == 2 and len(received["b"]) == 3)

    assert received["b"] == [first["id"], second["id"], third["id"]]
    assert received["a"] == [first["id"], third["id"]]
    assert ends == []  # the server completes nothing the client completed itself


SMALL = """
subscription Small($ws: ID!, $status: [WorkflowRunStatus!]) {
  workflowRunStatusChanged(workspaceId: $ws, status: $status) {
    cursor runId previousStatus status run { id status subjectId }
  }
}
"""


@pytest.mark.parametrize("legacy", [False, True], ids=["graphql-transport-ws", "graphql-ws"])
async def test_waiting_subscribers_are_sent_each_event_in_place_in_order(
    settings: Settings, legacy: bool
) -> None:
    """While a subscriber waits, the fan-out sends it the event itself (no task to wake): the
    same bytes as per-subscriber execution, in order, and a status filter still applies."""
    shared_app = create_app(settings)
    generic_app = create_app(replace(settings, shared_subscriptions=False))
    everything = {"ws": "ws-a"}
    finished = {"ws": "ws-a", "status": ["COMPLETED"]}
    async with running(shared_app) as shared, running(generic_app) as generic:
        client = GraphQLClient(shared, token())
        watchers = [RawSubscription(shared, SMALL, everything, legacy=legacy) for _ in range(3)]
        reference = RawSubscription(generic, SMALL, everything, legacy=legacy)
        filtered = RawSubscription(shared, SMALL, finished, legacy=legacy)
        for s in [*watchers, reference, filtered]:
            await s.__aenter__()
        try:
            await subscribers_registered(shared_app, 4)
            await subscribers_registered(generic_app, 1)
            start = "mutation($id: ID!) { startWorkflowRun(id: $id) { id } }"
            complete = "mutation($id: ID!) { completeWorkflowRun(id: $id) { id } }"
            changes = 0
            for _ in range(3):
                run = await create_run(client)
                for mutation in (None, start, complete):
                    if mutation is not None:
                        await client.data(mutation, {"id": run["id"]})
                    changes += 1
                    # Each change once every watcher has the previous one: they all wait.
                    for watcher in [*watchers, reference]:
                        await watcher.collect(changes)
            in_place = shared_app.state.runtime.live.sent_in_place
            # Then a burst, not waiting for anyone: several events per read of the stream.
            burst = [await create_run(client) for _ in range(3)]
            for mutation in (start, complete):
                for run in burst:
                    await client.data(mutation, {"id": run["id"]})
            changes += 9
            for watcher in [*watchers, reference]:
                await watcher.collect(changes)
            done = await filtered.collect(6)
            received = [w.messages for w in watchers]
        finally:
            for s in [*watchers, reference, filtered]:
                await s.__aexit__()
        await client.aclose()
    assert all(r == reference.messages for r in received)
    statuses = [json.loads(m)["payload"]["data"]["workflowRunStatusChanged"] for m in done]
    assert [s["status"] for s in statuses] == ["COMPLETED"] * 6
    # Before the burst, all but each subscriber's first event at most went out in place (the
    # first may find it still reading its backlog): 3 x 8 for the watchers, and the filtered
    # one's completions.
    assert in_place >= 3 * 8
