"""Suite `compare`: this service side by side with PostGraphile 5 and 4 and the ceiling.

Seeds one database through the project's migrations (1,000,000 runs over 50 workspaces, every
status, parent trees, small JSON inputs and outputs), starts every server on it pinned to the
server core, checks that each returns the same runs for the same operation, then drives each
operation with wrk from the load core, alternating servers round by round (A B C D A B C D):

1. `page`: a page of 50 runs, all 17 fields, by workspace and status set;
2. `by_id`: one run by id;
3. `parents`: a page of 50 with `parent { id status }`;
4. `start_complete`: one request that starts and completes a pending run.

It also measures this service's p99 at half its maximum throughput (open loop), its SQL
statements per request, mutations with the subscription machinery on and off, and operation 1
as the workspace grows from 10,000 to 10,000,000 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import machine, postgres
from bench.loadgen import Request, WrkResult, lua_script, open_loop, wrk
from bench.pinning import pin_load_generator, server_prefix
from bench.report import SuiteResult, Table, publish
from bench.server import Server, free_port
from bench.stats import median
from server.auth import mint_token

TITLE = "compare: side by side with PostGraphile 5.1.5, PostGraphile 4.14.1 and the ceiling"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
MUTATION_WORKSPACE = "ws_mut"
STATUS_SETS = (
    ["running", "waiting"],
    ["completed", "failed"],
    ["pending"],
    ["paused", "cancelled", "timed_out"],
)
OPERATIONS = ("page", "by_id", "parents", "start_complete")
RUN_FIELDS = (
    "id workspaceId subjectId parentRunId status mode input output error triggeredBy "
    "cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt"
)
_PAGE_ARGS = "workspaceId: $ws, status: $status, first: 50, orderBy: CREATED_AT_DESC"
OURS_DOCUMENTS = {
    "page": (
        "query Page($ws: ID!, $status: [WorkflowRunStatus!]) { "
        f"workflowRuns({_PAGE_ARGS}) {{ nodes {{ {RUN_FIELDS} }} }} }}"
    ),
    "parents": (
        "query Parents($ws: ID!, $status: [WorkflowRunStatus!]) { "
        f"workflowRuns({_PAGE_ARGS}) {{ nodes {{ {RUN_FIELDS} parent {{ id status }} }} }} }}"
    ),
    "by_id": f"query Run($id: ID!) {{ workflowRun(id: $id) {{ {RUN_FIELDS} }} }}",
    "start_complete": (
        "mutation Both($id: ID!) { s: startWorkflowRun(id: $id) { status } "
        "c: completeWorkflowRun(id: $id, output: {ok: true}) { status } }"
    ),
}


@dataclass(frozen=True)
class Config:
    runs: int
    workspaces: int
    duration_s: float
    warmup_s: float
    connections: int
    rounds: int
    mutation_runs: int
    scale: tuple[int, ...]
    half_load_s: float


FULL = Config(1_000_000, 50, 10, 3, 16, 2, 500_000, (10_000, 100_000, 1_000_000, 10_000_000), 15)
QUICK = Config(20_000, 4, 2, 0.5, 8, 1, 50_000, (), 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="runs to seed over the workspaces")
    parser.add_argument("--duration", type=float, help="seconds per wrk measurement")
    parser.add_argument("--rounds", type=int, help="rounds of A B C D")
    parser.add_argument(
        "--servers",
        default="ours,pg5,pg4,ceiling",
        help="comma-separated: ours, pg5, pg4, ceiling (default: all)",
    )
    parser.add_argument(
        "--scale",
        help="comma-separated workspace sizes for operation 1 (default 10k..10M; 'none' skips)",
    )


# --- data -----------------------------------------------------------------------------------


def workspace(n: int) -> str:
    return f"ws_{n:03d}"


def run_id(n: int) -> str:
    """The id the seed gives the n-th run of a workspace (ids repeat across workspaces)."""
    return f"run_{n:010d}"


_PENDING = """
INSERT INTO workflow_runs (workspace_id, id, subject_id, status, mode, input, triggered_by,
                           user_id, created_at, updated_at)
