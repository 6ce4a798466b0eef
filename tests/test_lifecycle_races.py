"""Lifecycle under concurrency: racing transitions, the event cursor seen by a concurrent reader,
the cancel cascade as one transaction, and idempotent creates."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from db import lifecycle
from db.lifecycle import NewRun, Transition
from db.records import RunTrigger
from tests.support import CREATE, GraphQLClient, create_run, token, wait_for
from tests.test_lifecycle_matrix import (
    MUTATIONS,
    TERMINAL,
    apply,
    db_state,
    drive,
    fetch_run,
    mutate,
    ts,
    whole_ms,
    without_events,
)


@pytest.fixture
async def clients(server: str) -> AsyncIterator[list[GraphQLClient]]:
    """Ten clients with their own HTTP connection pools, all reading and writing ws-a, ws-b."""
    made = [GraphQLClient(server, token(["ws-a", "ws-b"])) for _ in range(10)]
    yield made
    for c in made:
        await c.aclose()


# --- Racing transitions on one run ------------------------------------------------------------

RACE_MIX = {
    "complete": 8,
    "fail": 8,
    "cancel": 8,
    "timeOut": 8,
    "pause": 6,
    "markWaiting": 6,
    "resume": 6,
}


async def test_racing_transitions_leave_exactly_one_terminal_event_and_a_gapless_chain(
    client: GraphQLClient, clients: list[GraphQLClient]
) -> None:
    run = await drive(client, "RUNNING")
    kinds = [kind for kind, n in RACE_MIX.items() for _ in range(n)]
    assert len(kinds) == 50
    random.Random(7).shuffle(kinds)

    bodies = await asyncio.gather(
        *(mutate(clients[i % len(clients)], kind, run["id"]) for i, kind in enumerate(kinds))
    )

    final = await fetch_run(client, run["id"])
    history = final["events"]
    assert [e["status"] for e in history[:2]] == ["PENDING", "RUNNING"]
    raced = history[2:]
    # The events chain without gaps: each starts where the one before ended.
    for earlier, later in itertools.pairwise(history):
        assert later["previousStatus"] == earlier["status"], history
        assert later["cursor"] > earlier["cursor"]
    terminal_events = [e for e in history if e["status"] in TERMINAL]
    assert len(terminal_events) == 1, history
    assert raced[-1] is terminal_events[0]

    wins = []
    for kind, body in zip(kinds, bodies, strict=True):
        mutation = MUTATIONS[kind]
        if "errors" in body:
            assert body.get("data") is None, body
            [error] = body["errors"]
            extensions = error["extensions"]
            assert extensions["code"] == "INVALID_TRANSITION", (kind, error)
            assert extensions["targetStatus"] == mutation.target
            # The status it reports forbade this mutation, and is one the run really had.
            assert extensions["currentStatus"] not in mutation.allowed_from, (kind, error)
            assert extensions["currentStatus"] in {e["status"] for e in history[1:]}
        else:
            wins.append((kind, body["data"][mutation.field]))

    # Each success is exactly one event: same count, same statuses, same run snapshots.
    assert len(wins) == len(raced)
    assert Counter(MUTATIONS[k].target for k, _ in wins) == Counter(e["status"] for e in raced)
    snapshots = sorted((e["run"] for e in raced), key=lambda r: r["updatedAt"])
    assert sorted((r for _, r in wins), key=lambda r: r["updatedAt"]) == snapshots

    [winner] = [(k, r) for k, r in wins if MUTATIONS[k].target in TERMINAL]
    assert final["status"] == winner[1]["status"] == terminal_events[0]["status"]
    assert without_events(final) == winner[1]
    # Every terminal mutation that lost saw the winner's terminal status.
    for kind, body in zip(kinds, bodies, strict=True):
        if MUTATIONS[kind].target in TERMINAL and "errors" in body:
            assert body["errors"][0]["extensions"]["currentStatus"] == final["status"]


# --- Cursor order under concurrent writers ----------------------------------------------------

# Each path is five legal transitions from PENDING, ending terminal.
WRITER_PATHS: list[list[tuple[Transition, dict[str, Any]]]] = [
    [
        (Transition.START, {}),
        (Transition.MARK_WAITING, {}),
        (Transition.PAUSE, {}),
        (Transition.RESUME, {}),
        (Transition.COMPLETE, {"output": {"ok": True}}),
    ],
    [
        (Transition.PAUSE, {}),
        (Transition.RESUME, {}),
        (Transition.START, {"cf_workflow_id": "cf-1"}),
        (Transition.MARK_WAITING, {}),
        (Transition.TIME_OUT, {}),
    ],
    [
        (Transition.START, {}),
        (Transition.PAUSE, {}),
        (Transition.RESUME, {}),
        (Transition.MARK_WAITING, {}),
        (Transition.FAIL, {"error": "boom"}),
    ],
    [
        (Transition.START, {}),
        (Transition.MARK_WAITING, {}),
        (Transition.RESUME, {}),
        (Transition.PAUSE, {}),
        (Transition.CANCEL, {"error": "stop"}),
    ],
]
WRITERS = 8
RUNS_PER_WRITER = 50
TRANSITIONS_TOTAL = WRITERS * RUNS_PER_WRITER * 5
assert TRANSITIONS_TOTAL == 2000

_READ_AFTER = """
SELECT seq FROM workflow_run_events WHERE workspace_id = $1 AND seq > $2 ORDER BY seq
"""
_COUNT_THROUGH = """
SELECT count(*) FROM workflow_run_events WHERE workspace_id = $1 AND seq <= $2
"""


async def test_a_concurrent_cursor_reader_sees_every_event_once_in_order_without_gaps(
    pool: asyncpg.Pool, database_url: str
) -> None:
    writers_done = asyncio.Event()

    async def writer(n: int) -> int:
        moved = 0
        async with pool.acquire() as conn:
            for i in range(RUNS_PER_WRITER):
                new = NewRun("ws-a", f"wf_w{n}_{i}", RunTrigger.WORKFLOW)
                created = await lifecycle.create_run(conn, new, user_id=f"writer-{n}")
                for transition, extra in WRITER_PATHS[(n + i) % len(WRITER_PATHS)]:
                    await lifecycle.transition_run(
                        conn, ["ws-a"], created.run.id, transition, **extra
                    )
                    moved += 1
        return moved

    seen: list[int] = []
    violations: list[str] = []
    busy_polls = 0
    reader = await asyncpg.connect(database_url)

    async def read() -> None:
        nonlocal busy_polls
        last = 0
        while True:
            finished = writers_done.is_set()  # read before polling: the last poll sees all
            seqs = [r[0] for r in await reader.fetch(_READ_AFTER, "ws-a", last)]
            if seqs != list(range(last + 1, last + 1 + len(seqs))):
                violations.append(f"after {last} the reader saw {seqs[:10]}...")
            if seqs:
                busy_polls += 0 if finished else 1
                seen.extend(seqs)
                last = seqs[-1]
            # Nothing may appear behind the reader's position later on.
            through = await reader.fetchval(_COUNT_THROUGH, "ws-a", last)
            if through != len(seen):
                violations.append(f"{through} events at or before {last}, reader saw {len(seen)}")
            if finished:
                return

    async def write_all() -> list[int]:
        try:
            return list(await asyncio.gather(*(writer(n) for n in range(WRITERS))))
        finally:
            writers_done.set()

    try:
        moved, _ = await asyncio.wait_for(asyncio.gather(write_all(), read()), timeout=60)
    finally:
        await reader.close()

    assert sum(moved) == TRANSITIONS_TOTAL
    assert violations == []
    async with pool.acquire() as conn:
        stored = [
            r[0]
            for r in await conn.fetch(
                "SELECT seq FROM workflow_run_events WHERE workspace_id = 'ws-a' ORDER BY seq"
            )
        ]
        head = await conn.fetchval(
            "SELECT last_seq FROM workflow_run_streams WHERE workspace_id = 'ws-a'"
        )
    total = TRANSITIONS_TOTAL + WRITERS * RUNS_PER_WRITER  # transitions plus creations
    assert seen == stored == list(range(1, total + 1))
    assert head == total
    # The reader really ran alongside the writers, not only after them.
    assert busy_polls >= 10


# --- Cancel cascade ---------------------------------------------------------------------------


async def build_tree(client: GraphQLClient) -> dict[str, dict[str, Any]]:
    """A run R under a parent P, with a 3-level subtree in mixed statuses, plus outsiders.

    P RUNNING (outside)
    ├── R RUNNING                      <- cancelled
    │   ├── C1 RUNNING
    │   │   ├── G1 WAITING
    │   │   │   ├── GG1 PENDING
    │   │   │   └── GG2 TIMED_OUT       (terminal)
    │   │   └── G2 FAILED               (terminal)
    │   ├── C2 COMPLETED                (terminal)
    │   │   └── G3 PENDING              (non-terminal under a terminal run)
    │   └── C3 PAUSED, never started
    │       └── G4 PAUSED, started
    │           └── GG3 RUNNING
    └── S RUNNING (outside)
    X RUNNING in ws-b (outside)
    """
    shape = [
        ("P", None, ("start",)),
        ("R", "P", ("start",)),
        ("S", "P", ("start",)),
        ("C1", "R", ("start",)),
        ("C2", "R", ("start",)),
        ("C3", "R", ("pause",)),
        ("G1", "C1", ("start", "markWaiting")),
        ("G2", "C1", ("start", "fail")),
        ("G3", "C2", ()),
        ("G4", "C3", ("start", "pause")),
        ("GG1", "G1", ()),
        ("GG2", "G1", ("timeOut",)),
        ("GG3", "G4", ("start",)),
    ]
    runs: dict[str, dict[str, Any]] = {}
    for name, parent, _ in shape:
        parent_id = runs[parent]["id"] if parent else None
        runs[name] = await create_run(client, "ws-a", subjectId=f"wf_{name}", parentRunId=parent_id)
    # Statuses are set once the whole tree exists (C2 completes after G3 was created under it).
    for name, _, path in shape:
        for key in path:
            runs[name] = await apply(client, key, runs[name]["id"])
    runs["X"] = await drive(client, "RUNNING", workspace="ws-b", subjectId="wf_X")
    runs["C2"] = await apply(client, "complete", runs["C2"]["id"])
    return runs


CASCADED = ("R", "C1", "C3", "G1", "G3", "G4", "GG1", "GG3")
SPARED = ("P", "S", "X", "C2", "G2", "GG2")

_XMINS = "SELECT xmin::text AS xmin FROM {table} WHERE workspace_id = 'ws-a' AND {key} = ANY($1)"


async def test_cancel_cascades_to_exactly_the_non_terminal_descendants_in_one_transaction(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    runs = await build_tree(client)
    before = {name: await fetch_run(client, run["id"]) for name, run in runs.items()}
    assert [before[n]["status"] for n in SPARED] == [
        "RUNNING",
        "RUNNING",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "TIMED_OUT",
    ]
    assert [before[n]["status"] for n in CASCADED] == [
        "RUNNING",
        "RUNNING",
        "PAUSED",
        "WAITING",
        "PENDING",
        "PAUSED",
        "PENDING",
        "RUNNING",
    ]
    assert before["C3"]["startedAt"] is None
    assert before["G4"]["startedAt"] is not None
    state_before = await db_state(pool)
    head_before = {h["workspace_id"]: h["last_seq"] for h in state_before["heads"]}

    cancelled = await apply(client, "cancel", runs["R"]["id"], reason="shutting down")

    after = {name: await fetch_run(client, run["id"]) for name, run in runs.items()}
    assert cancelled == without_events(after["R"])
    assert cancelled["error"] == "shutting down"
    for name in SPARED:
        assert after[name] == before[name], name
    ids = {name: runs[name]["id"] for name in runs}
    for name in CASCADED:
        old, new = before[name], after[name]
        assert new["status"] == "CANCELLED", name
        completed = ts(new["completedAt"])
        assert ts(old["updatedAt"]) < completed <= ts(new["updatedAt"])
        assert new["startedAt"] == old["startedAt"]
        expected_ms = (
            None if old["startedAt"] is None else whole_ms(completed - ts(old["startedAt"]))
        )
        assert new["durationMs"] == expected_ms, name
        assert new["events"][:-1] == old["events"]
        event = new["events"][-1]
        assert (event["previousStatus"], event["status"]) == (old["status"], "CANCELLED")
        assert event["run"] == without_events(new)

    # Storage: exactly one event per cancelled run, contiguous right after the old head.
    state_after = await db_state(pool)

    def events_in(state: dict[str, Any], workspace: str) -> list[dict[str, Any]]:
        return [e for e in state["events"] if e["workspace_id"] == workspace]

    assert events_in(state_after, "ws-b") == events_in(state_before, "ws-b")
    old_events = events_in(state_before, "ws-a")
    assert events_in(state_after, "ws-a")[: len(old_events)] == old_events
    added = events_in(state_after, "ws-a")[len(old_events) :]
    assert sorted(e["run_id"] for e in added) == sorted(ids[n] for n in CASCADED)
    assert [e["seq"] for e in added] == [
        head_before["ws-a"] + i for i in range(1, len(CASCADED) + 1)
    ]
    heads_after = {h["workspace_id"]: h["last_seq"] for h in state_after["heads"]}
    assert heads_after == {**head_before, "ws-a": head_before["ws-a"] + len(CASCADED)}
    spared_ids = {ids[n] for n in SPARED}
    assert [r for r in state_after["runs"] if r["id"] in spared_ids] == [
        r for r in state_before["runs"] if r["id"] in spared_ids
    ]
    # One transaction wrote every cancelled row and every new event.
    cascaded_ids = [ids[n] for n in CASCADED]
    async with pool.acquire() as conn:
        run_xmins = await conn.fetch(_XMINS.format(table="workflow_runs", key="id"), cascaded_ids)
        event_xmins = await conn.fetch(
            _XMINS.format(table="workflow_run_events", key="seq"), [e["seq"] for e in added]
        )
    assert len(run_xmins) == len(event_xmins) == len(CASCADED)
    assert len({r["xmin"] for r in [*run_xmins, *event_xmins]}) == 1


async def test_a_cancel_cascade_that_fails_midway_changes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    runs = await build_tree(client)
    victim = runs["G1"]["id"]  # a grandchild: its parent C1 and child GG1 are cancelled too
    async with pool.acquire() as conn:
        await conn.execute(
            """
            CREATE FUNCTION test_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'injected failure for %', OLD.id; END $$
            """
        )
        await conn.execute(
            "CREATE TRIGGER test_refuse_victim BEFORE UPDATE ON workflow_runs FOR EACH ROW "
            f"WHEN (OLD.id = '{victim}') EXECUTE FUNCTION test_refuse_update()"
        )
    before = {name: await fetch_run(client, run["id"]) for name, run in runs.items()}
    state_before = await db_state(pool)

    body = await mutate(client, "cancel", runs["R"]["id"], reason="shutting down")

    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "injected failure" not in error["message"]
    assert await db_state(pool) == state_before
    assert {name: await fetch_run(client, run["id"]) for name, run in runs.items()} == before


async def test_a_child_committed_before_its_parent_is_cancelled_is_cancelled_with_it(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    # A create that commits while the cancel is in flight. The API's own create is one statement
    # and hits the same window (see the report); an open transaction makes the timing certain.
    parent = await drive(client, "RUNNING")
    async with pool.acquire() as creator:
        transaction = creator.transaction()
        await transaction.start()
        new = NewRun("ws-a", "wf_child", RunTrigger.WORKFLOW, parent_run_id=parent["id"])
        child = (await lifecycle.create_run(creator, new, user_id="user-1")).run
        cancel = asyncio.create_task(mutate(client, "cancel", parent["id"]))

        async def cancel_waits_for_the_create() -> bool:
            async with pool.acquire() as conn:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                    creator.get_server_pid(),
                )
            return bool(waiting)

        await wait_for(cancel_waits_for_the_create, what="the cancel to wait for the create")
        await transaction.commit()
    body = await cancel

    assert "errors" not in body, body["errors"]
    parent_after = await fetch_run(client, parent["id"])
    child_after = await fetch_run(client, child.id)
    # The child's creation precedes the parent's cancellation in the stream...
    assert child_after["events"][0]["cursor"] < parent_after["events"][-1]["cursor"]
    assert parent_after["status"] == "CANCELLED"
    # ...so it was a non-terminal descendant when the cancel committed.
    assert child_after["status"] == "CANCELLED"
    assert [e["status"] for e in child_after["events"]] == ["PENDING", "CANCELLED"]


async def test_children_created_while_their_parent_is_cancelled_follow_stream_order(
    clients: list[GraphQLClient], pool: asyncpg.Pool
) -> None:
    # Through the API alone: every child whose creation precedes the parent's cancellation in
    # the stream is cancelled with it; every child created after it stays as created.
    for _ in range(5):
        parent = await drive(clients[0], "RUNNING")
        creates = [
            create_run(c, parentRunId=parent["id"], subjectId="wf_child")
            for c in itertools.islice(itertools.cycle(clients), 20)
        ]
        results = await asyncio.gather(mutate(clients[0], "cancel", parent["id"]), *creates)
        assert "errors" not in results[0], results[0]
        async with pool.acquire() as conn:
            cancelled_at = await conn.fetchval(
                "SELECT seq FROM workflow_run_events WHERE run_id = $1 AND status = 'cancelled'",
                parent["id"],
            )
            children = await conn.fetch(
                "SELECT r.id, r.status, e.seq AS created_seq FROM workflow_runs r "
                "JOIN workflow_run_events e ON e.run_id = r.id AND e.previous_status IS NULL "
                "WHERE r.parent_run_id = $1",
                parent["id"],
            )
        assert len(children) == 20
        for child in children:
            expected = "cancelled" if child["created_seq"] < cancelled_at else "pending"
            assert child["status"] == expected, dict(child)


async def test_a_cancel_racing_its_childrens_own_transitions_leaves_one_terminal_event_each(
    client: GraphQLClient, clients: list[GraphQLClient]
) -> None:
    root = await drive(client, "RUNNING")
    children = [await drive(client, "RUNNING", parent_run_id=root["id"]) for _ in range(12)]
    own = ["complete", "fail", "timeOut", "pause"]
    jobs = [(child["id"], own[i % len(own)]) for i, child in enumerate(children)]
    jobs.insert(len(jobs) // 2, (root["id"], "cancel"))

    bodies = await asyncio.gather(
        *(mutate(clients[i % len(clients)], kind, rid) for i, (rid, kind) in enumerate(jobs))
    )

    assert "errors" not in bodies[len(jobs) // 2]
    for (run_id, kind), body in zip(jobs, bodies, strict=True):
        run = await fetch_run(client, run_id)
        history = run["events"]
        for earlier, later in itertools.pairwise(history):
            assert later["previousStatus"] == earlier["status"], history
        terminal = [e for e in history if e["status"] in TERMINAL]
        assert len(terminal) == 1, history
        assert history[-1] is terminal[0]
        if kind == "cancel":
            continue
        if "errors" in body:
            # Lost to the cascade: the child was already cancelled.
            extensions = body["errors"][0]["extensions"]
            assert extensions["code"] == "INVALID_TRANSITION"
            assert extensions["currentStatus"] == "CANCELLED" == run["status"]
        elif kind == "pause":
            # Paused first; the cascade then cancelled the paused child.
            assert [e["status"] for e in history[-2:]] == ["PAUSED", "CANCELLED"]
        else:
            assert run["status"] == MUTATIONS[kind].target
            assert without_events(run) == body["data"][MUTATIONS[kind].field]


# --- Idempotent create ------------------------------------------------------------------------

PAYLOAD = {
    "workspaceId": "ws-a",
    "subjectId": "wf_idem",
    "triggeredBy": "EVENT",
    "mode": "SYNC",
    "input": {"order": 42, "items": ["x", "y"]},
    "cfWorkflowId": "cf-idem",
    "idempotencyKey": "key-1",
}


async def create(client: GraphQLClient, **overrides: Any) -> dict[str, Any]:
    return await client.execute(CREATE, {"input": {**PAYLOAD, **overrides}})


async def events_of(pool: asyncpg.Pool, run_id: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM workflow_run_events WHERE run_id = $1 ORDER BY seq", run_id
        )
    return [dict(r) for r in rows]


async def test_idempotent_create_with_the_same_payload_returns_the_first_run(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    first = (await create(client))["data"]["createWorkflowRun"]
    state = await db_state(pool)

    again = await create(client)

    assert "errors" not in again, again["errors"]
    assert again["data"]["createWorkflowRun"] == first
    assert await db_state(pool) == state
    assert len(await events_of(pool, first["id"])) == 1


async def test_idempotent_create_returns_the_first_run_even_after_it_moved_on(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    first = (await create(client))["data"]["createWorkflowRun"]
    started = await apply(client, "start", first["id"], cf="cf-other")
    state = await db_state(pool)

    again = await create(client)

    assert "errors" not in again, again["errors"]
    assert again["data"]["createWorkflowRun"] == started
    assert await db_state(pool) == state


@pytest.mark.parametrize(
    "change",
    [
        {"subjectId": "wf_other"},
        {"input": {"order": 43, "items": ["x", "y"]}},
        {"input": None},
        {"mode": "ASYNC"},
        {"triggeredBy": "USER"},
        {"cfWorkflowId": "cf-other"},
        {"parentRunId": "PARENT"},
    ],
    ids=lambda change: next(iter(change)) + ("-null" if None in change.values() else ""),
)
async def test_idempotent_create_with_a_different_payload_is_a_conflict_and_writes_nothing(
    client: GraphQLClient, pool: asyncpg.Pool, change: dict[str, Any]
) -> None:
    parent = await create_run(client)
    await create(client)
    if change.get("parentRunId") == "PARENT":
        change = {"parentRunId": parent["id"]}
    state = await db_state(pool)

    body = await create(client, **change)

    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "CONFLICT"
    assert await db_state(pool) == state


@pytest.mark.parametrize("variant", ["reordered-json-keys", "default-mode-left-out"])
async def test_an_equivalent_payload_counts_as_the_same_for_an_idempotent_create(
    client: GraphQLClient, pool: asyncpg.Pool, variant: str
) -> None:
    if variant == "reordered-json-keys":
        first_input = {**PAYLOAD, "input": {"a": 1, "b": {"c": 2, "d": [3, 4]}}}
        again_input = {**PAYLOAD, "input": {"b": {"d": [3, 4], "c": 2}, "a": 1}}
    else:
        first_input = {**PAYLOAD, "mode": "ASYNC"}
        again_input = {k: v for k, v in PAYLOAD.items() if k != "mode"}
    first = await client.data(CREATE, {"input": first_input})
    state = await db_state(pool)

    again = await client.execute(CREATE, {"input": again_input})

    assert "errors" not in again, again["errors"]
    assert again["data"] == first
    assert await db_state(pool) == state


async def test_concurrent_idempotent_creates_make_exactly_one_run_and_one_event(
    clients: list[GraphQLClient], pool: asyncpg.Pool
) -> None:
    bodies = await asyncio.gather(*(create(clients[i % len(clients)]) for i in range(20)))

    for body in bodies:
        assert "errors" not in body, body["errors"]
    answered = [body["data"]["createWorkflowRun"] for body in bodies]
    assert len({run["id"] for run in answered}) == 1
    assert all(run == answered[0] for run in answered)
    state = await db_state(pool)
    assert [r["id"] for r in state["runs"]] == [answered[0]["id"]]
    assert [e["run_id"] for e in state["events"]] == [answered[0]["id"]]
    assert [(h["workspace_id"], h["last_seq"]) for h in state["heads"]] == [("ws-a", 1)]


async def test_an_idempotency_key_is_scoped_to_its_workspace(
    client: GraphQLClient, pool: asyncpg.Pool
) -> None:
    in_a = (await create(client))["data"]["createWorkflowRun"]

    body = await create(client, workspaceId="ws-b")

    assert "errors" not in body, body["errors"]
    in_b = body["data"]["createWorkflowRun"]
    assert in_b["id"] != in_a["id"]
    assert in_b["workspaceId"] == "ws-b"
    assert len(await events_of(pool, in_a["id"])) == 1
    assert len(await events_of(pool, in_b["id"])) == 1
    # ...and each workspace still honours its own key.
    assert (await create(client, workspaceId="ws-b"))["data"]["createWorkflowRun"] == in_b
    assert (await create(client))["data"]["createWorkflowRun"] == in_a
