"""Fault injection under load: a database restart, killed backends, SIGTERM, a dropped pool.

Whatever the fault, each test proves three things:

- the service keeps serving: every request is answered (HTTP status below 500, never a hang),
  and while the database cannot be reached the answer comes at once, as a GraphQL error with
  `extensions.code` INTERNAL_SERVER_ERROR and `retryable: true`;
- nothing is half-written: `audit` checks the whole database (every run's event chain explains
  its status and timestamps, stream heads equal the last seq, seqs have no gaps);
- every change a client was told succeeded is stored, exactly once (`assert_reflected`).

Everything is real: PostgreSQL servers, uvicorn, HTTP, `workflow-runs serve` subprocesses.
Faults are made deterministic with locks held from a test connection, a trigger that sleeps for
one subject, backends found in `pg_stat_activity` before they are terminated, and a TCP hop
(`LateCloseProxy`) that delivers a terminated backend's last message at once and its close
only when the test says so.

Two service bugs these tests found are fixed; each regression raises its own `ServiceBug`
subclass, named for the bug, so that a failure says which one came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from db.listener import LISTENER_APPLICATION_NAME
from db.migrate import migrate
from db.pool import APPLICATION_NAME, connect
from server.app import create_app
from server.config import Settings
from server.embedded import EmbeddedPostgres
from server.httpprotocol import HTTP_PROTOCOL
from server.wsprotocol import WS_PROTOCOL
from tests.support import SECRET, on_database, running, token, wait_for

# A request that cannot reach the database is answered well within this (the client waits 30 s).
FAST_S = 2.0
# No request may take longer than this, whatever the fault (a hang shows up here).
NO_HANG_S = 10.0
CLIENT_TIMEOUT_S = 30.0
# A shutdown with nothing in flight takes well under a second.
SHUTDOWN_S = 5.0
RETRYABLE_MESSAGE = "The database is unavailable; retry shortly."

RUN_FIELDS = "id workspaceId parentRunId status createdAt updatedAt"
QUERIES = {
    "create": f"""mutation($input: CreateWorkflowRunInput!) {{
        createWorkflowRun(input: $input) {{ {RUN_FIELDS} }} }}""",
    "start": f"mutation($id: ID!) {{ startWorkflowRun(id: $id) {{ {RUN_FIELDS} }} }}",
    "complete": f"""mutation($id: ID!) {{
        completeWorkflowRun(id: $id, output: {{done: true}}) {{ {RUN_FIELDS} }} }}""",
    "cancel": f"""mutation($id: ID!, $reason: String) {{
        cancelWorkflowRun(id: $id, reason: $reason) {{ {RUN_FIELDS} }} }}""",
    "list": """query($ws: ID!) {
        workflowRuns(workspaceId: $ws, first: 20) {
          totalCount nodes { id status children(first: 5) { nodes { id status } } } } }""",
}
FIELD = {
    "create": "createWorkflowRun",
    "start": "startWorkflowRun",
    "complete": "completeWorkflowRun",
    "cancel": "cancelWorkflowRun",
    "list": "workflowRuns",
}
MUTATIONS = frozenset(FIELD) - {"list"}


# --- Service bugs these tests found (fixed; kept to name a regression) ------------------------


class ServiceBug(AssertionError):
    """A failure that a known, fixed service bug causes."""


class NotRetryable(ServiceBug):
    """Requests failed with a masked, non-retryable internal error instead of `retryable`."""


class ShutdownHung(ServiceBug):
    """The server did not finish shutting down."""


BUG_DEAD_POOLED_CONNECTION = (
    "Fixed bug: a pooled connection whose backend was terminated (database restart, "
    "pg_terminate_backend) but whose close asyncpg has not read yet (it has read the FATAL "
    "message) is handed to a request; its first statement raises asyncpg.InternalClientError "
    "('cannot switch to state 15; another operation (2) is in progress'), which "
    "db.errors.UNAVAILABLE does not list: the client gets a masked INTERNAL_SERVER_ERROR "
    "without `retryable`, the log an ERROR with a traceback."
)
BUG_LISTENER_HANG = (
    "Fixed bug: when the listener's connection dies while it sends a hint, asyncpg aborts "
    "it without calling termination listeners, so EventListener keeps `connected` set "
    "until its 10 s health check and EventFanout._send_loop spins (send() returns False at once, "
    "wait_for(connected.wait(), 1) returns at once). A shutdown then hangs for good: on Python "
    "3.11 asyncio.wait_for swallows a cancellation that arrives when the awaited future is "
    "done, so EventFanout.stop() awaits a task that never ends and SIGTERM never stops serve."
)


def dead_connection_errors(caplog: pytest.LogCaptureFixture) -> set[str]:
    """Request ids of the errors BUG_DEAD_POOLED_CONNECTION causes, from the service's log."""
    ids = set()
    for record in caplog.records:
        error = record.exc_info[1] if record.exc_info else None
        found = re.search(r"\(request (\w+)\)", record.getMessage())
        if isinstance(error, asyncpg.InternalClientError) and found:
            ids.add(found.group(1))
    return ids


def request_id(outcome: Outcome) -> str | None:
    ids = [(e.get("extensions") or {}).get("requestId") for e in outcome.errors]
    return ids[0] if ids else None


def no_errors_logged(caplog: pytest.LogCaptureFixture, *, but: Iterable[str] = ()) -> None:
    """No ERROR in the log, nor a traceback from the service (except requests `but`)."""
    bad = []
    for record in caplog.records:
        ours = record.name.split(".")[0] in ("db", "schema", "server", "uvicorn")
        serious = record.levelno >= logging.ERROR or (ours and record.exc_info)
        if serious and not any(f"(request {rid})" in record.getMessage() for rid in but):
            bad.append(f"{record.name}: {record.getMessage()}")
    assert not bad, bad


# --- Requests, and what became of each ------------------------------------------------------


