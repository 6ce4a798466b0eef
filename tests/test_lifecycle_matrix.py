"""The lifecycle table of the contract, pair by pair: 9 source states x 9 mutations.

The expectations come from the contract (README "Lifecycle" and "Precise readings"), not from
`db.lifecycle.TRANSITIONS`. PAUSED appears twice, as a run paused before it ever started and as
one paused after starting, because resumeWorkflowRun treats them differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.support import GraphQLClient, create_run, token

RUN_FIELDS = (
    "id workspaceId subjectId parentRunId status mode input output error triggeredBy "
    "cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt"
)
EVENT_FIELDS = f"cursor runId workspaceId previousStatus status occurredAt run {{ {RUN_FIELDS} }}"
RUN_QUERY = (
    f"query Run($id: ID!) {{ workflowRun(id: $id) {{ {RUN_FIELDS} events {{ {EVENT_FIELDS} }} }} }}"
)

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
NON_TERMINAL = frozenset({"PENDING", "RUNNING", "WAITING", "PAUSED"})
# Fields no lifecycle mutation may change on the run it moves.
IDENTITY_FIELDS = (
    "id",
    "workspaceId",
    "subjectId",
    "parentRunId",
    "mode",
    "input",
    "triggeredBy",
    "userId",
    "createdAt",
)

OUTPUT = {"result": [1, 2.5, {"nested": "ünïcode ✓"}], "ok": True, "none": None}
ERROR = "boom: the step raised ValueError"
REASON = "no longer needed"
CF_STARTED = "cf-instance-started"
CF_CREATED = "cf-instance-created"
RUN_INPUT = {"prompt": "hello", "n": 3, "tags": ["a", "b"]}


@dataclass(frozen=True)
class Mutation:
    """One lifecycle mutation as a client sends it, and what the contract says it does."""

    key: str
    field: str
    document: str
    # Statuses the contract allows it from (PAUSED covers both PAUSED variants).
    allowed_from: frozenset[str]
    # The target the contract names; INVALID_TRANSITION carries it as targetStatus.
    target: str
    variables: dict[str, Any] = field(default_factory=dict)


def _mutation(
    key: str,
    field_name: str,
    allowed_from: frozenset[str],
    target: str,
    args: str = "",
    params: str = "",
    variables: dict[str, Any] | None = None,
) -> Mutation:
    document = f"mutation M($id: ID!{params}) {{ {field_name}(id: $id{args}) {{ {RUN_FIELDS} }} }}"
    return Mutation(key, field_name, document, allowed_from, target, variables or {})


MUTATIONS: dict[str, Mutation] = {
    m.key: m
    for m in (
        _mutation(
            "start",
            "startWorkflowRun",
            frozenset({"PENDING"}),
            "RUNNING",
            ", cfWorkflowId: $cf",
            ", $cf: String",
            {"cf": CF_STARTED},
        ),
        _mutation("markWaiting", "markWorkflowRunWaiting", frozenset({"RUNNING"}), "WAITING"),
        _mutation(
            "pause", "pauseWorkflowRun", frozenset({"PENDING", "RUNNING", "WAITING"}), "PAUSED"
        ),
        _mutation("resume", "resumeWorkflowRun", frozenset({"PAUSED", "WAITING"}), "RUNNING"),
        _mutation(
            "complete",
            "completeWorkflowRun",
            frozenset({"RUNNING", "WAITING"}),
            "COMPLETED",
            ", output: $output",
            ", $output: JSON",
            {"output": OUTPUT},
        ),
        _mutation(
            "fail",
            "failWorkflowRun",
            NON_TERMINAL,
            "FAILED",
            ", error: $error",
            ", $error: String!",
            {"error": ERROR},
        ),
        _mutation(
            "cancel",
            "cancelWorkflowRun",
            NON_TERMINAL,
            "CANCELLED",
            ", reason: $reason",
            ", $reason: String",
            {"reason": REASON},
        ),
        _mutation("timeOut", "timeOutWorkflowRun", NON_TERMINAL, "TIMED_OUT"),
        _mutation(
            "retry",
            "retryWorkflowRun",
            frozenset({"FAILED", "CANCELLED", "TIMED_OUT"}),
            "PENDING",
        ),
    )
}

# How a fresh run reaches each source state through the API.
PATHS: dict[str, tuple[str, ...]] = {
    "PENDING": (),
    "RUNNING": ("start",),
    "WAITING": ("start", "markWaiting"),
    "PAUSED_NEVER_STARTED": ("pause",),
    "PAUSED_STARTED": ("start", "markWaiting", "pause"),
    "COMPLETED": ("start", "complete"),
    "FAILED": ("start", "fail"),
    "CANCELLED": ("start", "cancel"),
    "TIMED_OUT": ("start", "markWaiting", "timeOut"),
}


def status_of(source: str) -> str:
    """The GraphQL status of a source state (both PAUSED variants are PAUSED)."""
    return source.removesuffix("_NEVER_STARTED").removesuffix("_STARTED")


def allowed(source: str, mutation: str) -> bool:
    return status_of(source) in MUTATIONS[mutation].allowed_from


PAIRS = [(s, m) for s in PATHS for m in MUTATIONS]
assert len(PAIRS) == 9 * 9
MOVES = [(s, m) for s, m in PAIRS if allowed(s, m) and m != "retry"]
REFUSALS = [(s, m) for s, m in PAIRS if not allowed(s, m)]
RETRIES = [(s, m) for s, m in PAIRS if allowed(s, m) and m == "retry"]


def ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def whole_ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


async def mutate(
    client: GraphQLClient, key: str, run_id: str, *, token: Any = ..., **variables: Any
) -> dict[str, Any]:
    """The raw response body of one lifecycle mutation (default variables of MUTATIONS)."""
    mutation = MUTATIONS[key]
    return await client.execute(
        mutation.document, {"id": run_id, **mutation.variables, **variables}, token=token
    )


async def apply(
    client: GraphQLClient, key: str, run_id: str, *, token: Any = ..., **variables: Any
) -> dict[str, Any]:
    """A mutation that must succeed; returns the run it answers with."""
    body = await mutate(client, key, run_id, token=token, **variables)
    assert "errors" not in body, (key, body["errors"])
    run: dict[str, Any] = body["data"][MUTATIONS[key].field]
    return run


async def drive(
    client: GraphQLClient,
    source: str,
    *,
    workspace: str = "ws-a",
    parent_run_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A fresh run brought to `source` along a legal path; returns it as last answered."""
    run = await create_run(
        client,
        workspace,
        parentRunId=parent_run_id,
        **{"subjectId": "wf_matrix", **fields},
    )
    for key in PATHS[source]:
        run = await apply(client, key, run["id"])
    assert run["status"] == status_of(source), run
    return run


