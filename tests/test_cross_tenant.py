"""Tenancy as a hostile tenant tries it: a token for workspace A only, aimed at workspace B.

For every query, every filter, every mutation, every nested field and the subscription:

- B's data never comes back, and nothing of B changes;
- B's existence is never hinted at: the answer for a B run (or B workspace) is byte-for-byte the
  answer for one that never existed;
- no A response body anywhere (HTTP or WebSocket) contains a B run id or any other B value.

B's world is made through the API with B's own token: runs in every status, a parent with
children and a grandchild, events, cursors; its values carry markers (`secret-b-...`) that a
string search can find.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

from db.ids import new_run_id
from schema.cursors import decode_event_cursor, encode_event_cursor
from tests.support import (
    SUBSCRIBE,
    GraphQLClient,
    LiveEvents,
    create_run,
    subscribers_registered,
    token,
    wait_for,
    ws_url,
)

RUN_FIELDS = """
    id workspaceId subjectId parentRunId status mode input output error triggeredBy
    cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt
"""
DEEP_RUN = f"""
    {RUN_FIELDS}
    parent {{ {RUN_FIELDS} parent {{ id }} }}
    children {{
        totalCount pageInfo {{ startCursor endCursor hasNextPage hasPreviousPage }}
        edges {{ cursor node {{ {RUN_FIELDS} }} }}
        nodes {{ id children {{ nodes {{ id }} }} }}
    }}
    events {{
        cursor runId workspaceId previousStatus status occurredAt
        run {{ {RUN_FIELDS} parent {{ id }} children {{ nodes {{ id }} }} events {{ cursor }} }}
    }}
"""
RUN_BY_ID = f"query Run($id: ID!) {{ workflowRun(id: $id) {{ {DEEP_RUN} }} }}"
LIST = f"""
query List($ws: ID!, $status: [WorkflowRunStatus!], $filter: WorkflowRunFilter,
           $orderBy: WorkflowRunOrder! = CREATED_AT_DESC, $first: Int, $after: String,
           $last: Int, $before: String) {{
  workflowRuns(workspaceId: $ws, status: $status, filter: $filter, orderBy: $orderBy,
               first: $first, after: $after, last: $last, before: $before) {{
    totalCount pageInfo {{ startCursor endCursor hasNextPage hasPreviousPage }}
    edges {{ cursor node {{ {DEEP_RUN} }} }}
  }}
}}
"""
COUNTS = """
query Counts($ws: ID!, $filter: WorkflowRunFilter) {
  workflowRunStatusCounts(workspaceId: $ws, filter: $filter) { status count }
}
"""
MUTATIONS = {
    "startWorkflowRun": ("$cf: String", "cfWorkflowId: $cf", {"cf": "cf-1"}),
    "markWorkflowRunWaiting": ("", "", {}),
    "pauseWorkflowRun": ("", "", {}),
    "resumeWorkflowRun": ("", "", {}),
    "completeWorkflowRun": ("$out: JSON", "output: $out", {"out": {"ok": True}}),
    "failWorkflowRun": ("$err: String!", "error: $err", {"err": "boom"}),
    "cancelWorkflowRun": ("$reason: String", "reason: $reason", {"reason": "stop"}),
    "timeOutWorkflowRun": ("", "", {}),
    "retryWorkflowRun": ("", "", {}),
}
CREATE = f"""
mutation Create($input: CreateWorkflowRunInput!) {{
  createWorkflowRun(input: $input) {{ {DEEP_RUN} }}
}}
"""
NEVER_WORKSPACE = "ws-never-existed"
STATUSES = [
    "PENDING",
    "RUNNING",
    "WAITING",
    "PAUSED",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMED_OUT",
]


def _mutation(name: str) -> str:
    declared, passed, _ = MUTATIONS[name]
    declared = f", {declared}" if declared else ""
    passed = f", {passed}" if passed else ""
    return f"mutation M($id: ID!{declared}) {{ {name}(id: $id{passed}) {{ {DEEP_RUN} }} }}"


class RecordingClient(GraphQLClient):
    """A's client: keeps every response body it received, for the final string search."""

    def __init__(self, base_url: str, tok: str, seen: list[str]) -> None:
        super().__init__(base_url, tok)
        self.seen = seen

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: Any = ...
    ) -> httpx.Response:
        response = await super().post(query, variables, token=token)
        self.seen.append(response.text)
        return response