SELECT $1, 'run_' || lpad(g::text, 10, '0'), 'wf_mut', 'pending', 'async',
       jsonb_build_object('n', g), 'workflow', 'user_bench', now(), now()
  FROM generate_series(1, $2::int) AS g
"""


async def seed(dsn: str, config: Config, scale: tuple[int, ...]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        per = config.runs // config.workspaces
        names = [workspace(n) for n in range(config.workspaces)]
        for name in names:
            await postgres.seed_runs(conn, name, per, analyze=False, parents=True)
        for size in scale:
            await postgres.seed_runs(conn, f"ws_scale_{size}", size, analyze=False, parents=True)
        await conn.execute(_PENDING, MUTATION_WORKSPACE, config.mutation_runs)
        # Runs made through the API get their workspace's stream head then; seeded ones here.
        await conn.execute(
            "INSERT INTO workflow_run_streams (workspace_id) "
            "SELECT DISTINCT workspace_id FROM workflow_runs ON CONFLICT DO NOTHING"
        )
        await conn.execute("VACUUM (ANALYZE) workflow_runs")
    finally:
        await conn.close()


# --- servers --------------------------------------------------------------------------------


@dataclass
class Target:
    """One server under test, and how to phrase each operation for it."""

    name: str
    url: str
    pid: Callable[[], int]
    requests: Callable[[str, list[dict[str, Any]]], list[Request]]
    normalize: Callable[[str, Any], Any]
    stop: Callable[[], None]
    metrics_url: str | None = None
    supports: frozenset[str] = frozenset(OPERATIONS)


def _ours_requests(op: str, params: list[dict[str, Any]]) -> list[Request]:
    # One token for the lists, naming every workspace they read (a user of several
    # workspaces); by id, a token of the run's workspace alone, since the seeded ids repeat
    # across workspaces and ours finds a run by id among the token's workspaces.
    listed = sorted({p["workspace"] for p in params})
    out = []
    for p in params:
        spaces = listed if op in ("page", "parents") else [p["workspace"]]
        tok = mint_token(SECRET, user="bench", workspaces=spaces)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tok}"}
        if op in ("page", "parents"):
            variables: dict[str, Any] = {
                "ws": p["workspace"],
                "status": [s.upper() for s in p["statuses"]],
            }
        else:
            variables = {"id": p["id"]}
        body = orjson.dumps({"query": OURS_DOCUMENTS[op], "variables": variables})
        out.append(Request(headers, body))
    return out


def _ceiling_requests(op: str, params: list[dict[str, Any]]) -> list[Request]:
    out = []
    for p in params:
        body: dict[str, Any] = {"op": op, "workspaceId": p["workspace"]}
        if op == "by_id":
            body["id"] = p["id"]
        else:
            body["statuses"] = p["statuses"]
        out.append(Request({"Content-Type": "application/json"}, orjson.dumps(body)))
    return out


def _instant(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return value


def normalize_api(op: str, response: Any) -> Any:
    """The runs of our API's (or the ceiling's) answer, with instants as epoch seconds."""
    data = response["data"]
    if op == "by_id":
        nodes = [data["workflowRun"]]
    elif op == "start_complete":
        return response
    else:
        nodes = data["workflowRuns"]["nodes"]
    return [{k: _instant(v) for k, v in node.items()} for node in nodes]


def start_ours(dsn: str, log_dir: Path, *, subscriptions: bool = True) -> Target:
    # No access log: the peers log no requests either (PostGraphile with disableQueryLog).
    env = {"WORKFLOW_RUNS_ACCESS_LOG": "false", "WORKFLOW_RUNS_POOL_MAX_SIZE": "10"}
    if not subscriptions:
        env["WORKFLOW_RUNS_SUBSCRIPTIONS"] = "false"
    name = "ours" if subscriptions else "ours (subscriptions off)"
    server = Server(dsn, SECRET, log_dir / f"{'ours' if subscriptions else 'ours-off'}.log", env)
    server.start()
    return Target(
        name=name,
        url=f"{server.base_url}/graphql",
        pid=lambda: server.pid,
        requests=_ours_requests,
        normalize=normalize_api,
        stop=server.stop,
        metrics_url=f"{server.base_url}/metrics",
        supports=frozenset(OPERATIONS) if subscriptions else frozenset({"start_complete"}),
    )


def start_ceiling(dsn: str, log_dir: Path) -> Target:
    port = free_port()
    cmd = [
        *server_prefix(),
        sys.executable,
        "-m",
        "bench.ceiling",
        "--dsn",
        dsn,
        "--port",
        str(port),
    ]
    with (log_dir / "ceiling.log").open("ab") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/graphql"
    _wait_answering(url, process)

    def stop() -> None:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5)

    return Target(
        name="ceiling",
        url=url,
        pid=lambda: process.pid,
        requests=_ceiling_requests,
        normalize=normalize_api,
        stop=stop,
        supports=frozenset({"page", "by_id", "parents"}),
    )


def _wait_answering(url: str, process: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited during startup")
        try:
            urllib.request.urlopen(
                urllib.request.Request(url, data=b"{}", method="POST"), timeout=2
            )
            return
        except urllib.error.HTTPError:
            return  # it answers (an error for the empty body is fine)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {within} s")


def start_peer(which: str, dsn: str, log_dir: Path) -> Target:
    """PostGraphile 5 or 4, through bench/peers.py."""
    from bench import peers

    peer = peers.start(which, dsn, log_dir)
    return Target(
        name=peer.name,
        url=peer.url,
        pid=lambda: peer.pid,
        requests=lambda op, params: [
            Request({"Content-Type": "application/json"}, peer.body(op, p)) for p in params
        ],
        normalize=peer.normalize,
        stop=peer.stop,
        supports=frozenset(peer.operations),
    )


# --- the operations' parameters -------------------------------------------------------------


def params_for(
    op: str, config: Config, rng: random.Random, *, scale_ws: str | None = None
) -> list[dict[str, Any]]:
    per = config.runs // config.workspaces
    if op in ("page", "parents"):
        spaces = (
            [scale_ws] if scale_ws else [workspace(n) for n in range(min(10, config.workspaces))]
        )
        return [{"workspace": w, "statuses": s} for w in spaces for s in STATUS_SETS]
    if op == "by_id":
        return [{"workspace": workspace(0), "id": run_id(rng.randint(1, per))} for _ in range(500)]
    # start_complete: `@N@` is replaced by a fresh run number per request.
    return [{"workspace": MUTATION_WORKSPACE, "id": "run_@N@"}]


def post(url: str, request: Request) -> Any:
    req = urllib.request.Request(url, data=request.body, headers=request.headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as response:
        return orjson.loads(response.read())


def check_same(targets: list[Target], config: Config, rng: random.Random) -> list[str]:
    """Each operation's answer from every server, normalized, must be the same."""
    problems = []
    for op in ("page", "by_id", "parents"):
        params = params_for(op, config, rng)[:8]
        for p in params:
            answers = {}
            for target in targets:
                if op not in target.supports:
                    continue
                answers[target.name] = target.normalize(
                    op, post(target.url, target.requests(op, [p])[0])
                )
            reference = next(iter(answers.values()))
            for name, answer in answers.items():
                if answer != reference:
                    problems.append(f"{op} {p}: {name} differs from {next(iter(answers))}")
            if op != "by_id" and not reference:
                problems.append(f"{op} {p}: no runs at all")
    return problems