@dataclass
class Outcome:
    """One request and its answer: an HTTP response, or a transport error."""

    op: str
    variables: dict[str, Any]
    started: float
    ended: float = 0.0
    status: int | None = None
    body: dict[str, Any] | None = None
    text: str = ""
    transport_error: str | None = None

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("errors") or [])

    @property
    def result(self) -> dict[str, Any] | None:
        """The root field's value when the request succeeded, else None."""
        if self.status != 200 or self.body is None or self.errors:
            return None
        data = self.body.get("data") or {}
        value: dict[str, Any] | None = data.get(FIELD[self.op])
        return value

    @property
    def ok(self) -> bool:
        return self.result is not None

    def __repr__(self) -> str:
        answer = self.transport_error or f"{self.status} {self.text[:300]}"
        return f"<{self.op} {self.variables} after {self.elapsed:.3f}s: {answer}>"


class Calls:
    """Sends GraphQL over real HTTP, as an application/json client, and keeps every outcome."""

    def __init__(self, base_url: str, bearer: str | None = None) -> None:
        self.url = f"{base_url}/graphql"
        headers = {
            "Authorization": f"Bearer {bearer or token(['ws-a', 'ws-b', 'ws-slow'])}",
            "Accept": "application/json",
        }
        self.http = httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, headers=headers)
        self.outcomes: list[Outcome] = []

    async def call(self, op: str, variables: dict[str, Any]) -> Outcome:
        outcome = Outcome(op, variables, time.monotonic())
        try:
            response = await self.http.post(
                self.url, json={"query": QUERIES[op], "variables": variables}
            )
        except httpx.TransportError as exc:
            outcome.transport_error = repr(exc)
        else:
            outcome.status = response.status_code
            outcome.text = response.text
            with contextlib.suppress(ValueError):
                outcome.body = response.json()
        outcome.ended = time.monotonic()
        self.outcomes.append(outcome)
        return outcome

    async def create(self, workspace: str, subject: str, **fields: Any) -> Outcome:
        run_input = {"workspaceId": workspace, "subjectId": subject, "triggeredBy": "USER"}
        return await self.call("create", {"input": {**run_input, **fields}})

    async def ok(self, op: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The result of a request that must succeed."""
        outcome = await self.call(op, variables)
        assert outcome.ok, outcome
        assert outcome.result is not None
        return outcome.result

    async def until_ok(
        self,
        op: str,
        variables: dict[str, Any],
        *,
        within: float = 15,
        tolerate: Callable[[Outcome], bool] = lambda outcome: False,
    ) -> Outcome:
        """Repeat a request until it succeeds; every failure on the way must be retryable
        (or one that `tolerate` accepts)."""
        deadline = time.monotonic() + within
        for _ in range(1000):
            outcome = await self.call(op, variables)
            if outcome.ok:
                return outcome
            if not tolerate(outcome):
                assert_retryable(outcome)
            assert time.monotonic() < deadline, f"still failing after {within}s: {outcome}"
            await asyncio.sleep(0.05)  # pacing between retries of a request that must recover
        raise AssertionError(f"{op} never succeeded")

    def mutations_ok_since(self, since: float) -> int:
        return sum(1 for o in self.outcomes if o.op in MUTATIONS and o.ok and o.started >= since)

    async def aclose(self) -> None:
        await self.http.aclose()


def assert_retryable(outcome: Outcome) -> None:
    """A clear failure the client may retry: a GraphQL error, no data, no stack trace."""
    assert outcome.transport_error is None, outcome
    assert outcome.status is not None and outcome.status < 500, outcome
    assert outcome.status == 200, outcome  # application/json clients get 200 for any result
    assert outcome.errors, outcome
    if outcome.op in MUTATIONS:
        assert len(outcome.errors) == 1, outcome
        assert (outcome.body or {}).get("data") is None, f"partial success: {outcome}"
    for error in outcome.errors:
        extensions = error.get("extensions") or {}
        assert extensions.get("code") == "INTERNAL_SERVER_ERROR", outcome
        assert extensions.get("retryable") is True, outcome
        assert error["message"] == RETRYABLE_MESSAGE, outcome
    assert "Traceback" not in outcome.text and "asyncpg" not in outcome.text, outcome


def assert_answered(outcomes: Iterable[Outcome], *, within: float = NO_HANG_S) -> None:
    """Every request got an HTTP answer below 500 in time: a success or a retryable error."""
    for outcome in outcomes:
        assert outcome.elapsed < within, f"took {outcome.elapsed:.1f}s: {outcome}"
        if not outcome.ok:
            assert_retryable(outcome)


# --- The database, audited -------------------------------------------------------------------

TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
NON_TERMINAL = frozenset({"pending", "running", "waiting", "paused"})
# The contract's lifecycle table, as (from, to) pairs.
ALLOWED = frozenset(
    {
        ("pending", "running"),
        ("running", "waiting"),
        ("pending", "paused"),
        ("running", "paused"),
        ("waiting", "paused"),
        ("paused", "running"),
        ("paused", "pending"),
        ("waiting", "running"),
        ("running", "completed"),
        ("waiting", "completed"),
        *((s, t) for s in NON_TERMINAL for t in ("failed", "cancelled", "timed_out")),
    }
)

RunKey = tuple[str, str]


@dataclass
class Stored:
    """Everything the service has written, as plain tuples (comparable before and after)."""

    runs: dict[RunKey, dict[str, Any]] = field(default_factory=dict)
    heads: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Per workspace, every event in seq order; per run, its events in seq order.
    streams: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[RunKey, list[dict[str, Any]]] = field(default_factory=dict)

    def event_at(self, workspace: str, seq: int) -> dict[str, Any]:
        event = self.streams[workspace][seq - 1]  # the audit proves seqs are 1..last_seq
        assert event["seq"] == seq
        return event

    def descendants(self, key: RunKey) -> list[RunKey]:
        children: dict[RunKey, list[RunKey]] = {}
        for (workspace, run_id), run in self.runs.items():
            if run["parent_run_id"] is not None:
                parent = (workspace, run["parent_run_id"])
                children.setdefault(parent, []).append((workspace, run_id))
        found: list[RunKey] = []
        todo = list(children.get(key, []))
        while todo:
            child = todo.pop()
            found.append(child)
            todo.extend(children.get(child, []))
        return found

    def by_idempotency_key(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if r["idempotency_key"] == key]


async def stored(dsn: str) -> Stored:
    """Read the whole database, in one snapshot."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            runs = await conn.fetch("SELECT * FROM workflow_runs ORDER BY workspace_id, id")
            heads = await conn.fetch("SELECT * FROM workflow_run_streams")
            events = await conn.fetch(
                "SELECT workspace_id, seq, run_id, previous_status, status, occurred_at, run "
                "FROM workflow_run_events ORDER BY workspace_id, seq"
            )
    finally:
        await conn.close()
    db = Stored()
    for run in runs:
        db.runs[(run["workspace_id"], run["id"])] = dict(run)
    for head in heads:
        db.heads[head["workspace_id"]] = (head["last_seq"], head["pruned_through"])
    for row in events:
        event = dict(row)
        event["run"] = json.loads(event["run"])
        db.streams.setdefault(event["workspace_id"], []).append(event)
        db.events.setdefault((event["workspace_id"], event["run_id"]), []).append(event)
    return db


def audit(db: Stored) -> None:
    """The whole database is consistent: nothing half-written, nothing unexplained."""
    problems: list[str] = []
    for workspace in sorted(set(db.heads) | set(db.streams)):
        seqs = [e["seq"] for e in db.streams.get(workspace, [])]
        if workspace not in db.heads:
            problems.append(f"{workspace}: events {seqs[:5]}... but no stream head")
            continue
        last_seq, pruned_through = db.heads[workspace]
        if pruned_through != 0:
            problems.append(f"{workspace}: pruned_through {pruned_through}, nothing was pruned")
        if seqs != list(range(1, len(seqs) + 1)):
            missing = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
            problems.append(f"{workspace}: seqs have gaps, missing {missing[:10]}")
        if last_seq != max(seqs, default=0):
            problems.append(f"{workspace}: last_seq {last_seq} != max(seq) {max(seqs, default=0)}")
    for key in db.events:
        if key not in db.runs:
            problems.append(f"events of {key}, which does not exist")
    for key, run in db.runs.items():
        problems.extend(_chain_problems(run, db.events.get(key, [])))
    assert not problems, "audit failed:\n" + "\n".join(problems[:40])


def _chain_problems(run: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """What is wrong with one run's events as the explanation of its row."""
    name = f"run {run['workspace_id']}/{run['id']} ({run['status']})"
    if not events:
        return [f"{name} has no events"]
    problems = []
    first = events[0]
    if first["previous_status"] is not None or first["status"] != "pending":
        problems.append(f"{name}: first event {first['previous_status']}->{first['status']}")
    if first["occurred_at"] != run["created_at"]:
        problems.append(f"{name}: created_at differs from its creation event")
    has_run = False
    for before, event in zip([None, *events], events, strict=False):
        if event["run"].get("id") != run["id"] or event["run"].get("status") != event["status"]:
            problems.append(f"{name}: seq {event['seq']} snapshot is of another state")
        if before is None:
            continue
        pair = (before["status"], event["status"])
        if event["previous_status"] != before["status"]:
            problems.append(f"{name}: seq {event['seq']} breaks the chain {pair}")
        if pair not in ALLOWED:
            problems.append(f"{name}: seq {event['seq']} is not a lifecycle move {pair}")
        if pair == ("paused", "pending") and has_run:
            problems.append(f"{name}: resumed to PENDING after it had started")
        if pair == ("paused", "running") and not has_run:
            problems.append(f"{name}: resumed to RUNNING but it never started")
        has_run = has_run or event["status"] == "running"
    last = events[-1]
    if last["status"] != run["status"]:
        problems.append(f"{name}: its events end in {last['status']}")
    if last["occurred_at"] != run["updated_at"]:
        problems.append(f"{name}: updated_at differs from its last event")
    started = next((e["occurred_at"] for e in events if e["status"] == "running"), None)
    if run["started_at"] != started:
        problems.append(f"{name}: started_at {run['started_at']} but first RUNNING at {started}")
    completed = last["occurred_at"] if last["status"] in TERMINAL else None
    if run["completed_at"] != completed:
        problems.append(f"{name}: completed_at {run['completed_at']}, expected {completed}")
    return problems


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def assert_reflected(db: Stored, outcomes: Iterable[Outcome]) -> int:
    """Every mutation whose response said success is in the database, exactly once."""
    checked = 0
    for outcome in outcomes:
        if outcome.op not in MUTATIONS or not outcome.ok:
            continue
        run = outcome.result
        assert run is not None
        key = (run["workspaceId"], run["id"])
        assert key in db.runs, f"acknowledged but not stored: {outcome}"
        events = db.events.get(key, [])
        at = _instant(run["updatedAt"])
        status = run["status"].lower()
        matching = [e for e in events if e["status"] == status and e["occurred_at"] == at]
        assert len(matching) == 1, f"{len(matching)} events for {outcome}: {events}"
        if outcome.op == "create":
            assert matching[0] is events[0], outcome
            assert db.runs[key]["parent_run_id"] == run["parentRunId"], outcome
            assert _instant(run["createdAt"]) == db.runs[key]["created_at"], outcome
        if outcome.op == "cancel":
            assert_cascaded(db, key, matching[0])
        checked += 1
    return checked


def assert_cascaded(db: Stored, root: RunKey, root_event: dict[str, Any]) -> None:
    """The cancel's transaction also cancelled every descendant that was not terminal.

    Its events follow the root's, consecutively: one transaction holds the head.
    """
    workspace, seq = root[0], root_event["seq"]
    expected = set()
    for child in db.descendants(root):
        before = [e for e in db.events[child] if e["seq"] < seq]
        if before and before[-1]["status"] not in TERMINAL:
            expected.add(child[1])
    block = [db.event_at(workspace, s) for s in range(seq + 1, seq + 1 + len(expected))]
    assert {e["run_id"] for e in block} == expected, (root, block, expected)
    assert all(e["status"] == "cancelled" for e in block), block
    for child in expected:
        assert db.runs[(workspace, child)]["status"] == "cancelled", child


# --- Load -----------------------------------------------------------------------------------


@dataclass
class Load:
    """Writers that build and tear down run trees, and readers that list, until stopped."""

    calls: Calls
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    trees: int = 0

    async def writer(self, workspace: str, name: str, *, max_trees: int = 400) -> None:
        for n in range(max_trees):
            if self.stop.is_set():
                return
            if await self.tree(workspace, f"{name}-{n}"):
                self.trees += 1
                continue
            if self._stopped_by_transport():
                return
            await asyncio.sleep(0.02)  # pacing while requests fail

    async def reader(self, workspace: str, *, max_reads: int = 3000) -> None:
        for _ in range(max_reads):
            if self.stop.is_set():
                return
            outcome = await self.calls.call("list", {"ws": workspace})
            if not outcome.ok:
                if outcome.transport_error is not None:
                    return
                await asyncio.sleep(0.02)  # pacing while requests fail

    def _stopped_by_transport(self) -> bool:
        last = self.calls.outcomes[-1] if self.calls.outcomes else None
        return last is not None and last.transport_error is not None

    async def tree(self, workspace: str, tag: str) -> bool:
        """A root with two children and a grandchild; some started, one completed; then the
        root is cancelled, which cascades. Stops at the first failure (the tree is abandoned:
        a failed request may or may not have been applied, and nothing else touches it)."""
        c = self.calls
        root = await c.create(workspace, tag, idempotencyKey=f"{tag}-root")
        if not root.ok:
            return False
        root_id = root.result["id"] if root.result else ""
        kids = []
        for i in range(2):
            kid = await c.create(workspace, tag, parentRunId=root_id, idempotencyKey=f"{tag}-{i}")
            if not kid.ok or kid.result is None:
                return False
            kids.append(kid.result["id"])
        grandchild = await c.create(workspace, tag, parentRunId=kids[0], idempotencyKey=f"{tag}-g")
        if not grandchild.ok:
            return False
        for op, run_id in (
            ("start", root_id),
            ("start", kids[0]),
            ("start", kids[1]),
            ("complete", kids[1]),
        ):
            if not (await c.call(op, {"id": run_id})).ok:
                return False
        return (await c.call("cancel", {"id": root_id, "reason": tag})).ok


# --- Backends --------------------------------------------------------------------------------


async def service_backends(admin: asyncpg.Connection, database: str) -> list[asyncpg.Record]:
    """The service's pooled connections to `database` (not its LISTEN connection)."""
    return list(
        await admin.fetch(
            "SELECT pid, state, wait_event_type, wait_event, backend_xid, query "
            "FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            database,
            APPLICATION_NAME,
        )
    )


async def find_backend(
    admin: asyncpg.Connection,
    database: str,
    matches: Callable[[asyncpg.Record], bool],
    what: str,
) -> asyncpg.Record:
    """Wait until exactly one of the service's backends matches; return it."""
    found: list[asyncpg.Record] = []

    async def one() -> bool:
        found[:] = [b for b in await service_backends(admin, database) if matches(b)]
        return len(found) == 1

    await wait_for(one, within=10, what=what)
    return found[0]


async def terminate(admin: asyncpg.Connection, pids: Iterable[int]) -> int:
    """Terminate backends and wait until each is gone; how many were terminated."""
    terminated = 0
    for pid in pids:
        if await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid):
            terminated += 1
    return terminated


async def head_is_locked(dsn: str, workspace: str) -> bool:
    """Whether another transaction holds the workspace's stream head."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM workflow_run_streams WHERE workspace_id = $1 FOR UPDATE NOWAIT",
                workspace,
            )
    except asyncpg.LockNotAvailableError:
        return True
    finally:
        await conn.close()
    return False


@contextlib.asynccontextmanager
async def holding(dsn: str, sql: str, *args: Any) -> AsyncIterator[asyncpg.Connection]:
    """A transaction of another session that holds the locks `sql` takes, until exit."""
    conn = await asyncpg.connect(dsn)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(sql, *args)
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


def _database(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


# --- A TCP hop that delivers a terminated backend's close late --------------------------------


def _upstream(dsn: str) -> tuple[str, int, str | None]:
    """(host, port, unix socket path or None) of the server a DSN names."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "localhost"
    port = int(query.get("port") or parts.port or 5432)
    return host, port, f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None


class LateCloseProxy:
    """A TCP proxy in front of a PostgreSQL server, for the service's pooled connections.

    Bytes pass both ways at once. While `hold()` is in effect, a connection that the server
    closes stays open towards the client until `release()`: a terminated backend's FATAL
    message arrives at once, its close later. Under load that happens by chance (the client
    reads the message in one event loop iteration and the close in a later one); here it
    happens every time. `held` counts the connections being held.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn_upstream = dsn
        self.held = 0
        self._released = asyncio.Event()
        self._released.set()
        self._hold_s: float | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> LateCloseProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def dsn(self) -> str:
        """The upstream DSN, through this proxy."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self.dsn_upstream)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port", "sslmode")]
        # A local hop to a server without TLS: no TLS negotiation. When the proxy closes a
        # connection during asyncpg's, asyncio may log "Future exception was never retrieved"
        # (ConnectionError('unexpected connection_lost() call')) as an ERROR (1 run in 40).
        query.append(("sslmode", "disable"))
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))

    def hold(self, at_most_s: float | None = None) -> None:
        """Hold closes from now on: until `release()`, or each for `at_most_s` at most."""
        self.held = 0
        self._hold_s = at_most_s
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def wait_held(self, count: int) -> None:
        """Until `count` connections closed by the server (their FATAL passed on) are held."""
        await wait_for(lambda: self.held >= count, what=f"{count} closes held (have {self.held})")

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client_gone = asyncio.Event()
        try:
            host, port, path = _upstream(self.dsn_upstream)
            try:
                if path is not None:
                    server_r, server_w = await asyncio.open_unix_connection(path)
                else:
                    server_r, server_w = await asyncio.open_connection(host, port)
            except OSError:
                return  # the server is down: the client sees its connection closed
            try:
                await asyncio.gather(
                    self._pump(server_r, client_w, hold=lambda: not client_gone.is_set()),
                    self._pump(client_r, server_w, done=client_gone),
                )
            finally:
                server_w.close()
        finally:
            client_w.close()
            self._tasks.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        hold: Callable[[], bool] = lambda: False,
        done: asyncio.Event | None = None,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        if done is not None:
            done.set()
        if not self._released.is_set() and hold():
            self.held += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._hold_s):
                    await self._released.wait()
        writer.close()