@dataclass
class World:
    a: RecordingClient
    b: GraphQLClient
    token_a: str
    token_b: str
    seen: list[str]
    b_runs: dict[str, str] = field(default_factory=dict)  # label -> id
    b_cursors: list[str] = field(default_factory=list)
    b_event_cursors: list[str] = field(default_factory=list)
    b_children_cursor: str = ""
    a_runs: dict[str, str] = field(default_factory=dict)
    a_children_cursor: str = ""
    a_other_order_cursor: str = ""

    @property
    def b_markers(self) -> list[str]:
        """Every value of B that A must never see."""
        return [*self.b_runs.values(), "secret-b"]

    def assert_nothing_of_b_seen(self) -> None:
        assert self.seen, "no A response was recorded"
        for text in self.seen:
            for marker in self.b_markers:
                assert marker not in text, f"{marker!r} leaked into an A response: {text[:500]}"


async def _move(client: GraphQLClient, run_id: str, *steps: str) -> None:
    for step in steps:
        variables = MUTATIONS[step][2]
        variables = {k: f"secret-b-{v}" if isinstance(v, str) else v for k, v in variables.items()}
        data = await client.data(_mutation(step), {"id": run_id, **variables})
        assert data[step]["id"] == run_id


@pytest.fixture
async def world(server: str) -> AsyncIterator[World]:
    token_a = token(["ws-a"], user="user-a")
    token_b = token(["ws-b"], user="secret-b-user")
    seen: list[str] = []
    a = RecordingClient(server, token_a, seen)
    b = GraphQLClient(server, token_b)
    w = World(a=a, b=b, token_a=token_a, token_b=token_b, seen=seen)

    async def b_run(label: str, *steps: str, **fields: Any) -> str:
        run = await create_run(
            b,
            "ws-b",
            subjectId="wf_secret-b",
            input={"secret-b": [1, 2]},
            cfWorkflowId="secret-b-cf",
            **fields,
        )
        await _move(b, run["id"], *steps)
        w.b_runs[label] = run["id"]
        return str(run["id"])

    await b_run("pending")
    await b_run("running", "startWorkflowRun")
    await b_run("waiting", "startWorkflowRun", "markWorkflowRunWaiting")
    await b_run("paused", "pauseWorkflowRun")
    await b_run("paused-running", "startWorkflowRun", "pauseWorkflowRun")
    await b_run("completed", "startWorkflowRun", "completeWorkflowRun")
    await b_run("failed", "failWorkflowRun")
    await b_run("cancelled", "cancelWorkflowRun")
    await b_run("timed-out", "timeOutWorkflowRun")
    parent = await b_run("parent", idempotencyKey="shared-key")
    child = await b_run("child", parentRunId=parent)
    await b_run("grandchild", parentRunId=child)
    await b_run("child-2", "startWorkflowRun", parentRunId=parent)
    retried = await b.data(_mutation("retryWorkflowRun"), {"id": w.b_runs["failed"]})
    w.b_runs["retry"] = retried["retryWorkflowRun"]["id"]

    for order in ("CREATED_AT_DESC", "CREATED_AT_ASC", "UPDATED_AT_DESC"):
        page = await b.data(LIST, {"ws": "ws-b", "orderBy": order, "first": 3})
        w.b_cursors += [edge["cursor"] for edge in page["workflowRuns"]["edges"]]
    parent_view = await b.data(RUN_BY_ID, {"id": parent})
    w.b_children_cursor = parent_view["workflowRun"]["children"]["edges"][0]["cursor"]
    w.b_event_cursors = [e["cursor"] for e in parent_view["workflowRun"]["events"]]
    assert w.b_cursors and w.b_children_cursor and w.b_event_cursors

    # A's own world: a root with a child, and a run that moved.
    root = await create_run(a, "ws-a", subjectId="wf_a", idempotencyKey="shared-key")
    w.a_runs["root"] = root["id"]
    w.a_runs["child"] = (await create_run(a, "ws-a", parentRunId=root["id"]))["id"]
    w.a_runs["other-child"] = (await create_run(a, "ws-a", parentRunId=w.a_runs["child"]))["id"]
    started = await create_run(a, "ws-a")
    await a.data(_mutation("startWorkflowRun"), {"id": started["id"], "cf": "cf-a"})
    w.a_runs["running"] = started["id"]
    view = await a.data(RUN_BY_ID, {"id": root["id"]})
    w.a_children_cursor = view["workflowRun"]["children"]["edges"][0]["cursor"]
    other = await a.data(LIST, {"ws": "ws-a", "orderBy": "UPDATED_AT_DESC", "first": 1})
    w.a_other_order_cursor = other["workflowRuns"]["edges"][0]["cursor"]
    yield w
    await a.aclose()
    await b.aclose()