# --- measuring ------------------------------------------------------------------------------


def _counter(requests: list[Request], first: int, last: int) -> str:
    # Seeded run numbers are zero-padded to 10 digits in their ids.
    return lua_script(requests, template_counter=(first, last), counter_format="%010d")


def db_queries(target: Target) -> float | None:
    if target.metrics_url is None:
        return None
    with urllib.request.urlopen(target.metrics_url, timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^workflow_runs_db_queries_total\s+([\d.e+]+)", text, re.M)
    return float(match.group(1)) if match else None


@dataclass
class Cell:
    results: list[WrkResult] = field(default_factory=list)
    statements_per_request: float | None = None

    def rps(self) -> float:
        return median([r.requests_per_s for r in self.results])

    def p50(self) -> float:
        return median([r.p50_s for r in self.results])

    def p99(self) -> float:
        return median([r.p99_s for r in self.results])

    def bad(self) -> int:
        return sum(r.bad for r in self.results)


class Mutations:
    """Hands out disjoint ranges of pending runs, one per measurement."""

    def __init__(self, total: int) -> None:
        self.next = 1
        self.total = total

    def take(self, count: int) -> tuple[int, int]:
        first = self.next
        self.next = min(self.total + 1, self.next + count)
        if first > self.total:
            raise RuntimeError("out of pending runs: seed more (--runs scales them)")
        return first, self.next - 1


def measure(
    target: Target,
    op: str,
    config: Config,
    rng: random.Random,
    mutations: Mutations,
    *,
    scale_ws: str | None = None,
) -> tuple[WrkResult, float | None]:
    requests = target.requests(op, params_for(op, config, rng, scale_ws=scale_ws))
    if op == "start_complete":
        budget = int(4000 * (config.duration_s + config.warmup_s))
        first, last = mutations.take(budget)
        warm_last = first + int(4000 * config.warmup_s)
        if config.warmup_s:
            wrk(
                target.url,
                _counter(requests, first, warm_last),
                duration_s=config.warmup_s,
                connections=config.connections,
            )
        script = _counter(requests, warm_last + 1, last)
    else:
        script = lua_script(requests)
        if config.warmup_s:
            wrk(target.url, script, duration_s=config.warmup_s, connections=config.connections)
    before = db_queries(target)
    result = wrk(target.url, script, duration_s=config.duration_s, connections=config.connections)
    after = db_queries(target)
    per_request = None
    if before is not None and after is not None and result.requests:
        per_request = (after - before) / result.requests
    return result, per_request


async def completed_runs(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM workflow_runs "
                "WHERE workspace_id = $1 AND status = 'completed'",
                MUTATION_WORKSPACE,
            )
        )
    finally:
        await conn.close()


