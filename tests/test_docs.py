"""The docs, run as written: docs/api.md and docs/operations.md cannot drift from the code.

- Every ```graphql example of api.md runs against a real server: queries and mutations must
  succeed (or, under a "Response" block, fail with exactly that body), subscriptions must deliver
  an event. Placeholders in the variables ("RUNNING_RUN_ID", "END_CURSOR", ...) are replaced by
  runs and cursors made for the example.
- ```http examples are sent and their status, headers and bodies compared; WebSocket transcripts
  are replayed message by message; the one shell command runs.
- The lifecycle diagram and table are the transition table of db/lifecycle.py, the limits and
  configuration tables are the variables and defaults server/config.py reads, the metrics are
  those server/metrics.py exports, and the PgBouncer configuration is run with the service.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import http
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets
from starlette.applications import Starlette

from db.lifecycle import RETRYABLE, TRANSITIONS, Transition
from db.records import TERMINAL, RunStatus
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

ROOT = Path(__file__).parent.parent
API = (ROOT / "docs" / "api.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
CONFIG = ROOT / "server" / "config.py"

DEMO = "demo"
DEMO_USER = "demo-user"
ELSEWHERE = "elsewhere"
GRAPHQL_RESPONSE = "application/graphql-response+json"
KEEP_ALIVES = {"ping", "pong", "ka"}


# --- reading the markdown ---------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced code block, with the last line of text before it (its label)."""

    lang: str
    body: str
    label: str
    line: int

    @property
    def id(self) -> str:
        return f"line{self.line}"


def blocks(markdown: str) -> list[Block]:
    found = []
    previous_end = 0
    for match in re.finditer(r"^```(\w*)\n(.*?)^```[ \t]*$", markdown, flags=re.M | re.S):
        text = [line.strip() for line in markdown[previous_end : match.start()].splitlines()]
        text = [line for line in text if line]
        line = markdown.count("\n", 0, match.start()) + 1
        found.append(Block(match[1], match[2], text[-1] if text else "", line))
        previous_end = match.end()
    return found


@dataclass(frozen=True)
class Example:
    """A ```graphql block, its variables, and the response it must give when it is an error."""

    block: Block
    variables: dict[str, Any] | None
    response: dict[str, Any] | None
    status: int

    @property
    def is_subscription(self) -> bool:
        return self.block.body.lstrip().startswith("subscription")

    @property
    def id(self) -> str:
        named = re.match(r"\s*(?:query|mutation|subscription)\s+(\w+)", self.block.body)
        return f"{named[1] if named else 'anonymous'}-{self.block.id}"


def graphql_examples(markdown: str) -> tuple[list[Example], set[int]]:
    """The examples, and the lines of the json blocks they claim."""
    found = []
    claimed: set[int] = set()
    every = blocks(markdown)
    for index, block in enumerate(every):
        if block.lang != "graphql":
            continue
        following = iter(every[index + 1 :])
        variables = response = None
        status = 200
        after = next(following, None)
        if after is not None and after.lang == "json" and after.label == "Variables:":
            variables = json.loads(after.body)
            claimed.add(after.line)
            after = next(following, None)
        if after is not None and after.lang == "json" and after.label.startswith("Response"):
            label = re.fullmatch(r"Response(?: \(HTTP (\d{3})\))?:", after.label)
            assert label, f"line {after.line}: unexpected label {after.label!r}"
            response = json.loads(after.body)
            status = int(label[1] or 200)
            claimed.add(after.line)
        found.append(Example(block, variables, response, status))
    return found, claimed


def tables(markdown: str, heading: str) -> list[list[list[str]]]:
    """The tables of the section under `heading` (to the next heading of its level or above)."""
    level = heading.split(" ", 1)[0]
    start = markdown.index(f"\n{heading}\n")
    end = len(markdown)
    for match in re.finditer(r"^(#+) ", markdown[start + 1 :], flags=re.M):
        if len(match[1]) <= len(level) and match.start() > 0:
            end = start + 1 + match.start()
            break
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in markdown[start:end].splitlines():
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


API_EXAMPLES, API_CLAIMED_JSON = graphql_examples(API)