async def _b_snapshot(w: World) -> Any:
    """Everything B can see of its workspace: runs, histories and counts."""
    page = await w.b.data(LIST, {"ws": "ws-b", "first": 500})
    counts = await w.b.data(COUNTS, {"ws": "ws-b"})
    return page, counts


def _same(b_response: httpx.Response, never_response: httpx.Response) -> None:
    """The answer about B is the answer about something that never existed."""
    assert b_response.status_code == never_response.status_code
    assert b_response.headers["content-type"] == never_response.headers["content-type"]
    assert b_response.text == never_response.text


# --- queries --------------------------------------------------------------------------------------


async def test_a_b_run_by_id_reads_exactly_like_a_run_that_never_existed(world: World) -> None:
    never = await world.a.post(RUN_BY_ID, {"id": new_run_id()})
    assert never.json() == {"data": {"workflowRun": None}}
    for label, run_id in world.b_runs.items():
        response = await world.a.post(RUN_BY_ID, {"id": run_id})
        assert response.json() == {"data": {"workflowRun": None}}, label
        _same(response, never)
    world.assert_nothing_of_b_seen()


def _filters(w: World, run_in_b: str) -> list[dict[str, Any]]:
    return [
        {},
        *({"status": [s]} for s in STATUSES),
        {"status": []},
        {"filter": {"subjectId": "wf_secret-b"}},
        {"filter": {"parentRunId": run_in_b}},
        {"filter": {"rootOnly": True}},
        {"filter": {"rootOnly": False}},
        {"filter": {"triggeredBy": ["USER"]}},
        {"filter": {"triggeredBy": []}},
        {"filter": {"mode": "ASYNC"}},
        {"filter": {"mode": "SYNC"}},
        {"filter": {"userId": "secret-b-user"}},
        {"filter": {"createdAfter": "2000-01-01T00:00:00+00:00"}},
        {"filter": {"createdBefore": "2999-01-01T00:00:00+00:00"}},
        {
            "status": ["PENDING", "RUNNING"],
            "filter": {
                "subjectId": "wf_secret-b",
                "rootOnly": True,
                "triggeredBy": ["USER"],
                "mode": "ASYNC",
                "userId": "secret-b-user",
                "createdAfter": "2000-01-01T00:00:00+00:00",
                "createdBefore": "2999-01-01T00:00:00+00:00",
            },
        },
    ]


def _pagings(w: World) -> list[dict[str, Any]]:
    return [
        *({"orderBy": order} for order in ("CREATED_AT_DESC", "CREATED_AT_ASC", "UPDATED_AT_DESC")),
        {"first": 1},
        {"last": 1},
        {"first": 500},
        *({"after": cursor} for cursor in w.b_cursors),
        *({"before": cursor, "last": 2} for cursor in w.b_cursors),
    ]


async def test_listing_workspace_b_is_forbidden_like_a_workspace_that_never_existed(
    world: World,
) -> None:
    variants = [*_filters(world, world.b_runs["parent"]), *_pagings(world)]
    assert len(variants) > 40
    for variant in variants:
        response = await world.a.post(LIST, {"ws": "ws-b", **variant})
        never = await world.a.post(LIST, {"ws": NEVER_WORKSPACE, **variant})
        body = response.json()
        assert body["data"] is None, variant
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], variant
        _same(response, never)
    world.assert_nothing_of_b_seen()


async def test_status_counts_of_workspace_b_are_forbidden_like_a_workspace_that_never_existed(
    world: World,
) -> None:
    for variant in _filters(world, world.b_runs["parent"]):
        filter_only = {"filter": variant.get("filter")}
        response = await world.a.post(COUNTS, {"ws": "ws-b", **filter_only})
        never = await world.a.post(COUNTS, {"ws": NEVER_WORKSPACE, **filter_only})
        body = response.json()
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        _same(response, never)
    world.assert_nothing_of_b_seen()