# --- Servers ---------------------------------------------------------------------------------


class _InLoopServer(uvicorn.Server):
    """uvicorn inside the test's event loop: pytest keeps its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@contextlib.asynccontextmanager
async def serving(app: Starlette, hung: list[str]) -> AsyncIterator[str]:
    """Like tests.support.running, but a shutdown that does not end within SHUTDOWN_S is
    recorded in `hung`, then forced (the service's background tasks are cancelled again)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        http=HTTP_PROTOCOL,
        ws=WS_PROTOCOL,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    server = _InLoopServer(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started or task.done(), what="uvicorn to start")
    if task.done():
        task.result()
        raise AssertionError("uvicorn stopped during startup")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_S)
        if not done:
            stuck = [
                t
                for t in asyncio.all_tasks()
                if t.get_name() in ("fanout-read", "fanout-hints", "event-listener")
            ]
            hung.append(f"shutdown unfinished after {SHUTDOWN_S}s, waiting for {stuck}")
            for t in stuck:
                t.cancel()
            async with asyncio.timeout(SHUTDOWN_S):
                await task


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    """A `workflow-runs serve` process and everything it printed."""

    process: asyncio.subprocess.Process
    port: int
    output: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return "".join(self.output)

    async def exited(self, within: float) -> int | None:
        """The exit code, or None if it still runs after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                return await self.process.wait()
        return None


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, database_url: str) -> AsyncIterator[Served]:
    """`workflow-runs serve` on a free port and `database_url`, ready; killed if left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_RUNS_", "DATABASE"))}
    env |= {
        "DATABASE_URL": database_url,
        "WORKFLOW_RUNS_JWT_SECRET": SECRET,
        "WORKFLOW_RUNS_DATA_DIR": str(tmp_path / "data"),
    }
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "server.cli", "serve", "--port", str(port)),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    served = Served(process, port)

    async def collect() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            served.output.append(line.decode(errors="replace"))

    collecting = asyncio.create_task(collect())
    try:
        async with httpx.AsyncClient(timeout=1) as http:

            async def ready() -> bool:
                assert process.returncode is None, f"serve exited:\n{served.log()}"
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get(f"{served.base_url}/readyz")).status_code == 200
                return False

            await wait_for(ready, within=60, what="serve to be ready")
        yield served
    finally:
        if process.returncode is None:
            process.kill()  # it did not stop by itself; the test says why
            await process.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await collecting