def test_every_json_block_of_the_api_doc_belongs_to_an_example() -> None:
    orphans = [b.line for b in blocks(API) if b.lang == "json" and b.line not in API_CLAIMED_JSON]
    assert orphans == []
    languages = {b.lang for b in blocks(API)}
    assert languages <= {"graphql", "json", "http", "text", "mermaid", "bash"}


# --- placeholders: runs and cursors made for each example --------------------------------------

MOVES = {
    "start": "mutation($id: ID!) { startWorkflowRun(id: $id) { status } }",
    "wait": "mutation($id: ID!) { markWorkflowRunWaiting(id: $id) { status } }",
    "pause": "mutation($id: ID!) { pauseWorkflowRun(id: $id) { status } }",
    "complete": "mutation($id: ID!) { completeWorkflowRun(id: $id) { status } }",
    "fail": 'mutation($id: ID!) { failWorkflowRun(id: $id, error: "seeded") { status } }',
}
PATHS = {
    "PENDING": [],
    "RUNNING": ["start"],
    "WAITING": ["start", "wait"],
    "PAUSED": ["start", "pause"],
    "COMPLETED": ["start", "complete"],
    "FAILED": ["start", "fail"],
}
EVENTS = "query($id: ID!) { workflowRun(id: $id) { events { cursor } } }"
FIRST_PAGE = 'query { workflowRuns(workspaceId: "demo", first: 2) { pageInfo { endCursor } } }'


class World:
    """Clients of the demo workspace and of another one, and what the placeholders stand for."""

    def __init__(self, server: str) -> None:
        self.token = token([DEMO], user=DEMO_USER)
        self.demo = GraphQLClient(server, self.token)
        self.foreign = GraphQLClient(server, token([ELSEWHERE], user="someone-else"))
        self.runs: list[str] = []

    async def aclose(self) -> None:
        await self.demo.aclose()
        await self.foreign.aclose()

    async def run(self, status: str = "PENDING", **fields: Any) -> str:
        seeded = {"subjectId": "wf_nightly_report", "triggeredBy": "WORKFLOW", **fields}
        run_id: str = (await create_run(self.demo, DEMO, **seeded))["id"]
        for move in PATHS[status]:
            await self.demo.data(MOVES[move], {"id": run_id})
        self.runs.append(run_id)
        return run_id

    async def resolve(self, placeholder: str) -> str:
        status = placeholder.removesuffix("_RUN_ID")
        if status in PATHS:
            return await self.run(status, input={"date": "2026-11-25"})
        if placeholder == "PARENT_RUN_ID":
            parent = await self.run("RUNNING")
            for subject in ("agt_fetch", "agt_render"):
                await self.run(subjectId=subject, triggeredBy="AGENT", parentRunId=parent)
            return parent
        if placeholder == "FOREIGN_RUN_ID":
            run: dict[str, Any] = await create_run(self.foreign, ELSEWHERE)
            return str(run["id"])
        if placeholder == "END_CURSOR":
            for _ in range(3):
                await self.run()
            data = await self.demo.data(FIRST_PAGE)
            return str(data["workflowRuns"]["pageInfo"]["endCursor"])
        if placeholder == "EVENT_CURSOR":
            run_id = await self.run("RUNNING")
            data = await self.demo.data(EVENTS, {"id": run_id})
            return str(data["workflowRun"]["events"][0]["cursor"])
        raise AssertionError(f"unknown placeholder {placeholder!r}")

    async def substitute(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: await self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.substitute(v) for v in value]
        if isinstance(value, str) and value in PLACEHOLDERS:
            return await self.resolve(value)
        return value

    async def make_changes(self) -> None:
        """Create and finish a run, and move every seeded run on, for subscriptions to see."""
        fresh = await self.run("COMPLETED")
        for run_id in [r for r in self.runs if r != fresh]:
            for move in ("start", "complete"):
                await self.demo.execute(MOVES[move], {"id": run_id})


def _documented_placeholders() -> set[str]:
    [table] = tables(API, "## How to read the examples")
    return {span.strip('"') for row in table[1:] for span in code_spans(row[0])} - {"TOKEN"}


PLACEHOLDERS = _documented_placeholders()


def _placeholders_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_placeholders_in(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(_placeholders_in(v) for v in value), set())
    if isinstance(value, str) and re.fullmatch(r"[A-Z][A-Z_]+_(ID|CURSOR)", value):
        return {value}
    return set()