async def test_b_ids_as_filters_in_workspace_a_match_nothing_like_ids_that_never_existed(
    world: World,
) -> None:
    never_id = new_run_id()
    for run_id in world.b_runs.values():
        for document, variables in (
            (LIST, {"ws": "ws-a", "filter": {"parentRunId": run_id}}),
            (LIST, {"ws": "ws-a", "filter": {"parentRunId": run_id}, "last": 3}),
            (COUNTS, {"ws": "ws-a", "filter": {"parentRunId": run_id}}),
        ):
            response = await world.a.post(document, variables)
            assert "errors" not in response.json()
            never = await world.a.post(document, {**variables, "filter": {"parentRunId": never_id}})
            _same(response, never)
    # B's user and subject find nothing in A either.
    empty = await world.a.data(
        LIST, {"ws": "ws-a", "filter": {"userId": "secret-b-user", "subjectId": "wf_secret-b"}}
    )
    assert empty["workflowRuns"]["totalCount"] == 0
    world.assert_nothing_of_b_seen()


async def test_b_cursors_in_workspace_a_lists_are_refused_like_any_foreign_cursor(
    world: World,
) -> None:
    # A cursor of one of A's own lists in another order is just as foreign to this list.
    for name in ("after", "before"):
        baseline = await world.a.post(LIST, {"ws": "ws-a", name: world.a_other_order_cursor})
        assert baseline.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        for cursor in world.b_cursors:
            _same(await world.a.post(LIST, {"ws": "ws-a", name: cursor}), baseline)
    world.assert_nothing_of_b_seen()


# --- nested fields --------------------------------------------------------------------------------