async def fetch_run(client: GraphQLClient, run_id: str, *, token: Any = ...) -> dict[str, Any]:
    """The run with its events, as the API shows it now."""
    data = await client.data(RUN_QUERY, {"id": run_id}, token=token)
    run: dict[str, Any] = data["workflowRun"]
    assert run is not None, run_id
    return run


def without_events(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "events"}


async def db_state(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every stored row that a write could touch: runs, events and stream heads."""
    async with pool.acquire() as conn:
        runs = await conn.fetch("SELECT * FROM workflow_runs ORDER BY workspace_id, id")
        events = await conn.fetch("SELECT * FROM workflow_run_events ORDER BY workspace_id, seq")
        heads = await conn.fetch("SELECT * FROM workflow_run_streams ORDER BY workspace_id")
    return {
        "runs": [dict(r) for r in runs],
        "events": [dict(r) for r in events],
        "heads": [dict(r) for r in heads],
    }


async def subject_with_parent(
    client: GraphQLClient, source: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run in `source`, child of a RUNNING parent, created with every optional field set."""
    parent = await drive(client, "RUNNING", subjectId="wf_parent")
    run = await drive(
        client,
        source,
        parent_run_id=parent["id"],
        subjectId="agt_matrix",
        mode="SYNC",
        triggeredBy="AGENT",
        input=RUN_INPUT,
        cfWorkflowId=CF_CREATED,
    )
    return parent, run


def expected_target(mutation: str, before: dict[str, Any]) -> str:
    if mutation == "resume" and before["status"] == "PAUSED" and before["startedAt"] is None:
        return "PENDING"  # paused before it ever started: back to PENDING
    return MUTATIONS[mutation].target


@pytest.mark.parametrize(("source", "mutation"), MOVES, ids=[f"{s}-{m}" for s, m in MOVES])
async def test_allowed_transition_reaches_its_target_with_server_set_fields_and_one_event(
    client: GraphQLClient, pool: asyncpg.Pool, source: str, mutation: str
) -> None:
    parent, run = await subject_with_parent(client, source)
    before = await fetch_run(client, run["id"])
    parent_before = await fetch_run(client, parent["id"])
    state_before = await db_state(pool)

    returned = await apply(client, mutation, run["id"])

    after = await fetch_run(client, run["id"])
    target = expected_target(mutation, before)
    assert returned == without_events(after)
    assert after["status"] == target
    for name in IDENTITY_FIELDS:
        assert after[name] == before[name], name
    changed_at = ts(after["updatedAt"])
    assert changed_at > ts(before["updatedAt"])

    # startedAt: set once, on the first start, and never changed afterwards.
    if target == "RUNNING" and before["startedAt"] is None:
        assert after["startedAt"] is not None
        assert ts(before["updatedAt"]) < ts(after["startedAt"]) <= changed_at
    else:
        assert after["startedAt"] == before["startedAt"]

    # completedAt and durationMs: set on entering a terminal status.
    if target in TERMINAL:
        completed = ts(after["completedAt"])
        assert ts(before["updatedAt"]) < completed <= changed_at
        if after["startedAt"] is None:
            assert after["durationMs"] is None
        else:
            assert after["durationMs"] == whole_ms(completed - ts(after["startedAt"]))
    else:
        assert after["completedAt"] is None
        assert after["durationMs"] is None

    expected_output = OUTPUT if mutation == "complete" else before["output"]
    expected_error = {"fail": ERROR, "cancel": REASON}.get(mutation, before["error"])
    expected_cf = CF_STARTED if mutation == "start" else before["cfWorkflowId"]
    assert after["output"] == expected_output
    assert after["error"] == expected_error
    assert after["cfWorkflowId"] == expected_cf

    # Exactly one new event, at the end of the run's history, after every earlier cursor.
    old = before["events"]
    assert after["events"][: len(old)] == old
    assert len(after["events"]) == len(old) + 1
    event = after["events"][-1]
    assert event["runId"] == run["id"]
    assert event["workspaceId"] == "ws-a"
    assert event["previousStatus"] == before["status"]
    assert event["status"] == target
    assert event["run"] == without_events(after)
    assert ts(before["updatedAt"]) < ts(event["occurredAt"]) <= changed_at
    earlier = [e["cursor"] for e in old + parent_before["events"]]
    assert event["cursor"] > max(earlier)

    # Storage: that one event and that one run, nothing else.
    state_after = await db_state(pool)
    assert state_after["events"][: len(state_before["events"])] == state_before["events"]
    assert len(state_after["events"]) == len(state_before["events"]) + 1
    assert state_after["events"][-1]["run_id"] == run["id"]
    others_before = [r for r in state_before["runs"] if r["id"] != run["id"]]
    others_after = [r for r in state_after["runs"] if r["id"] != run["id"]]
    assert others_after == others_before
    assert await fetch_run(client, parent["id"]) == parent_before


@pytest.mark.parametrize(("source", "mutation"), REFUSALS, ids=[f"{s}-{m}" for s, m in REFUSALS])
async def test_forbidden_transition_is_invalid_transition_and_writes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool, source: str, mutation: str
) -> None:
    _, run = await subject_with_parent(client, source)
    before = await fetch_run(client, run["id"])
    state_before = await db_state(pool)

    body = await mutate(client, mutation, run["id"])

    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body["errors"]
    extensions = body["errors"][0]["extensions"]
    assert extensions["code"] == "INVALID_TRANSITION"
    assert extensions["currentStatus"] == status_of(source)
    assert extensions["targetStatus"] == MUTATIONS[mutation].target
    assert await fetch_run(client, run["id"]) == before
    assert await db_state(pool) == state_before