def test_the_placeholders_the_examples_use_are_the_documented_ones() -> None:
    used = set().union(*(_placeholders_in(e.variables) for e in API_EXAMPLES))
    assert used <= PLACEHOLDERS
    assert used == PLACEHOLDERS, f"documented but never used: {PLACEHOLDERS - used}"


@pytest.fixture
async def world(server: str) -> AsyncIterator[World]:
    world = World(server)
    yield world
    await world.aclose()


# --- the GraphQL examples -----------------------------------------------------------------------


class Socket:
    """A graphql-transport-ws or graphql-ws connection that collects what the server sends."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.closed: tuple[int | None, str] | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        self.closed = (self.ws.close_code, self.ws.close_reason or "")

    async def next(self, *, keep_alives: bool = False, within: float = 15.0) -> dict[str, Any]:
        def arrived() -> bool:
            while self.messages and not keep_alives and self.messages[0]["type"] in KEEP_ALIVES:
                self.messages.pop(0)
            return bool(self.messages) or self.closed is not None

        await wait_for(arrived, within=within, what="a message from the server")
        assert self.messages, f"the socket closed: {self.closed}"
        return self.messages.pop(0)

    async def wait_closed(self) -> tuple[int | None, str]:
        await wait_for(lambda: self.closed is not None, what="the socket to close")
        assert self.closed is not None
        return self.closed

    async def aclose(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def socket(server: str, protocol: str = "graphql-transport-ws") -> AsyncIterator[Socket]:
    ws = await websockets.connect(ws_url(server), subprotocols=[protocol])  # type: ignore[list-item]
    connection = Socket(ws)
    try:
        yield connection
    finally:
        await connection.aclose()


async def _post(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    headers = {**client.headers(client.token), "Accept": GRAPHQL_RESPONSE}
    response = await client.http.post(client.url, json=body, headers=headers)
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    result: dict[str, Any] = response.json()
    return response.status_code, result


async def _subscribe(
    app: Starlette, server: str, world: World, query: str, variables: dict[str, Any] | None
) -> dict[str, Any]:
    async with socket(server) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {world.token}"}}
        await ws.ws.send(json.dumps(init))
        assert (await ws.next())["type"] == "connection_ack"
        payload = {"query": query, "variables": variables or {}}
        await ws.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        fanout = app.state.runtime.fanout
        await wait_for(
            lambda: fanout.subscriber_count >= 1 or bool(ws.messages),
            what="the subscription to start",
        )
        await world.make_changes()
        return await ws.next()


@pytest.mark.parametrize("example", API_EXAMPLES, ids=[e.id for e in API_EXAMPLES])
async def test_the_graphql_examples_run_as_documented(
    app: Starlette, server: str, world: World, example: Example
) -> None:
    for status in ("RUNNING", "WAITING"):
        await world.run(status)
    variables = await world.substitute(example.variables)
    if example.is_subscription:
        assert example.response is None, "subscription errors are shown as transcripts"
        message = await _subscribe(app, server, world, example.block.body, variables)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        assert message["payload"]["data"], message
        return
    status, body = await _post(world.demo, example.block.body, variables)
    if example.response is None:
        assert status == 200
        assert "errors" not in body, body["errors"]
        assert body["data"], body
    else:
        assert (status, body) == (example.status, example.response)


# --- HTTP examples ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpMessage:
    start: str
    headers: dict[str, str]
    body: str


def _http(block: Block) -> HttpMessage:
    head, _, body = block.body.partition("\n\n")
    start, *lines = head.splitlines()
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return HttpMessage(start, headers, body.strip())


def http_examples(markdown: str) -> list[tuple[Block, HttpMessage, HttpMessage]]:
    every = [b for b in blocks(markdown) if b.lang == "http"]
    assert len(every) % 2 == 0, "each HTTP request is followed by its response"
    pairs = []
    for request, response in zip(every[::2], every[1::2], strict=True):
        pairs.append((request, _http(request), _http(response)))
        assert not pairs[-1][1].start.startswith("HTTP/"), f"line {request.line}"
        assert pairs[-1][2].start.startswith("HTTP/1.1 "), f"line {response.line}"
    return pairs


HTTP_EXAMPLES = http_examples(API) + http_examples(OPERATIONS)


@pytest.mark.parametrize(
    ("block", "request_", "expected"),
    HTTP_EXAMPLES,
    ids=[f"{'api' if b.body in API else 'operations'}-{b.id}" for b, _, _ in HTTP_EXAMPLES],
)
async def test_the_http_examples_answer_as_documented(
    server: str, world: World, block: Block, request_: HttpMessage, expected: HttpMessage
) -> None:
    method, target, version = request_.start.split(" ")
    assert version == "HTTP/1.1"
    headers = {
        name: value.replace("Bearer TOKEN", f"Bearer {world.token}")
        for name, value in request_.headers.items()
    }
    response = await world.demo.http.request(
        method, server + target, headers=headers, content=request_.body.encode()
    )
    _, status, phrase = expected.start.split(" ", 2)
    assert (response.status_code, response.reason_phrase) == (int(status), phrase)
    assert http.HTTPStatus(int(status)).phrase == phrase
    for name, value in expected.headers.items():
        actual = response.headers.get(name, "")
        if name.lower() == "content-type":
            actual = actual.split(";")[0].strip()
        assert actual == value, name
    if expected.body:
        assert response.json() == json.loads(expected.body)


# --- WebSocket transcripts ----------------------------------------------------------------------


def transcripts(markdown: str) -> list[tuple[Block, str]]:
    found = []
    for block in blocks(markdown):
        if block.lang != "text":
            continue
        label = re.fullmatch(r"Transcript, `(graphql-transport-ws|graphql-ws)`.*:", block.label)
        assert label, f"line {block.line}: a text block that is not a transcript"
        found.append((block, label[1]))
    return found


TRANSCRIPTS = transcripts(API)


def _like(expected: Any, actual: Any) -> bool:
    """Equal, but any run id matches any other (they are random)."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_like(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_like(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, str) and expected.startswith("run_"):
        return isinstance(actual, str) and actual.startswith("run_")
    return bool(expected == actual)