async def test_nested_fields_of_a_runs_never_reach_b(world: World) -> None:
    page = await world.a.data(LIST, {"ws": "ws-a", "first": 500})
    seen_ids = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("workspaceId") is not None:
                assert value["workspaceId"] == "ws-a", value
            if isinstance(value.get("id"), str):
                seen_ids.add(value["id"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(page)
    assert set(world.a_runs.values()) <= seen_ids
    assert not seen_ids & set(world.b_runs.values())
    # Each of A's runs by id, with parent, children, events and each event's run.
    for run_id in world.a_runs.values():
        walk(await world.a.data(RUN_BY_ID, {"id": run_id}))
    world.assert_nothing_of_b_seen()


async def test_b_children_cursor_on_an_a_run_is_refused_like_any_foreign_cursor(
    world: World,
) -> None:
    query = (
        "query($id: ID!, $after: String) { workflowRun(id: $id) "
        "{ children(after: $after) { totalCount nodes { id } } } }"
    )
    # The children cursor of A's root is foreign to A's child's children list.
    baseline = await world.a.post(
        query, {"id": world.a_runs["child"], "after": world.a_children_cursor}
    )
    assert baseline.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    response = await world.a.post(
        query, {"id": world.a_runs["child"], "after": world.b_children_cursor}
    )
    _same(response, baseline)
    world.assert_nothing_of_b_seen()


# --- mutations ------------------------------------------------------------------------------------


async def test_creating_in_workspace_b_is_forbidden_like_a_workspace_that_never_existed(
    world: World,
) -> None:
    before = await _b_snapshot(world)
    for extra in ({}, {"idempotencyKey": "shared-key"}, {"parentRunId": world.b_runs["parent"]}):
        run_input = {"subjectId": "wf", "triggeredBy": "USER", **extra}
        response = await world.a.post(CREATE, {"input": {"workspaceId": "ws-b", **run_input}})
        never = await world.a.post(CREATE, {"input": {"workspaceId": NEVER_WORKSPACE, **run_input}})
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["FORBIDDEN"]
        _same(response, never)
    assert await _b_snapshot(world) == before
    world.assert_nothing_of_b_seen()


async def test_an_a_run_with_a_b_parent_is_refused_at_create_like_an_unknown_parent(
    world: World,
) -> None:
    before = await _b_snapshot(world)
    a_before = await world.a.data(COUNTS, {"ws": "ws-a"})
    never = await world.a.post(
        CREATE,
        {"input": {"workspaceId": "ws-a", "subjectId": "wf", "triggeredBy": "USER",
                   "parentRunId": new_run_id()}},
    )  # fmt: skip
    assert [e["extensions"]["code"] for e in never.json()["errors"]] == ["BAD_USER_INPUT"]
    for run_id in world.b_runs.values():
        response = await world.a.post(
            CREATE,
            {"input": {"workspaceId": "ws-a", "subjectId": "wf", "triggeredBy": "USER",
                       "parentRunId": run_id}},
        )  # fmt: skip
        _same(response, never)
    assert await world.a.data(COUNTS, {"ws": "ws-a"}) == a_before
    assert await _b_snapshot(world) == before
    world.assert_nothing_of_b_seen()


async def test_an_idempotency_key_used_in_b_is_a_fresh_key_in_a(world: World) -> None:
    # B created its parent with "shared-key"; A's use of the key returns A's own first run.
    again = await create_run(world.a, "ws-a", subjectId="wf_a", idempotencyKey="shared-key")
    assert again["id"] == world.a_runs["root"]
    assert again["workspaceId"] == "ws-a"
    different = await world.a.post(
        CREATE,
        {"input": {"workspaceId": "ws-a", "subjectId": "other", "triggeredBy": "USER",
                   "idempotencyKey": "shared-key"}},
    )  # fmt: skip
    assert [e["extensions"]["code"] for e in different.json()["errors"]] == ["CONFLICT"]
    world.assert_nothing_of_b_seen()


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
async def test_every_mutation_of_a_b_run_is_not_found_like_a_run_that_never_existed(
    world: World, mutation: str
) -> None:
    before = await _b_snapshot(world)
    a_before = await world.a.data(LIST, {"ws": "ws-a", "first": 500})
    _, _, variables = MUTATIONS[mutation]
    never = await world.a.post(_mutation(mutation), {"id": new_run_id(), **variables})
    body = never.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    # Every status, so that no transition can tell "exists, but not allowed" from "unknown".
    for label, run_id in world.b_runs.items():
        response = await world.a.post(_mutation(mutation), {"id": run_id, **variables})
        assert "INVALID_TRANSITION" not in response.text, label
        _same(response, never)
    assert await _b_snapshot(world) == before
    assert await world.a.data(LIST, {"ws": "ws-a", "first": 500}) == a_before
    world.assert_nothing_of_b_seen()


async def test_b_mutations_in_one_document_with_a_mutations_change_only_a(world: World) -> None:
    before = await _b_snapshot(world)
    document = (
        "mutation($a: ID!, $b: ID!) { "
        "own: pauseWorkflowRun(id: $a) { id status } "
        "theirs: pauseWorkflowRun(id: $b) { id status } "
        "cancelTheirs: cancelWorkflowRun(id: $b) { id } }"
    )
    response = await world.a.post(
        document, {"a": world.a_runs["running"], "b": world.b_runs["running"]}
    )
    body = response.json()
    # Mutation fields are non-null and run in order: B's NOT_FOUND nulls the whole data and
    # stops the rest; A's own change, before it, was made.
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    own = await world.a.data(RUN_BY_ID, {"id": world.a_runs["running"]})
    assert own["workflowRun"]["status"] == "PAUSED"
    assert await _b_snapshot(world) == before
    world.assert_nothing_of_b_seen()


# --- the subscription -----------------------------------------------------------------------------


async def _open(server: str, tok: str, protocol: str) -> ClientConnection:
    ws = await websockets.connect(ws_url(server), subprotocols=[protocol])  # type: ignore[list-item]
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {tok}"}})
    )
    return ws


async def _recv(ws: ClientConnection, seen: list[str]) -> dict[str, Any]:
    while True:
        async with asyncio.timeout(15):  # a deadline, not a wait: fails instead of hanging
            raw = await ws.recv()
        seen.append(str(raw))
        message: dict[str, Any] = json.loads(raw)
        if message["type"] not in ("ping", "pong", "ka"):
            return message


def _start(protocol: str, op_id: str, variables: dict[str, Any]) -> str:
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    return json.dumps(
        {"id": op_id, "type": kind, "payload": {"query": SUBSCRIBE, "variables": variables}}
    )


def _error_payload(message: dict[str, Any]) -> Any:
    """The errors of a refused operation, in either protocol's framing."""
    if message["type"] == "error":
        payload = message["payload"]
        return payload if isinstance(payload, list) else [payload]  # legacy: one error
    assert message["type"] == "data", message  # legacy: errors in a data message
    return message["payload"]["errors"]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_subscribing_to_b_is_forbidden_and_the_socket_stays_open(
    server: str, app: Starlette, world: World, protocol: str
) -> None:
    async with await _open(server, world.token_a, protocol) as ws:
        assert (await _recv(ws, world.seen))["type"] == "connection_ack"
        refusals = []
        for op_id, variables in (
            ("b", {"ws": "ws-b"}),
            ("never", {"ws": NEVER_WORKSPACE}),
            ("b-run", {"ws": "ws-b", "runId": world.b_runs["running"]}),
            ("b-after", {"ws": "ws-b", "after": world.b_event_cursors[0]}),
            ("never-after", {"ws": NEVER_WORKSPACE, "after": world.b_event_cursors[0]}),
        ):
            await ws.send(_start(protocol, op_id, variables))
            refused = await _recv(ws, world.seen)
            assert refused["id"] == op_id
            errors = _error_payload(refused)
            assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], errors
            refusals.append(json.dumps(errors, sort_keys=True))
        assert len(set(refusals)) == 1  # B, with or without a run or cursor, reads as nowhere
        # The same socket still serves A.
        await ws.send(_start(protocol, "own", {"ws": "ws-a"}))
        await subscribers_registered(app, 1)
        run = await create_run(world.a, "ws-a")
        delivered = await _recv(ws, world.seen)
        assert delivered["id"] == "own"
        assert delivered["payload"]["data"]["workflowRunStatusChanged"]["runId"] == run["id"]
        assert ws.close_code is None
    world.assert_nothing_of_b_seen()