def _rps(value: float) -> str:
    return f"{value:,.0f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


@contextlib.contextmanager
def _stopping(targets: list[Target]) -> Iterator[None]:
    try:
        yield
    finally:
        for target in targets:
            with contextlib.suppress(Exception):
                target.stop()


async def run_suite(args: argparse.Namespace, result: SuiteResult, config: Config) -> None:
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    scale = config.scale
    if args.scale:
        scale = () if args.scale == "none" else tuple(int(s) for s in args.scale.split(","))
    rng = random.Random(42)
    async with postgres.scratch_database(args.admin_dsn, "compare") as dsn:
        conn = await asyncpg.connect(dsn)
        result.postgres = await machine.postgres(conn)
        await conn.close()
        began = time.monotonic()
        await seed(dsn, config, scale)
        seconds = time.monotonic() - began
        result.notes.append(
            f"Seeding {config.runs:,} runs (+ {sum(scale):,} for scaling) took {seconds:.0f} s."
        )
        log_dir = Path(tempfile.mkdtemp(prefix="wr-bench-compare-"))
        targets: list[Target] = []
        with _stopping(targets):
            starters: dict[str, Callable[[], Target]] = {
                "ours": lambda: start_ours(dsn, log_dir),
                "pg5": lambda: start_peer("pg5", dsn, log_dir),
                "pg4": lambda: start_peer("pg4", dsn, log_dir),
                "ceiling": lambda: start_ceiling(dsn, log_dir),
            }
            for name in wanted:
                targets.append(starters[name]())
            problems = check_same(targets, config, rng)
            if problems:
                raise RuntimeError("servers disagree:\n" + "\n".join(problems))
            result.notes.append(
                "Checked first: every server returned the same runs (normalized: instants compared "
                "as instants) for 8 parameter sets of each read operation."
            )
            off = start_ours(dsn, log_dir, subscriptions=False)
            targets.append(off)
            mutations = Mutations(config.mutation_runs)
            cells: dict[tuple[str, str], Cell] = {}
            for _ in range(config.rounds):
                for op in OPERATIONS:
                    for target in targets:
                        if op not in target.supports:
                            continue
                        res, per_request = measure(target, op, config, rng, mutations)
                        cell = cells.setdefault((op, target.name), Cell())
                        cell.results.append(res)
                        if per_request is not None:
                            cell.statements_per_request = per_request
            _throughput_tables(result, targets, cells)
            ours = next((t for t in targets if t.name == "ours"), None)
            if ours is not None and config.half_load_s:
                await _half_load(result, ours, config, rng, cells, dsn)
            if ours is not None and scale:
                _scaling(
                    result,
                    [t for t in targets if t.name in ("ours", "ceiling")],
                    config,
                    rng,
                    mutations,
                    scale,
                )
            result.raw["cells"] = {
                f"{op}|{name}": [vars(r) for r in cell.results]
                for (op, name), cell in cells.items()
            }
            result.raw["completed_mutation_runs"] = await completed_runs(dsn)


