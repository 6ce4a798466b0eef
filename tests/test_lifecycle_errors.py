"""Refused lifecycle writes: scopes, tenancy, unknown runs, bad parents, size limits and NUL
characters. Every refusal carries its code, writes nothing, and leaves the server answering."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from tests.support import CREATE, GraphQLClient, create_run, token
from tests.test_lifecycle_matrix import (
    MUTATIONS,
    apply,
    db_state,
    drive,
    fetch_run,
    mutate,
)

# For each mutation, a source state the contract allows it from: a refusal from there can only
# come from what the test changes (token, workspace, input).
ALLOWED_SOURCE = {
    "start": "PENDING",
    "markWaiting": "RUNNING",
    "pause": "RUNNING",
    "resume": "PAUSED_STARTED",
    "complete": "RUNNING",
    "fail": "RUNNING",
    "cancel": "RUNNING",
    "timeOut": "RUNNING",
    "retry": "FAILED",
}
assert set(ALLOWED_SOURCE) == set(MUTATIONS)

JSON_LIMIT = 256 * 1024
TEXT_LIMIT = 64 * 1024
STATUS_COUNTS = '{ workflowRunStatusCounts(workspaceId: "ws-a") { status count } }'


async def assert_still_answering(client: GraphQLClient) -> None:
    data = await client.data(STATUS_COUNTS)
    assert len(data["workflowRunStatusCounts"]) == 8


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    assert len(body.get("errors") or []) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


def code_of(body: dict[str, Any]) -> str:
    code: str = only_error(body)["extensions"]["code"]
    return code


def create_body(**fields: Any) -> dict[str, Any]:
    return {
        "input": {"workspaceId": "ws-a", "subjectId": "wf_errors", "triggeredBy": "USER", **fields}
    }


# --- Scope --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_a_read_only_token_cannot_make_a_transition(
    client: GraphQLClient, pool: asyncpg.Pool, mutation: str
) -> None:
    run = await drive(client, ALLOWED_SOURCE[mutation])
    reader = token(["ws-a", "ws-b"], scopes=("runs:read",))
    before = await fetch_run(client, run["id"])
    state = await db_state(pool)

    body = await mutate(client, mutation, run["id"], token=reader)

    assert code_of(body) == "FORBIDDEN"
    assert await db_state(pool) == state
    assert await fetch_run(client, run["id"]) == before
    await assert_still_answering(client)


async def test_a_read_only_token_cannot_create_a_run(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    reader = token(["ws-a", "ws-b"], scopes=("runs:read",))

    body = await client.execute(CREATE, create_body(), token=reader)

    assert code_of(body) == "FORBIDDEN"
    assert await db_state(pool) == {"runs": [], "events": [], "heads": []}
    await assert_still_answering(client)


# --- Tenancy and unknown runs -------------------------------------------------------------------


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_a_run_outside_the_token_is_not_found_and_its_status_is_not_revealed(
    client: GraphQLClient, pool: asyncpg.Pool, mutation: str
) -> None:
    # One run the mutation would move for its owner, one (COMPLETED) it would refuse with
    # INVALID_TRANSITION: to an outsider both must look exactly like a run that does not exist.
    runs = [
        await drive(client, ALLOWED_SOURCE[mutation], workspace="ws-b"),
        await drive(client, "COMPLETED", workspace="ws-b"),
    ]
    outsider = token(["ws-a"])
    unknown = only_error(await mutate(client, mutation, "run_00000000000000000000000000"))
    before = [await fetch_run(client, run["id"]) for run in runs]
    state = await db_state(pool)

    errors = [only_error(await mutate(client, mutation, r["id"], token=outsider)) for r in runs]

    for error in errors:
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert "currentStatus" not in error["extensions"]
        assert "targetStatus" not in error["extensions"]
        assert error["message"] == unknown["message"]
        assert {k: v for k, v in error["extensions"].items() if k != "requestId"} == {
            k: v for k, v in unknown["extensions"].items() if k != "requestId"
        }
    assert await db_state(pool) == state
    assert [await fetch_run(client, run["id"]) for run in runs] == before
    await assert_still_answering(client)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_an_unknown_run_id_is_not_found(
    client: GraphQLClient, pool: asyncpg.Pool, mutation: str
) -> None:
    await drive(client, "RUNNING")
    state = await db_state(pool)

    for run_id in ("run_00000000000000000000000000", "not-a-run-id", ""):
        body = await mutate(client, mutation, run_id)
        assert code_of(body) == "NOT_FOUND", run_id

    assert await db_state(pool) == state
    await assert_still_answering(client)


async def test_creating_a_run_in_a_workspace_outside_the_token_is_forbidden(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    body = await client.execute(CREATE, create_body(workspaceId="ws-c"))

    assert code_of(body) == "FORBIDDEN"
    assert await db_state(pool) == {"runs": [], "events": [], "heads": []}
    await assert_still_answering(client)


@pytest.mark.parametrize("parent", ["unknown", "other-workspace", "workspace-outside-token"])
async def test_a_parent_that_is_unknown_or_of_another_workspace_is_bad_user_input(
    client: GraphQLClient, pool: asyncpg.Pool, parent: str
) -> None:
    if parent == "unknown":
        parent_id = "run_00000000000000000000000000"
    elif parent == "other-workspace":  # ws-b: the caller may see it, but it is not ws-a's
        parent_id = (await drive(client, "RUNNING", workspace="ws-b"))["id"]
    else:  # ws-c: the caller cannot see it at all
        c_token = token(["ws-c"], user="user-c")
        body = await client.execute(CREATE, create_body(workspaceId="ws-c"), token=c_token)
        parent_id = body["data"]["createWorkflowRun"]["id"]
    state = await db_state(pool)

    body = await client.execute(CREATE, create_body(parentRunId=parent_id))

    assert code_of(body) == "BAD_USER_INPUT"
    assert await db_state(pool) == state
    await assert_still_answering(client)


# --- Size limits --------------------------------------------------------------------------------


def json_of_size(size: int) -> dict[str, Any]:
    """A JSON object whose compact encoding is exactly `size` bytes."""
    value = {"blob": ""}
    value["blob"] = "x" * (size - len(json.dumps(value, separators=(",", ":"))))
    assert len(json.dumps(value, separators=(",", ":")).encode()) == size
    return value


async def send_sized(client: GraphQLClient, field: str, size: int) -> tuple[dict[str, Any], Any]:
    """Sends `field` at `size` bytes (a fresh run where it applies); returns body and value."""
    if field == "input":
        value: Any = json_of_size(size)
        return await client.execute(CREATE, create_body(input=value)), value
    run = await drive(client, "RUNNING")
    if field == "output":
        value = json_of_size(size)
        return await mutate(client, "complete", run["id"], output=value), value
    value = "e" * size
    if field == "error":
        return await mutate(client, "fail", run["id"], error=value), value
    return await mutate(client, "cancel", run["id"], reason=value), value


SIZED = {"input": JSON_LIMIT, "output": JSON_LIMIT, "error": TEXT_LIMIT, "reason": TEXT_LIMIT}


@pytest.mark.parametrize("field", list(SIZED))
async def test_a_value_of_exactly_the_size_limit_is_accepted_and_stored_intact(
    client: GraphQLClient, field: str
) -> None:
    body, value = await send_sized(client, field, SIZED[field])

    assert "errors" not in body, body["errors"]
    [run] = body["data"].values()
    stored = await fetch_run(client, run["id"])
    assert stored[{"reason": "error"}.get(field, field)] == value


@pytest.mark.parametrize("field", list(SIZED))
async def test_a_value_one_byte_over_the_size_limit_is_bad_user_input_and_writes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool, field: str
) -> None:
    # The run is made first; the state is taken after it, so only the refused write is checked.
    if field == "input":
        state = await db_state(pool)
        body, _ = await send_sized(client, field, SIZED[field] + 1)
    else:
        run = await drive(client, "RUNNING")
        state = await db_state(pool)
        value: Any = (
            json_of_size(SIZED[field] + 1) if field == "output" else "e" * (SIZED[field] + 1)
        )
        key = {"output": "complete", "error": "fail", "reason": "cancel"}[field]
        body = await mutate(client, key, run["id"], **{field: value})

    assert code_of(body) == "BAD_USER_INPUT"
    assert await db_state(pool) == state
    await assert_still_answering(client)


# --- NUL characters -----------------------------------------------------------------------------

NUL_IN_TRANSITIONS = [
    ("fail-error", "fail", {"error": "broken\x00here"}),
    ("cancel-reason", "cancel", {"reason": "\x00"}),
    ("complete-output-string", "complete", {"output": {"text": "a\x00b"}}),
    ("complete-output-key", "complete", {"output": {"a\x00b": 1}}),
    ("complete-output-nested", "complete", {"output": [1, {"deep": ["ok", "x\x00"]}]}),
    ("complete-output-bare-string", "complete", {"output": "\x00"}),
    ("start-cfWorkflowId", "start", {"cf": "cf-\x00"}),
]


@pytest.mark.parametrize(
    ("mutation", "variables"),
    [(m, v) for _, m, v in NUL_IN_TRANSITIONS],
    ids=[name for name, _, _ in NUL_IN_TRANSITIONS],
)
async def test_a_nul_character_in_a_transition_is_bad_user_input_and_writes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool, mutation: str, variables: dict[str, Any]
) -> None:
    run = await drive(client, ALLOWED_SOURCE[mutation])
    before = await fetch_run(client, run["id"])
    state = await db_state(pool)

    body = await mutate(client, mutation, run["id"], **variables)

    assert code_of(body) == "BAD_USER_INPUT"
    assert await db_state(pool) == state
    assert await fetch_run(client, run["id"]) == before
    await assert_still_answering(client)


NUL_IN_CREATE = [
    ("subjectId", {"subjectId": "wf_\x00"}),
    ("input-string", {"input": {"text": "a\x00b"}}),
    ("input-key", {"input": {"a\x00b": 1}}),
    ("input-nested", {"input": {"list": [{"deep": "\x00"}]}}),
    ("input-bare-string", {"input": "\x00"}),
    ("cfWorkflowId", {"cfWorkflowId": "cf\x00"}),
    ("idempotencyKey", {"idempotencyKey": "key\x00"}),
]


@pytest.mark.parametrize(
    "fields", [f for _, f in NUL_IN_CREATE], ids=[name for name, _ in NUL_IN_CREATE]
)
async def test_a_nul_character_in_a_create_is_bad_user_input_and_writes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool, fields: dict[str, Any]
) -> None:
    body = await client.execute(CREATE, create_body(**fields))

    assert code_of(body) == "BAD_USER_INPUT"
    assert await db_state(pool) == {"runs": [], "events": [], "heads": []}
    await assert_still_answering(client)


async def test_a_nul_character_in_a_json_literal_is_bad_user_input_and_writes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    run = await drive(client, "RUNNING")
    state = await db_state(pool)
    document = (
        'mutation M($id: ID!) { completeWorkflowRun(id: $id, output: {k: "a\\u0000b"}) { id } }'
    )

    body = await client.execute(document, {"id": run["id"]})

    assert code_of(body) == "BAD_USER_INPUT"
    assert await db_state(pool) == state
    await assert_still_answering(client)


async def test_a_refused_write_does_not_spoil_the_next_one(client: GraphQLClient) -> None:
    run = await drive(client, "RUNNING")
    refused = await mutate(client, "complete", run["id"], output={"a\x00": 1})
    assert code_of(refused) == "BAD_USER_INPUT"

    completed = await apply(client, "complete", run["id"], output={"a": 1})

    assert completed["status"] == "COMPLETED"
    assert completed["output"] == {"a": 1}
    assert (await create_run(client))["status"] == "PENDING"