async def test_a_b_cursor_on_an_a_subscription_is_bad_user_input_like_any_foreign_cursor(
    server: str, world: World
) -> None:
    protocol = "graphql-transport-ws"
    # A cursor of a workspace that never existed, of the same shape.
    never_cursor = encode_event_cursor(NEVER_WORKSPACE, 1)
    async with await _open(server, world.token_a, protocol) as ws:
        assert (await _recv(ws, world.seen))["type"] == "connection_ack"
        payloads = []
        for i, cursor in enumerate([never_cursor, *world.b_event_cursors]):
            await ws.send(_start(protocol, "op", {"ws": "ws-a", "after": cursor}))
            refused = await _recv(ws, world.seen)
            assert refused["type"] == "error" and refused["id"] == "op", refused
            errors = refused["payload"]
            assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], (i, errors)
            payloads.append(json.dumps(errors, sort_keys=True))
        assert len(set(payloads)) == 1
        assert ws.close_code is None
    world.assert_nothing_of_b_seen()


async def test_an_a_subscription_narrowed_to_a_b_run_never_receives_b_events(
    server: str, app: Starlette, world: World
) -> None:
    b_run = world.b_runs["pending"]
    async with (
        LiveEvents(server, world.token_a, "ws-a", run_id=b_run) as narrowed,
        LiveEvents(server, world.token_a, "ws-a") as everything_in_a,
        LiveEvents(server, world.token_b, "ws-b") as b_itself,
    ):
        await subscribers_registered(app, 3)
        # B's run moves, B's tree is cancelled, B creates: all while A listens.
        await _move(world.b, b_run, "startWorkflowRun", "markWorkflowRunWaiting")
        await world.b.data(_mutation("cancelWorkflowRun"), {"id": world.b_runs["parent"]})
        await create_run(world.b, "ws-b", subjectId="wf_secret-b")
        # start, wait, the cancelled tree (parent, child, grandchild, child-2), a creation.
        b_events = await b_itself.wait_for_count(7)
        assert {e["runId"] for e in b_events} >= {b_run, world.b_runs["parent"]}
        # Then one change in A: once A's streams have passed it, they have passed B's changes.
        marker = await create_run(world.a, "ws-a")
        [seen_in_a] = await everything_in_a.wait_for_count(1)
        assert seen_in_a["runId"] == marker["id"]
        fanout = app.state.runtime.fanout
        marker_seq = decode_event_cursor(seen_in_a["cursor"], "ws-a")
        await wait_for(
            lambda: all(
                s.position >= marker_seq for s in fanout.subscribers() if s.workspace_id == "ws-a"
            ),
            what="A's narrowed subscription to pass A's marker event",
        )
        assert narrowed.error is None
        assert narrowed.events == []
        world.seen.append(json.dumps([narrowed.events, everything_in_a.events]))
    world.assert_nothing_of_b_seen()