async def accepts_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _input(workspace: str, subject: str, **fields: Any) -> dict[str, Any]:
    return {
        "input": {"workspaceId": workspace, "subjectId": subject, "triggeredBy": "USER", **fields}
    }


def assert_not_applied(db: Stored, outcome: Outcome) -> None:
    """A mutation that failed before it could commit left no trace."""
    if outcome.op == "create":
        key = outcome.variables["input"]["idempotencyKey"]
        assert db.by_idempotency_key(key) == [], outcome
        return
    target = {"start": "running", "complete": "completed", "cancel": "cancelled"}[outcome.op]
    run_id = outcome.variables["id"]
    events = [e for (_, rid), es in db.events.items() if rid == run_id for e in es]
    assert all(e["status"] != target for e in events), (outcome, events)


# --- 1. PostgreSQL restarted mid-load ---------------------------------------------------------


async def test_a_database_restart_mid_load_fails_fast_recovers_and_leaves_nothing_half_done(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    # Not under tmp_path: another pytest session on the machine may make pytest's temporary
    # root private again while this runs, and PostgreSQL may run as another user.
    data_dir = Path(tempfile.mkdtemp(prefix="wr-faults-pg-"))
    pg = EmbeddedPostgres(data_dir, settings={"fsync": "off"})
    dsn = await asyncio.to_thread(pg.start)
    hung: list[str] = []
    try:
        conn = await connect(dsn)
        await migrate(conn)
        await conn.close()
        async with LateCloseProxy(dsn) as proxy:
            # The pool goes through the proxy; the LISTEN connection directly.
            app = create_app(replace(on_database(settings, proxy.dsn()), listen_url=dsn))
            async with serving(app, hung) as base_url:
                calls = Calls(base_url)
                load = Load(calls)
                writers = [("ws-a", 3), ("ws-b", 2)]
                tasks = [
                    asyncio.create_task(load.writer(ws, f"{ws}-w{i}"))
                    for ws, count in writers
                    for i in range(count)
                ]
                tasks += [asyncio.create_task(load.reader(ws)) for ws in ("ws-a", "ws-b")]
                try:
                    await wait_for(lambda: load.trees >= 3, within=20, what="load before the stop")
                    # The stop's FATAL messages reach the pool at once, their closes later.
                    # Not much later: a statement sent around the stop gets no answer and waits
                    # for the close (held until release, it hung its request for the 10 s
                    # deadline), and a real socket's close follows its FATAL within a moment.
                    proxy.hold(at_most_s=0.5)
                    await asyncio.to_thread(pg.stop)
                    down_from = time.monotonic()

                    def outage() -> list[Outcome]:
                        return [o for o in calls.outcomes if o.started >= down_from and o.ended]

                    await wait_for(
                        lambda: (
                            len(outage()) >= 40 and {"create", "list"} <= {o.op for o in outage()}
                        ),
                        within=15,
                        what="requests while the database is down",
                    )
                    proxy.release()
                    down_until = time.monotonic()
                    await asyncio.to_thread(pg.start)
                    up_from = time.monotonic()
                    # Requests succeed again by themselves: writers and readers alike, and
                    # whole trees (creates, transitions, cancel cascades).
                    trees_then = load.trees
                    await wait_for(
                        lambda: (
                            calls.mutations_ok_since(up_from) >= 30
                            and load.trees >= trees_then + 3
                            and any(
                                o.op == "list" and o.ok and o.started >= up_from
                                for o in calls.outcomes
                            )
                        ),
                        within=30,
                        what="requests to succeed again after the restart",
                    )
                finally:
                    load.stop.set()
                    async with asyncio.timeout(30):
                        await asyncio.gather(*tasks)
                await calls.aclose()
        db = await stored(dsn)
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(data_dir, ignore_errors=True)

    masked = dead_connection_errors(caplog)
    bug = [o for o in calls.outcomes if request_id(o) in masked]
    during = [o for o in calls.outcomes if o.started >= down_from and o.ended <= down_until]
    assert len(during) >= 40
    for outcome in during:
        assert not outcome.ok, f"answered while the database was down: {outcome}"
        assert outcome.elapsed < FAST_S, f"not fast: {outcome}"
    # Before, during and after: an answer below 500 in time, a success or a retryable error.
    assert_answered([o for o in calls.outcomes if o not in bug])
    assert all(o.status == 200 and o.elapsed < FAST_S for o in bug), bug
    assert any(o.ok and o.op == "cancel" for o in calls.outcomes if o.ended < down_from)
    assert any(o.ok and o.op == "cancel" for o in calls.outcomes if o.started >= up_from)
    audit(db)
    assert assert_reflected(db, calls.outcomes) >= 60
    no_errors_logged(caplog, but=masked)
    if hung:
        raise ShutdownHung(f"{BUG_LISTENER_HANG} {hung[0]}")
    if bug:
        raise NotRetryable(f"{BUG_DEAD_POOLED_CONNECTION} {len(bug)} requests, e.g. {bug[0]}")


@pytest.fixture
async def direct(settings: Settings, database_url: str) -> AsyncIterator[str]:
    """The service on this test's database, connected directly (never through PgBouncer)."""
    async with running(create_app(on_database(settings, database_url))) as base_url:
        yield base_url


# --- 2. A backend terminated mid-transaction --------------------------------------------------

SLEEP_TRIGGER = """
CREATE FUNCTION fault_injection_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(20);
    RETURN NULL;
END $$;
-- Row-level AFTER triggers fire at the end of the statement: every row the statement writes
-- (run, stream head, events) is written, and not committed, while this sleeps.
CREATE TRIGGER fault_injection_sleep AFTER INSERT ON workflow_run_events
    FOR EACH ROW WHEN (NEW.run ->> 'subject_id' = 'slow')
    EXECUTE FUNCTION fault_injection_sleep();
"""
NO_SLEEP_TRIGGER = """
DROP TRIGGER fault_injection_sleep ON workflow_run_events;
DROP FUNCTION fault_injection_sleep();
"""


@dataclass
class Victim:
    """The mutation a case kills, and what must be true of its backend when it is killed."""

    op: str
    variables: dict[str, Any]
    # "sleep": the trigger above; or the SQL and arguments of a lock another session holds.
    fault: str
    lock_args: tuple[Any, ...] = ()
    # Transaction stage checks at the moment of the kill.
    wrote: bool = False
    holds_head: bool = False
    statement: str | None = None
    # For cancels: the tree's runs by name (see _tree_to_cancel).
    tree: dict[str, str] = field(default_factory=dict)


async def _tree_to_cancel(calls: Calls) -> dict[str, str]:
    """root (RUNNING) -> a (PENDING) -> g (PENDING); root -> b (RUNNING), c (COMPLETED)."""
    root = await calls.ok("create", _input("ws-a", "slow"))
    ids = {"root": root["id"]}
    for name, parent in (("a", "root"), ("b", "root"), ("c", "root"), ("g", "a")):
        created = await calls.ok("create", _input("ws-a", "slow", parentRunId=ids[parent]))
        ids[name] = created["id"]
    for op, name in (("start", "root"), ("start", "b"), ("start", "c"), ("complete", "c")):
        await calls.ok(op, {"id": ids[name]})
    return ids


async def _victim(case: str, calls: Calls) -> Victim:
    pending = None
    if case.startswith("start"):
        pending = (await calls.ok("create", _input("ws-a", "slow")))["id"]
    tree = await _tree_to_cancel(calls) if case.startswith("cancel") else {}
    create = ("create", _input("ws-a", "slow", idempotencyKey="victim"))
    lock_run = "SELECT 1 FROM workflow_runs WHERE workspace_id = 'ws-a' AND id = $1 FOR UPDATE"
    lock_head = "SELECT 1 FROM workflow_run_streams WHERE workspace_id = 'ws-a' FOR UPDATE"
    cancel = ("cancel", {"id": tree.get("root"), "reason": "fault injection"})
    victim = {
        # The whole statement ran (run row, head, event); killed before COMMIT.
        "create-after-its-writes": Victim(*create, "sleep", wrote=True, holds_head=True),
        # The run row is inserted; the statement waits for the head (creates bump it last).
        "create-waiting-for-the-head": Victim(*create, lock_head, wrote=True),
        "start-after-its-writes": Victim(
            "start", {"id": pending}, "sleep", wrote=True, holds_head=True
        ),
        # It holds the head and waits for the run's row lock.
        "start-waiting-for-the-run": Victim(
            "start", {"id": pending}, lock_run, (pending,), holds_head=True
        ),
        # Between cancel's two statements: the head is locked, the cascade waits for a child.
        "cancel-between-its-statements": Victim(
            *cancel, lock_run, (tree.get("b"),), holds_head=True, statement="WITH RECURSIVE tree"
        ),
        # Both statements ran: root and descendants updated, their events inserted.
        "cancel-after-its-writes": Victim(*cancel, "sleep", wrote=True, holds_head=True),
    }[case]
    victim.tree = tree
    return victim


@pytest.mark.parametrize(
    "case",
    [
        "create-after-its-writes",
        "create-waiting-for-the-head",
        "start-after-its-writes",
        "start-waiting-for-the-run",
        "cancel-between-its-statements",
        "cancel-after-its-writes",
    ],
)
async def test_a_backend_terminated_mid_transaction_writes_nothing_and_the_next_requests_succeed(
    direct: str, database_url: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    calls = Calls(direct)
    admin = await asyncpg.connect(database_url)
    database = _database(database_url)
    try:
        await calls.ok("create", _input("ws-a", "setup"))  # the stream head exists
        victim = await _victim(case, calls)
        before = await stored(database_url)
        async with contextlib.AsyncExitStack() as fault:
            if victim.fault == "sleep":
                await admin.execute(SLEEP_TRIGGER)
                fault.push_async_callback(admin.execute, NO_SLEEP_TRIGGER)
                waiting = ("Timeout", "PgSleep")
            else:
                await fault.enter_async_context(
                    holding(database_url, victim.fault, *victim.lock_args)
                )
                waiting = ("Lock", None)
            request = asyncio.create_task(calls.call(victim.op, victim.variables))

            def stuck(b: asyncpg.Record) -> bool:
                return (
                    b["state"] == "active"
                    and b["wait_event_type"] == waiting[0]
                    and (waiting[1] is None or b["wait_event"] == waiting[1])
                    and (victim.statement is None or victim.statement in b["query"])
                )

            backend = await find_backend(admin, database, stuck, f"the {case} backend")
            # The transaction is where the case says, right before it dies.
            if victim.wrote:
                assert backend["backend_xid"] is not None, backend
            if victim.holds_head:
                assert await head_is_locked(database_url, "ws-a"), backend
            assert not request.done()
            assert await terminate(admin, [backend["pid"]]) == 1
            async with asyncio.timeout(NO_HANG_S):
                outcome = await request
        # A clear, retryable error; no partial success.
        assert_retryable(outcome)
        assert outcome.elapsed < NO_HANG_S
        # Nothing of it was written: not a row, an event or a bump of the head.
        after = await stored(database_url)
        assert after == before
        audit(after)

        # The next requests succeed: the same mutation again, and a read.
        retried = await calls.until_ok(victim.op, victim.variables)
        await calls.ok("list", {"ws": "ws-a"})
        db = await stored(database_url)
        audit(db)
        assert assert_reflected(db, calls.outcomes) == len(
            [o for o in calls.outcomes if o.ok and o.op in MUTATIONS]
        )
        assert retried.result is not None
        if victim.op == "create":
            [run] = db.by_idempotency_key("victim")
            assert run["id"] == retried.result["id"]
        if victim.op == "cancel":
            statuses = {
                name: db.runs[("ws-a", run_id)]["status"] for name, run_id in victim.tree.items()
            }
            assert statuses == {
                "root": "cancelled",
                "a": "cancelled",
                "b": "cancelled",
                "c": "completed",
                "g": "cancelled",
            }
    finally:
        await admin.close()
        await calls.aclose()
    no_errors_logged(caplog)


# --- 3. SIGTERM to `workflow-runs serve` mid-load ---------------------------------------------


async def test_sigterm_mid_load_completes_in_flight_requests_and_exits_cleanly(
    tmp_path: Path, database_url: str
) -> None:
    async with serve(tmp_path, database_url) as served:
        calls = Calls(served.base_url)
        # Pending runs in a workspace whose stream head the test will hold.
        slow_runs = [(await calls.ok("create", _input("ws-slow", "setup")))["id"] for _ in "ab"]
        load = Load(calls)
        workers = [asyncio.create_task(load.writer("ws-a", f"w{i}")) for i in range(5)]
        workers += [asyncio.create_task(load.reader("ws-a")) for _ in range(2)]
        try:
            await wait_for(lambda: load.trees >= 2, within=20, what="load before SIGTERM")
            lock = "SELECT 1 FROM workflow_run_streams WHERE workspace_id = 'ws-slow' FOR UPDATE"
            async with holding(database_url, lock):
                # Made slow: they wait for the head the test holds (the creates after inserting
                # their run row, the starts before touching anything).
                slow = [asyncio.create_task(calls.call("start", {"id": r})) for r in slow_runs]
                slow += [
                    asyncio.create_task(
                        calls.call("create", _input("ws-slow", "slow", idempotencyKey=f"slow-{i}"))
                    )
                    for i in range(2)
                ]

                admin = await asyncpg.connect(database_url)
                try:

                    async def all_waiting() -> bool:
                        backends = await service_backends(admin, _database(database_url))
                        return sum(b["wait_event_type"] == "Lock" for b in backends) == len(slow)

                    await wait_for(all_waiting, within=10, what="the slow requests in flight")
                finally:
                    await admin.close()
                signalled_at = time.monotonic()
                served.process.send_signal(signal.SIGTERM)
                # uvicorn stops accepting connections first; the slow requests still run.
                await wait_for(
                    lambda: _refuses(served.port), within=10, what="the listening socket to close"
                )
                assert not any(t.done() for t in slow)
            # The lock is released: the requests in flight finish, then the process exits.
            async with asyncio.timeout(30):
                slow_outcomes = await asyncio.gather(*slow)
                await asyncio.gather(*workers)
            code = await served.exited(within=30)
        finally:
            load.stop.set()
            await calls.aclose()
    log = served.log()
    # uvicorn re-raises SIGTERM after its graceful shutdown; the CLI exits with 128 + SIGTERM.
    assert code == 128 + signal.SIGTERM, log
    assert "Traceback" not in log and '"ERROR"' not in log, log
    for outcome in slow_outcomes:
        assert outcome.ok, f"in flight at SIGTERM, yet: {outcome}"
        assert outcome.ended > signalled_at
    for outcome in calls.outcomes:
        if outcome.transport_error is None:
            assert outcome.ok, outcome  # the database was healthy: every answer is a success
        else:
            # Refused, or closed before the server read it, once it had begun to shut down.
            assert outcome.ended >= signalled_at, outcome
    db = await stored(database_url)
    audit(db)
    assert assert_reflected(db, calls.outcomes) >= 30
    for outcome in calls.outcomes:
        if outcome.transport_error is not None and outcome.op in MUTATIONS:
            assert_not_applied(db, outcome)  # no answer, because the server never ran it


async def _refuses(port: int) -> bool:
    return not await accepts_connections(port)


# --- 4. The pool's connections killed between requests ----------------------------------------


@pytest.mark.parametrize(
    "closes",
    [
        # The service reads each killed backend's FATAL message and its close together.
        "prompt",
        # It has read the FATAL message, not yet the close (as it happens by chance under load).
        "late",
    ],
)
async def test_pool_connections_killed_between_requests_are_replaced_without_a_5xx_or_a_hang(
    settings: Settings, database_url: str, closes: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    database = _database(database_url)
    pending: list[str] = []
    killed_total = 0
    bug: list[Outcome] = []

    def known_bug(outcome: Outcome) -> bool:
        return request_id(outcome) in dead_connection_errors(caplog)

    async with contextlib.AsyncExitStack() as stack:
        admin = await asyncpg.connect(database_url)
        stack.push_async_callback(admin.close)
        proxy = await stack.enter_async_context(LateCloseProxy(database_url))
        pool_dsn = proxy.dsn() if closes == "late" else database_url
        app = create_app(replace(on_database(settings, pool_dsn), listen_url=database_url))
        calls = Calls(await stack.enter_async_context(running(app)))
        stack.push_async_callback(calls.aclose)
        for i in range(3):
            # Concurrent requests grow the pool to several connections.
            warm = await asyncio.gather(*(calls.call("list", {"ws": "ws-a"}) for _ in range(12)))
            assert all(o.ok for o in warm), warm
            pending += [
                (await calls.ok("create", _input("ws-a", f"r{i}-{n}")))["id"] for n in range(6)
            ]
            pids = [b["pid"] for b in await service_backends(admin, database)]
            assert len(pids) >= 2, pids
            if closes == "late":
                proxy.hold()
            killed_total += await terminate(admin, pids)
            # Gone (the pool may already be opening a replacement to keep its minimum size).
            remaining = {b["pid"] for b in await service_backends(admin, database)}
            assert not remaining & set(pids), remaining
            if closes == "late":
                await proxy.wait_held(len(pids))
            # The next requests: the first alone, then a concurrent burst of writes and reads.
            first = await calls.call("list", {"ws": "ws-a"})
            burst = await asyncio.gather(
                *(calls.call("start", {"id": run_id}) for run_id in pending[-6:-3]),
                *(
                    calls.create("ws-a", f"r{i}-burst", idempotencyKey=f"r{i}-b{n}")
                    for n in range(3)
                ),
                *(calls.call("list", {"ws": "ws-a"}) for _ in range(6)),
            )
            answered = [first, *burst]
            bug += [o for o in answered if known_bug(o)]
            assert_answered([o for o in answered if o not in bug], within=FAST_S)
            assert all(o.status == 200 and o.elapsed < FAST_S for o in bug), bug
            # Whatever failed wrote nothing, and succeeds when retried.
            db = await stored(database_url)
            for outcome in answered:
                if not outcome.ok:
                    if outcome.op in MUTATIONS:
                        assert_not_applied(db, outcome)
                    await calls.until_ok(outcome.op, outcome.variables, tolerate=known_bug)
            # Sequential requests after that all succeed: the pool holds live connections.
            for run_id in pending[-3:]:
                await calls.ok("start", {"id": run_id})
                await calls.ok("complete", {"id": run_id})
            new_pids = [b["pid"] for b in await service_backends(admin, database)]
            assert new_pids and not set(new_pids) & set(pids)
            proxy.release()
    bug += [o for o in calls.outcomes if known_bug(o) and o not in bug]
    assert_answered([o for o in calls.outcomes if o not in bug], within=FAST_S)
    failures = [o for o in calls.outcomes if not o.ok]
    # A dead connection fails at most the one request that finds it dead.
    assert len(failures) <= killed_total, failures
    db = await stored(database_url)
    audit(db)
    # Per round: 6 creates, 3 starts and 3 creates in the burst, 3 starts and 3 completes.
    assert assert_reflected(db, calls.outcomes) == 3 * 18
    no_errors_logged(caplog, but={request_id(o) or "" for o in bug})
    if bug:
        raise NotRetryable(f"{BUG_DEAD_POOLED_CONNECTION} {len(bug)} requests, e.g. {bug[0]}")


# --- 5. The listener's connection killed, then SIGTERM ----------------------------------------


async def test_sigterm_stops_serve_after_its_listener_connection_died_sending_a_hint(
    tmp_path: Path, database_url: str
) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        async with (
            LateCloseProxy(database_url) as proxy,
            serve(tmp_path, proxy.dsn()) as served,
        ):
            ready_at = time.monotonic()
            calls = Calls(served.base_url)
            try:
                await calls.ok("create", _input("ws-a", "before"))
                proxy.hold()
                listeners = await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                    _database(database_url),
                    LISTENER_APPLICATION_NAME,
                )
                assert await terminate(admin, [r["pid"] for r in listeners]) == 1
                await proxy.wait_held(1)
                # A commit: its hint goes out on the listener's dead connection.
                await calls.ok("create", _input("ws-a", "after"))
                ready = await calls.http.get(f"{served.base_url}/readyz")
                if time.monotonic() - ready_at > 5:
                    pytest.skip("too slow: the listener's 10 s health check may have run")
                served.process.send_signal(signal.SIGTERM)
                code = await served.exited(within=12)
            finally:
                proxy.release()
                await calls.aclose()
    finally:
        await admin.close()
    db = await stored(database_url)
    audit(db)
    assert assert_reflected(db, calls.outcomes) == 2
    if code is None:
        raise ShutdownHung(
            f"{BUG_LISTENER_HANG} serve still runs 12 s after SIGTERM "
            "(uvicorn's graceful timeout is 10 s); "
            f"meanwhile /readyz said {ready.status_code} {ready.text}"
        )
    assert code == 128 + signal.SIGTERM, served.log()