def _throughput_tables(
    result: SuiteResult, targets: list[Target], cells: dict[tuple[str, str], Cell]
) -> None:
    table = Table(
        "Requests/s (median of rounds), latency at that load (wrk, 1 thread)",
        ["operation", "server", "req/s", "p50 ms", "p99 ms", "SQL statements/request", "failed"],
    )
    for op in OPERATIONS:
        for target in targets:
            cell = cells.get((op, target.name))
            if cell is None:
                continue
            spr = (
                "-" if cell.statements_per_request is None else f"{cell.statements_per_request:.2f}"
            )
            table.add(
                op, target.name, _rps(cell.rps()), _ms(cell.p50()), _ms(cell.p99()), spr, cell.bad()
            )
    result.tables.append(table)
    ratios = Table(
        "Ratios from the same run",
        [
            "operation",
            "ours/PostGraphile 5",
            "ours/PostGraphile 4",
            "ours/ceiling",
            "ours (subscriptions on)/off",
        ],
    )
    names = {t.name for t in targets}
    pg5 = next((n for n in names if n.startswith("PostGraphile 5")), None)
    pg4 = next((n for n in names if n.startswith("PostGraphile 4")), None)
    for op in OPERATIONS:
        ours = cells.get((op, "ours"))
        if ours is None:
            continue

        def vs(other: str | None, op: str = op, ours: Cell = ours) -> str:
            cell = cells.get((op, other)) if other else None
            return _ratio(ours.rps(), cell.rps()) if cell else "-"

        ratios.add(op, vs(pg5), vs(pg4), vs("ceiling"), vs("ours (subscriptions off)"))
    result.tables.append(ratios)


# Vacuums of the bench's database in progress now (autovacuum's or not; an analyze in
# progress does not show), and tables autovacuum vacuumed or analysed since $1: PostgreSQL is
# not pinned, and a worker on the servers' core shows in latency.
_AUTOVACUUM_RUNNING = """
SELECT coalesce(string_agg(DISTINCT c.relname || ' (' || p.phase || ')', ', '), '')
  FROM pg_stat_progress_vacuum p JOIN pg_class c ON c.oid = p.relid
 WHERE p.datname = current_database()
"""
_AUTOVACUUM_SINCE = """
SELECT coalesce(string_agg(relname || ' (' || concat_ws(' + ',
           CASE WHEN last_autovacuum > $1 THEN 'vacuum' END,
           CASE WHEN last_autoanalyze > $1 THEN 'analyze' END) || ')', ', ' ORDER BY relname), '')
  FROM pg_stat_user_tables WHERE last_autovacuum > $1 OR last_autoanalyze > $1
"""