COUNTS_LIVE = """
subscription Counts($ws: ID!, $filter: WorkflowRunFilter) {
  workflowRunStatusCountsChanged(workspaceId: $ws, filter: $filter, intervalMs: 50) {
    status count
  }
}
"""


def _counts_of(message: dict[str, Any]) -> dict[str, int]:
    assert message["type"] == "next", message
    rows = message["payload"]["data"]["workflowRunStatusCountsChanged"]
    return {row["status"]: row["count"] for row in rows}


async def test_live_counts_of_b_are_forbidden_and_a_counts_never_move_with_b(
    server: str, app: Starlette, world: World
) -> None:
    protocol = "graphql-transport-ws"

    def subscribe(op_id: str, variables: dict[str, Any]) -> str:
        payload = {"query": COUNTS_LIVE, "variables": variables}
        return json.dumps({"id": op_id, "type": "subscribe", "payload": payload})

    async with await _open(server, world.token_a, protocol) as ws:
        assert (await _recv(ws, world.seen))["type"] == "connection_ack"
        refusals = []
        for op_id, variables in (
            ("b", {"ws": "ws-b"}),
            ("never", {"ws": NEVER_WORKSPACE}),
            ("b-filtered", {"ws": "ws-b", "filter": {"parentRunId": world.b_runs["parent"]}}),
        ):
            await ws.send(subscribe(op_id, variables))
            refused = await _recv(ws, world.seen)
            assert refused["type"] == "error" and refused["id"] == op_id, refused
            assert [e["extensions"]["code"] for e in refused["payload"]] == ["FORBIDDEN"]
            refusals.append(json.dumps(refused["payload"], sort_keys=True))
        assert len(set(refusals)) == 1
        # A's counts narrowed to a B parent read as narrowed to a parent that never existed.
        first: dict[str, Any] = {}
        for op_id, parent in (("b-parent", world.b_runs["parent"]), ("never", new_run_id())):
            await ws.send(subscribe(op_id, {"ws": "ws-a", "filter": {"parentRunId": parent}}))
            message = await _recv(ws, world.seen)
            assert message["id"] == op_id
            first[op_id] = message["payload"]
        assert first["b-parent"] == first["never"]
        assert set(_counts_of({"type": "next", "payload": first["never"]}).values()) == {0}
        # All of A's runs: B's activity never moves them; A's own change does, by exactly one.
        await ws.send(subscribe("all", {"ws": "ws-a"}))
        initial = await _recv(ws, world.seen)
        assert initial["id"] == "all"
        before = _counts_of(initial)
        assert sum(before.values()) == len(world.a_runs)
        await subscribers_registered(app, 3)
        await _move(world.b, world.b_runs["pending"], "startWorkflowRun")
        await world.b.data(_mutation("cancelWorkflowRun"), {"id": world.b_runs["parent"]})
        await create_run(world.b, "ws-b", subjectId="wf_secret-b")
        marker = await create_run(world.a, "ws-a")
        update = await _recv(ws, world.seen)
        assert update["id"] == "all", update  # nothing for the narrowed subscriptions
        assert _counts_of(update) == {**before, "PENDING": before["PENDING"] + 1}
        # Once every ws-a subscriber has passed A's change, none has anything left to say: a
        # ping now is answered with nothing before its pong.
        fanout = app.state.runtime.fanout
        in_a = [s for s in fanout.subscribers() if s.workspace_id == "ws-a"]
        reached = max(s.position for s in in_a)  # "all" has delivered A's change
        await wait_for(
            lambda: all(s.position >= reached for s in in_a),
            what="A's live counts to pass A's change",
        )
        await ws.send(json.dumps({"type": "ping"}))
        while True:
            async with asyncio.timeout(15):
                message = json.loads(await ws.recv())
            world.seen.append(json.dumps(message))
            if message["type"] == "pong":
                break
            assert message["type"] == "ping", f"a message after A's change: {message}"
        assert marker["workspaceId"] == "ws-a"
        assert ws.close_code is None
    world.assert_nothing_of_b_seen()