@pytest.mark.parametrize(("block", "protocol"), TRANSCRIPTS, ids=[b.id for b, _ in TRANSCRIPTS])
async def test_the_websocket_transcripts_replay(
    app: Starlette, server: str, world: World, block: Block, protocol: str
) -> None:
    async with socket(server, protocol) as ws:
        for line in block.body.splitlines():
            direction, _, message = line.partition(" ")
            if direction == ">":
                await ws.ws.send(message.replace("Bearer TOKEN", f"Bearer {world.token}"))
                continue
            assert direction == "<", line
            if message.startswith("close "):
                code, _, reason = message.removeprefix("close ").partition(" ")
                assert await ws.wait_closed() == (int(code), reason)
                continue
            expected = json.loads(message)
            if expected["type"] in ("next", "data"):
                await subscribers_registered(app, 1)
                await create_run(world.demo, DEMO)
            actual = await ws.next(keep_alives=expected["type"] in KEEP_ALIVES)
            assert _like(expected, actual), (expected, actual)


# --- shell commands ---------------------------------------------------------------------------


def test_the_schema_printing_command_prints_the_served_schema() -> None:
    [command] = [b.body.strip() for b in blocks(API) if b.lang == "bash"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    printed = subprocess.run(
        command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    from schema import build_schema

    assert printed.strip() == build_schema().as_str().strip()
    assert "workflowRunStatusCountsChanged(" in printed


# --- the lifecycle ------------------------------------------------------------------------------

MUTATIONS = {
    Transition.START: "startWorkflowRun",
    Transition.MARK_WAITING: "markWorkflowRunWaiting",
    Transition.PAUSE: "pauseWorkflowRun",
    Transition.RESUME: "resumeWorkflowRun",
    Transition.COMPLETE: "completeWorkflowRun",
    Transition.FAIL: "failWorkflowRun",
    Transition.CANCEL: "cancelWorkflowRun",
    Transition.TIME_OUT: "timeOutWorkflowRun",
}


def _reachable_edges() -> set[tuple[str, str, str]]:
    """Every (from, to, mutation) a run can take, walking the transition table from creation:
    a run that never started goes where `target_if_never_started` says."""
    edges = set()
    seen = set()
    frontier = [(RunStatus.PENDING, False)]
    while frontier:
        state = frontier.pop()
        if state in seen:
            continue
        seen.add(state)
        status, started = state
        for transition, rule in TRANSITIONS.items():
            if status not in rule.sources:
                continue
            target = rule.target
            if not started and rule.target_if_never_started is not None:
                target = rule.target_if_never_started
            edges.add((status.name, target.name, MUTATIONS[transition]))
            frontier.append((target, started or target is RunStatus.RUNNING))
    return edges


def test_the_lifecycle_diagram_is_the_transition_table() -> None:
    [diagram] = [b.body for b in blocks(API) if b.lang == "mermaid"]
    lines = [line.strip() for line in diagram.splitlines() if line.strip()]
    assert lines[0] == "stateDiagram-v2"
    edges = set()
    for line in lines[1:]:
        match = re.fullmatch(r"(\[\*\]|\w+) --> (\[\*\]|\w+)(?:: (\w+)(?: \(.*\))?)?", line)
        assert match, line
        edges.add((match[1], match[2], match[3]))
    expected = _reachable_edges() | {("[*]", "PENDING", "createWorkflowRun")}
    expected |= {(status.name, "[*]", None) for status in TERMINAL}
    assert edges == expected


def test_the_lifecycle_table_is_the_transition_table() -> None:
    [table] = [t for t in tables(API, "### The lifecycle") if t[0][0] == "mutation"]
    sources = {}
    for row in table[1:]:
        [mutation] = code_spans(row[0])
        sources[mutation] = {RunStatus[s] for s in code_spans(row[1])}
    expected = {MUTATIONS[t]: set(rule.sources) for t, rule in TRANSITIONS.items()}
    expected["retryWorkflowRun"] = set(RETRYABLE)
    expected["createWorkflowRun"] = set()
    assert sources == expected
    # The schema has every mutation the table names.
    from schema import build_schema

    fields = set(build_schema()._schema.mutation_type.fields)  # type: ignore[union-attr]
    assert set(sources) == fields


# --- configuration ------------------------------------------------------------------------------


class _Recording(dict[str, str]):
    """An environment that records every variable read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def _configured() -> dict[str, Any]:
    """Each variable server/config.py reads, with its default (None: unset)."""
    tree = ast.parse(CONFIG.read_text())
    defaults: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name) and function.id in ("_int", "_bool"):
            name = ast.literal_eval(node.args[1])
            defaults[name] = eval(compile(ast.Expression(node.args[2]), "config", "eval"))
        elif (
            isinstance(function, ast.Attribute)
            and function.attr == "get"
            and isinstance(node.args[0], ast.Constant)
        ):
            defaults.setdefault(node.args[0].value, None)
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            first, fallback = node.values[0], node.values[-1]
            if isinstance(first, ast.Call) and isinstance(fallback, ast.Constant):
                name = ast.literal_eval(first.args[0])
                defaults[name] = fallback.value or None
    # The parse saw exactly what the code reads.
    env = _Recording()
    Settings.from_env(env)
    assert env.read == set(defaults)
    return defaults


CONFIGURED = _configured()


def _matches_default(cell: str, default: Any) -> bool:
    spans = code_spans(cell)
    if default is None:
        return cell.startswith("unset")
    if not spans:
        return False
    shown = spans[0]
    if isinstance(default, bool):
        return shown == str(default).lower()
    if isinstance(default, int):
        return shown.isdigit() and int(shown) == default
    return bool(shown == default)


def test_the_configuration_table_lists_exactly_what_config_py_reads() -> None:
    [table] = tables(OPERATIONS, "## Configuration")
    assert table[0][:3] == ["variable", "default", "meaning"]
    documented = {}
    for row in table[1:]:
        [name] = code_spans(row[0])
        assert name not in documented, f"{name} twice"
        documented[name] = row[1]
    assert set(documented) == set(CONFIGURED)
    wrong = {n: c for n, c in documented.items() if not _matches_default(c, CONFIGURED[n])}
    assert wrong == {}, {n: (c, CONFIGURED[n]) for n, c in wrong.items()}


def test_the_limits_table_gives_each_variables_default() -> None:
    [table] = tables(API, "## Limits")
    assert table[0][:3] == ["limit", "default", "variable"]
    named = 0
    for row in table[1:]:
        variable = code_spans(row[2])
        if not variable:
            assert row[2] == "fixed"
            continue
        named += 1
        assert _matches_default(row[1], CONFIGURED[variable[0]]), row
    assert named >= 15


def test_every_variable_the_docs_mention_exists() -> None:
    for text in (API, OPERATIONS):
        mentioned = set(re.findall(r"\b(?:WORKFLOW_RUNS_[A-Z_]+|DATABASE_[A-Z_]+)\b", text))
        assert mentioned <= set(CONFIGURED), mentioned - set(CONFIGURED)


# --- operations.md: commands, metrics, logs, privileges, PgBouncer, replicas -------------------


def test_every_workflow_runs_command_of_the_docs_parses() -> None:
    from server.cli import parser

    commands = [
        line.strip()
        for markdown in (API, OPERATIONS)
        for block in blocks(markdown)
        if block.lang == "bash"
        for line in block.body.splitlines()
        if line.strip().startswith("workflow-runs ")
    ]
    assert len(commands) >= 4
    for command in commands:
        args = parser().parse_args(shlex.split(command)[1:])
        assert args.run is not None
    # And the CLI table names each command with its options.
    [table] = [t for t in tables(OPERATIONS, "## CLI") if t[0][0] == "command"]
    for row in table[1:]:
        usage = code_spans(row[0])[0]
        name = usage.split()[0]
        options = set(re.findall(r"--[a-z]+", usage))
        action = parser()._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        assert options == {o for a in action._actions for o in a.option_strings} - {"-h", "--help"}


async def test_the_metrics_table_is_what_metrics_exports(settings: Settings) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    # With a "replica" (the primary itself, never healthy: it is not in recovery), every family
    # is exported.
    app = create_app(replace(settings, read_urls=(settings.database_url or "",)))
    async with running(app) as server:
        client = GraphQLClient(server, token([DEMO]))
        await client.data('{ workflowRuns(workspaceId: "demo") { totalCount } }')
        response = await client.http.get(f"{server}/metrics")
        await client.aclose()
    exported = {
        family.name: family.type
        for family in text_string_to_metric_families(response.text)
        # prometheus-client's creation timestamps of its own counters and histograms
        if family.name.startswith("workflow_runs_") and not family.name.endswith("_created")
    }
    [table] = tables(OPERATIONS, "### Metrics")
    documented = {}
    for row in table[1:]:
        [name] = code_spans(row[0])
        documented[name.removesuffix("_total")] = row[1]
    assert documented == exported


def test_the_log_line_has_the_fields_the_formatter_writes() -> None:
    import logging

    from server.logs import REQUEST_ID, JsonFormatter

    [example] = [json.loads(b.body) for b in blocks(OPERATIONS) if b.lang == "json"]
    mark = REQUEST_ID.set(example["request_id"])
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            record = logging.getLogger(example["logger"]).makeRecord(
                example["logger"],
                logging.ERROR,
                __file__,
                1,
                example["message"],
                (),
                sys.exc_info(),
            )
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(mark)
    assert line.keys() == example.keys()
    assert (line["level"], line["logger"], line["message"]) == (
        example["level"],
        example["logger"],
        example["message"],
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", example["time"])


def _sql_blocks() -> dict[str, str]:
    found = {}
    for block in blocks(OPERATIONS):
        if block.lang != "sql":
            continue
        if "create_distributed_table" in block.body:
            found["citus"] = block.body  # Citus is not installed here: documentation only
        elif "CREATE ROLE" in block.body:
            found["fresh"] = block.body
        elif "WITH ADMIN OPTION" in block.body:
            found["existing"] = block.body
        else:
            raise AssertionError(f"line {block.line}: an SQL block no test runs")
    assert set(found) == {"citus", "fresh", "existing"}
    return found


async def test_the_documented_privileges_are_enough_to_migrate(admin_dsn: str) -> None:
    import asyncpg

    from db.migrate import migrate, migrations

    suffix = os.urandom(4).hex()
    role, database = f"wr_docs_role_{suffix}", f"wr_docs_db_{suffix}"
    sql = _sql_blocks()
    # The test cluster already has workflow_runs_app (the template database was migrated).
    script = sql["fresh"] + sql["existing"]
    script = re.sub(r"\bworkflow_runs\b", role, re.sub(r"\bruns\b", database, script))
    admin = await asyncpg.connect(admin_dsn)
    try:
        for statement in filter(None, (s.strip() for s in script.split(";"))):
            await admin.execute(statement)
        conn = await asyncpg.connect(admin_dsn, user=role, password="change-me", database=database)
        try:
            applied = await migrate(conn)
            assert await conn.fetchval("SELECT current_user") == role
        finally:
            await conn.close()
        assert applied == [m.version for m in migrations()]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


def test_the_replica_command_is_what_the_replica_test_runs() -> None:
    import inspect

    from server.embedded import EmbeddedPostgres

    source = ast.parse(textwrap.dedent(inspect.getsource(EmbeddedPostgres.clone_from)))
    [call] = [
        node
        for node in ast.walk(source)
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "pg_basebackup"
    ]
    assert isinstance(call.args[1], ast.List)
    code = [e.value if isinstance(e, ast.Constant) else "<path>" for e in call.args[1].elts]
    [line] = [
        line
        for block in blocks(OPERATIONS)
        if block.lang == "bash"
        for line in block.body.splitlines()
        if line.startswith("pg_basebackup ")
    ]
    words = shlex.split(line)[1:]
    documented = ["<path>" if words[i - 1] in ("-D", "-d") else w for i, w in enumerate(words)]
    assert documented == code


def _start_documented_pgbouncer(upstream_dsn: str) -> Any:
    """PgBouncer with the configuration of operations.md, on this machine's addresses and paths."""
    import configparser
    import tempfile

    from tests.pgbouncer import PGBOUNCER, PgBouncer, _free_port, _upstream, _user_exists

    assert PGBOUNCER is not None
    [ini] = [b.body for b in blocks(OPERATIONS) if b.lang == "ini"]
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # type: ignore[assignment,method-assign]
    config.read_string(ini)
    host, upstream_port = _upstream(upstream_dsn)
    port = _free_port()
    # Reachable by the user PgBouncer runs as when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="wr-docs-pgbouncer-"))
    directory.chmod(0o777)
    config["databases"]["*"] = f"host={host} port={upstream_port}"
    config["pgbouncer"]["listen_port"] = str(port)
    config["pgbouncer"]["auth_file"] = str(directory / "users.txt")
    config["pgbouncer"]["logfile"] = str(directory / "pgbouncer.log")
    users = re.search(r'`users.txt` holds `("[^`]*")`', OPERATIONS)
    assert users
    (directory / "users.txt").write_text(users[1] + "\n")
    with (directory / "pgbouncer.ini").open("w") as out:
        config.write(out)
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = [
            "-u",
            "embedded_postgres" if _user_exists("embedded_postgres") else "nobody",
        ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return PgBouncer(process, port, directory)


async def test_the_service_runs_behind_the_documented_pgbouncer(
    settings: Settings, database_url: str
) -> None:
    from tests.pgbouncer import PGBOUNCER

    if PGBOUNCER is None:
        pytest.skip("needs Debian's pgbouncer (.ci/run installs it)")
    bouncer = _start_documented_pgbouncer(database_url)
    process = bouncer.process
    try:
        await wait_for(
            lambda: _listening(bouncer.port) or process.poll() is not None, what="pgbouncer"
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        name = urlsplit(database_url).path.lstrip("/")
        app = create_app(
            replace(
                settings,
                database_url=bouncer.dsn(name),
                listen_url=database_url,
                pgbouncer=True,
            )
        )
        async with running(app) as server:
            world = World(server)
            try:
                message = await _subscribe(
                    app,
                    server,
                    world,
                    'subscription { workflowRunStatusChanged(workspaceId: "demo") { status } }',
                    None,
                )
                assert message["type"] == "next", message
                counts = await world.demo.data(
                    '{ workflowRunStatusCounts(workspaceId: "demo") { status count } }'
                )
                assert sum(c["count"] for c in counts["workflowRunStatusCounts"]) >= 1
            finally:
                await world.aclose()
    finally:
        bouncer.stop()


def _listening(port: int) -> bool:
    import socket as sockets

    with sockets.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