async def _autovacuum(conn: asyncpg.Connection, since: datetime) -> str:
    """What autovacuum did in the bench's database since `since`, or was doing at the end."""
    done = await conn.fetchval(_AUTOVACUUM_SINCE, since)
    running = await conn.fetchval(_AUTOVACUUM_RUNNING)
    parts = [f"done: {done}" if done else "", f"running: {running}" if running else ""]
    return "; ".join(p for p in parts if p) or "-"


async def _half_load(
    result: SuiteResult,
    ours: Target,
    config: Config,
    rng: random.Random,
    cells: dict[tuple[str, str], Cell],
    dsn: str,
) -> None:
    table = Table(
        "ours at half its maximum throughput (open loop: each request timed from when it was due)",
        [
            "operation",
            "max req/s",
            "rate",
            "answered",
            "failed",
            "p50 ms",
            "p99 ms",
            "autovacuum meanwhile",
        ],
    )
    conn = await asyncpg.connect(dsn)
    try:
        for op in ("page", "by_id", "parents"):
            cell = cells.get((op, "ours"))
            if cell is None:
                continue
            rate = cell.rps() / 2
            requests = ours.requests(op, params_for(op, config, rng))
            began = await conn.fetchval("SELECT now()")
            running = await conn.fetchval(_AUTOVACUUM_RUNNING)
            res = await open_loop(ours.url, requests, rate=rate, duration_s=config.half_load_s)
            vacuum = await _autovacuum(conn, began)
            if running:
                vacuum = f"at start: {running}; {vacuum}"
            table.add(
                op,
                _rps(cell.rps()),
                _rps(rate),
                res.answered,
                res.bad,
                _ms(res.p50_s),
                _ms(res.p99_s),
                vacuum,
            )
    finally:
        await conn.close()
    result.tables.append(table)


def _scaling(
    result: SuiteResult,
    targets: list[Target],
    config: Config,
    rng: random.Random,
    mutations: Mutations,
    scale: tuple[int, ...],
) -> None:
    table = Table(
        "Operation 1 (page of 50 by status set) as the workspace grows",
        [
            "runs in the workspace",
            *[f"{t.name} req/s" for t in targets],
            *[f"{t.name} p99 ms" for t in targets],
        ],
    )
    for size in scale:
        row: list[Any] = [f"{size:,}"]
        p99s = []
        for target in targets:
            res, _ = measure(target, "page", config, rng, mutations, scale_ws=f"ws_scale_{size}")
            row.append(_rps(res.requests_per_s))
            p99s.append(_ms(res.p99_s))
        table.add(*row, *p99s)
    result.tables.append(table)


def main(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.runs:
        config = Config(**{**vars(config), "runs": args.runs})
    if args.duration:
        config = Config(**{**vars(config), "duration_s": args.duration})
    if args.rounds:
        config = Config(**{**vars(config), "rounds": args.rounds})
    where = pin_load_generator()
    result = SuiteResult("compare", TITLE, args.quick, machine.describe(), {})
    result.raw["config"] = vars(config)
    result.notes.append(
        f"Servers pinned to CPU 0 (taskset); wrk ({config.connections} connections, 1 thread) and "
        f"this driver on CPU {where}; PostgreSQL unpinned. {config.duration_s:g} s per measurement "
        f"after {config.warmup_s:g} s of warm-up; {config.rounds} round(s), servers alternating."
    )
    with postgres.admin_dsn(args.dsn) as admin:
        args.admin_dsn = admin
        asyncio.run(run_suite(args, result, config))
    publish(result)
    return 0