@pytest.mark.parametrize(("source", "mutation"), RETRIES, ids=[f"{s}-{m}" for s, m in RETRIES])
async def test_retry_creates_a_new_pending_copy_and_leaves_the_original_untouched(
    client: GraphQLClient, pool: asyncpg.Pool, source: str, mutation: str
) -> None:
    _, original = await subject_with_parent(client, source)
    before = await fetch_run(client, original["id"])
    state_before = await db_state(pool)
    assert before["userId"] == "user-1"

    retrier = token(["ws-a", "ws-b"], user="user-2")
    new = await apply(client, mutation, original["id"], token=retrier)

    assert await fetch_run(client, original["id"]) == before
    assert new["id"] != original["id"]
    assert new["status"] == "PENDING"
    for name in ("workspaceId", "subjectId", "parentRunId", "mode", "input", "triggeredBy"):
        assert new[name] == before[name], name
    assert new["userId"] == "user-2"
    for name in ("output", "error", "cfWorkflowId", "startedAt", "completedAt", "durationMs"):
        assert new[name] is None, name
    assert ts(new["createdAt"]) > ts(before["updatedAt"])
    assert ts(new["updatedAt"]) >= ts(new["createdAt"])

    stored = await fetch_run(client, new["id"])
    assert without_events(stored) == new
    [creation] = stored["events"]
    assert creation["runId"] == new["id"]
    assert creation["workspaceId"] == "ws-a"
    assert creation["previousStatus"] is None
    assert creation["status"] == "PENDING"
    assert creation["run"] == new
    assert creation["cursor"] > max(e["cursor"] for e in before["events"])

    state_after = await db_state(pool)
    assert state_after["events"][: len(state_before["events"])] == state_before["events"]
    [new_event] = state_after["events"][len(state_before["events"]) :]
    assert new_event["run_id"] == new["id"]
    assert [r for r in state_after["runs"] if r["id"] != new["id"]] == state_before["runs"]
