"""Suite `subscribers`: subscription delivery latency and memory, 1 to 10,000 subscribers.

Targets (the issue): at 10,000 subscribers on one server process, p99 delivery under 1 s and
under 32 KiB per connection; for one subscriber, p50 under 5 ms.

For each N: a fresh `workflow-runs serve` (its own process, pinned to core 0; the database is
one this suite started, or --dsn's), N raw graphql-transport-ws connections from this process
(pinned to core 1), one subscription each to one workspace with a small selection, resuming
from the workspace's head cursor so that none can miss the first event whatever the server's
subscribe backlog. One warm-up change must reach all N (so every subscription is live); then
the server's RSS is read (idle, subscribed); then K status changes go through the HTTP API,
`spacing` apart, and every receipt is timed from the mutation's send and from its response.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import machine, postgres
from bench.pinning import LOAD_CPU, pin_load_generator
from bench.report import RESULTS, SuiteResult, Table, publish
from bench.server import Server
from bench.stats import median, percentile
from bench.wsclient import Subscription, subscribe
from db.pool import connect
from server.auth import mint_token

TITLE = "subscribers: delivery latency and memory per connection"
WORKSPACE = "ws_live"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
SUBSCRIPTION = """
subscription Watch($ws: ID!, $after: String) {
  workflowRunStatusChanged(workspaceId: $ws, after: $after) { cursor status runId previousStatus }
}
"""
CREATE = """
mutation Create($ws: ID!) {
  createWorkflowRun(input: {workspaceId: $ws, subjectId: "wf_bench", triggeredBy: USER}) { id }
}
"""
START = "mutation($id: ID!) { startWorkflowRun(id: $id) { status events { cursor } } }"
MARK_WAITING = "mutation($id: ID!) { markWorkflowRunWaiting(id: $id) { status } }"
RESUME = "mutation($id: ID!) { resumeWorkflowRun(id: $id) { status } }"
# The server's setting for each way of executing subscriptions (servers without the setting
# ignore it and run their only way).
EXECUTIONS = {"shared": "true", "per-subscriber": "false"}
GC_PROBE = Path(__file__).resolve().parent / "gcprobe"


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]
    events: int
    spacing: float
    batch: int  # connections opened concurrently
    deliver_timeout: float  # after the last mutation's response
    executions: tuple[str, ...] = ("shared", "per-subscriber")


FULL = Config(sizes=(1, 100, 1000, 10_000), events=20, spacing=0.2, batch=200, deliver_timeout=180)
QUICK = Config(sizes=(1, 100), events=5, spacing=0.2, batch=100, deliver_timeout=20)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", help="comma-separated subscriber counts (default 1,100,1000,10000)"
    )
    parser.add_argument("--events", type=int, help="measured status changes per size (default 20)")
    parser.add_argument("--spacing", type=float, help="seconds between changes (default 0.2)")
    parser.add_argument(
        "--execution",
        choices=(*EXECUTIONS, "both"),
        default="both",
        help="the server's subscription execution: shared (one execution per event and query "
        "shape, WORKFLOW_RUNS_SHARED_SUBSCRIPTIONS=true) or per-subscriber (Strawberry's own, "
        "=false); default both",
    )
    parser.add_argument(
        "--server-gc",
        choices=("default", "freeze"),
        default="default",
        help="freeze: once all subscriptions are live, make the server call gc.freeze() "
        "(through bench/gcprobe and SIGUSR1; an experiment, the service does not do it)",
    )
    parser.add_argument(
        "--py-spy",
        dest="py_spy",
        default=shutil.which("py-spy"),
        help="py-spy executable: profile the server during setup and delivery of --profile-size "
        "(default: py-spy on PATH, if any)",
    )
    parser.add_argument(
        "--profile-size", type=int, help="N to profile with py-spy (default: the largest)"
    )


class Api:
    """The GraphQL HTTP API, as a frontend calls it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    async def call(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    async def aclose(self) -> None:
        await self.http.aclose()


class Profiler:
    """py-spy recording the server (raw collapsed stacks) until stopped."""

    def __init__(self, executable: str | None, pid: int, path: Path) -> None:
        self.path = path
        self.process: subprocess.Popen[bytes] | None = None
        if executable:
            cmd = [executable, "record", "--pid", str(pid), "--rate", "50", "--nonblocking"]
            cmd += ["--format", "raw", "-o", str(path)]
            if shutil.which("taskset"):
                cmd = ["taskset", "-c", str(LOAD_CPU), *cmd]
            self.process = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    def stop(self) -> dict[str, Any] | None:
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        return summarize_profile(self.path)


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any] | None:
    """Top functions by self and by inclusive samples, from py-spy's raw output."""
    if not path.exists():
        return None
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(name, count / total) for name, count in best]

    return {
        "samples": total,
        "self": ranked(own),
        "inclusive": ranked(inclusive),
        "file": str(path),
    }


def _frame(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else where
    return f"{name} ({short})"


async def _open_all(
    server: Server, n: int, token: str, cursor: str, batch: int
) -> tuple[list[Subscription], list[float], int]:
    """Open n subscriptions, `batch` at a time; returns them, each one's setup time, failures."""
    gate = asyncio.Semaphore(batch)
    setup: list[float] = []
    failures = 0

    async def one() -> Subscription | None:
        nonlocal failures
        async with gate:
            began = time.perf_counter()
            try:
                sub = await asyncio.wait_for(
                    subscribe(
                        "127.0.0.1",
                        server.port,
                        server.ws_url,
                        token,
                        SUBSCRIPTION,
                        {"ws": WORKSPACE, "after": cursor},
                    ),
                    60,
                )
            except (OSError, TimeoutError, ConnectionError):
                failures += 1
                return None
            setup.append(time.perf_counter() - began)
            return sub

    opened = await asyncio.gather(*(one() for _ in range(n)))
    return [s for s in opened if s is not None], setup, failures


def _settled(sub: Subscription, count: int) -> bool:
    # Done: it has `count` events, or the server ended it (nothing more will come).
    return len(sub.receipts) >= count or sub.ended_at is not None or sub.lost_at is not None


async def _wait_receipts(subs: list[Subscription], count: int, deadline: float) -> bool:
    """Wait until every subscription has `count` events (or was ended by the server);
    returns whether all of them got the events."""
    while time.perf_counter() < deadline:
        if all(_settled(s, count) for s in subs):
            break
        await asyncio.sleep(0.05)
    return all(len(s.receipts) >= count for s in subs)


async def sample_rss(server: Server, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError):
            peak[0] = max(peak[0], server.rss_kib())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def settled_rss(server: Server) -> int:
    """RSS after the server went quiet: the median of a few samples."""
    await asyncio.sleep(1.0)
    samples = []
    for _ in range(5):
        samples.append(server.rss_kib())
        await asyncio.sleep(0.2)
    return int(median(samples))


async def measure_size(
    dsn: str, n: int, execution: str, config: Config, args: argparse.Namespace, stamp: str
) -> dict[str, Any]:
    token = mint_token(
        SECRET, user="bench", workspaces=[WORKSPACE], scopes=["runs:read", "runs:write"]
    )
    tag = f"{execution}-{n}"
    log_path = RESULTS / f"subscribers-{stamp}-server-{tag}.log"
    gc_stats = RESULTS / f"subscribers-{stamp}-gc-{tag}.json"
    env = {
        "WORKFLOW_RUNS_SHARED_SUBSCRIPTIONS": EXECUTIONS[execution],
        # Times the server's garbage collections (bench/gcprobe/sitecustomize.py).
        "BENCH_GC_STATS": str(gc_stats),
        "BENCH_GC_FREEZE_ON_USR1": "1" if args.server_gc == "freeze" else "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(GC_PROBE), os.environ.get("PYTHONPATH")])),
    }
    server = Server(dsn, SECRET, log_path, env)
    server.start()
    api = Api(server.base_url, token)
    subs: list[Subscription] = []
    profile = args.py_spy if n == (args.profile_size or max(config.sizes)) else None
    label = execution + (" + gc.freeze" if args.server_gc == "freeze" else "")
    out: dict[str, Any] = {"n": n, "execution": label}
    # The load generator's own cyclic GC would pause it for up to half a second at 10,000
    # connections, and those pauses would count as delivery latency: it is off for the size.
    gc.collect()
    gc.disable()
    marks: dict[str, float] = {}
    delivery_wall = [0.0, 0.0]
    try:
        run_id = (await api.call(CREATE, ws=WORKSPACE))["createWorkflowRun"]["id"]
        started = (await api.call(START, id=run_id))["startWorkflowRun"]
        cursor = started["events"][-1]["cursor"]
        rss_before = await settled_rss(server)

        # Setup: connect, init, subscribe, then one warm-up change that must reach everyone.
        prof = Profiler(profile, server.pid, RESULTS / f"subscribers-{stamp}-pyspy-setup-{tag}.txt")
        began = marks["setup"] = time.perf_counter()
        cpu0 = server.cpu_seconds()
        subs, setup, failures = await _open_all(server, n, token, cursor, config.batch)
        connected = time.perf_counter() - began
        await api.call(MARK_WAITING, id=run_id)
        live_ok = await _wait_receipts(subs, 1, time.perf_counter() + 600)
        marks["idle"] = time.perf_counter()
        live = marks["idle"] - began
        setup_cpu = server.cpu_seconds() - cpu0
        out["profile_setup"] = prof.stop()
        out.update(
            connected_s=connected,
            live_s=live,
            live_all=live_ok,
            connect_failures=failures,
            setup_p50_ms=percentile(setup, 50) * 1000,
            setup_p99_ms=percentile(setup, 99) * 1000,
            setup_server_cpu_s=setup_cpu,
        )
        print(
            f"{execution} N={n}: {len(subs)} subscribed in {connected:.1f} s "
            f"({failures} failed), all live after {live:.1f} s",
            flush=True,
        )
        if args.server_gc == "freeze":
            os.kill(server.pid, signal.SIGUSR1)
            await asyncio.sleep(0.5)
        rss_idle = await settled_rss(server)
        out.update(
            rss_before_kib=rss_before,
            rss_idle_kib=rss_idle,
            kib_per_connection=(rss_idle - rss_before) / max(1, len(subs)),
        )

        # Delivery: K changes through the API, `spacing` apart.
        prof = Profiler(
            profile, server.pid, RESULTS / f"subscribers-{stamp}-pyspy-deliver-{tag}.txt"
        )
        peak = [rss_idle]
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(server, peak, stop))
        sends: list[float] = []
        responses: list[float] = []
        expected: list[str] = []
        cpu0, client_cpu0, wall0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
        marks["delivery"] = wall0
        delivery_wall[0] = time.time()
        for k in range(config.events):
            due = wall0 + k * config.spacing
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            query, status = (RESUME, "RUNNING") if k % 2 == 0 else (MARK_WAITING, "WAITING")
            sends.append(time.perf_counter())
            await api.call(query, id=run_id)
            responses.append(time.perf_counter())
            expected.append(status)
        complete = await _wait_receipts(
            subs, 1 + config.events, responses[-1] + config.deliver_timeout
        )
        commits = await _commit_times(dsn, run_id, config.events)
        wall = time.perf_counter() - wall0
        delivery_wall[1] = time.time()
        server_cpu = (server.cpu_seconds() - cpu0) / wall
        client_cpu = (time.process_time() - client_cpu0) / wall
        stop.set()
        await sampler
        out["profile_deliver"] = prof.stop()
        out.update(
            _latencies(subs, sends, responses, expected, commits),
            all_delivered=complete,
            deliver_wall_s=wall,
            server_cpu_share=server_cpu,
            client_cpu_share=client_cpu,
            rss_peak_kib=peak[0],
            problems=sorted({p for s in subs for p in s.problems})[:10],
            **_endings(subs, marks),
        )
        print(
            f"{execution} N={n}: last-subscriber p50 {out['last_p50_ms']:.1f} ms "
            f"p99 {out['last_p99_ms']:.1f} ms (from commit p50 {out['commit_last_p50_ms']:.1f} "
            f"p99 {out['commit_last_p99_ms']:.1f}); all receipts p50 {out['all_p50_ms']:.1f} "
            f"p99 {out['all_p99_ms']:.1f} ms; "
            f"missing {out['missing']}; {out['kib_per_connection']:.1f} KiB/connection",
            flush=True,
        )
    finally:
        for sub in subs:
            sub.abort()
        await api.aclose()
        await asyncio.sleep(0.5)
        server.stop()
        gc.enable()
        out["server_gc"] = _gc_stats(gc_stats)
        out["server_gc_delivery"] = _gc_window(gc_stats, *delivery_wall)
    return out


def _gc_window(path: Path, start: float, end: float) -> dict[str, Any] | None:
    """The server's full collections that ended during the delivery phase."""
    try:
        full = json.loads(path.read_text())["full"]
    except (OSError, ValueError, KeyError):
        return None
    inside = [seconds for at, seconds in full if start <= at <= end + 0.5]
    return {"collections": len(inside), "seconds": sum(inside), "max_s": max(inside, default=0.0)}


def _gc_stats(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())["generations"]
    except (OSError, ValueError, KeyError):
        return None
    return data


def _endings(subs: list[Subscription], marks: dict[str, float]) -> dict[str, Any]:
    """Subscriptions the server ended (complete/error, close, drop) while we still listened:
    how many, in which phase, after how many events."""
    phases = sorted(marks.items(), key=lambda kv: kv[1])
    ended: dict[str, int] = {}
    after_events: dict[int, int] = {}
    closes: dict[str, int] = {}
    for sub in subs:
        at = min((t for t in (sub.ended_at, sub.lost_at) if t is not None), default=None)
        if at is None:
            continue
        phase = "before setup"
        for name, start in phases:
            if at >= start:
                phase = name
        ended[phase] = ended.get(phase, 0) + 1
        seen = sum(1 for t, _ in sub.receipts if t <= at)
        after_events[seen] = after_events.get(seen, 0) + 1
        how = "complete/error" if sub.ended_at is not None else f"close {sub.close_code}"
        closes[how] = closes.get(how, 0) + 1
    return {
        "ended_early": sum(ended.values()),
        "ended_by_phase": ended,
        "ended_after_events": dict(sorted(after_events.items())),
        "ended_how": closes,
    }


async def _commit_times(dsn: str, run_id: str, k: int) -> list[float] | None:
    """When each of the run's last k events committed, on this process's perf_counter clock;
    None where the server does not track commit timestamps (track_commit_timestamp=off)."""
    conn = await connect(dsn)
    try:
        if await conn.fetchval("SHOW track_commit_timestamp") != "on":
            return None
        rows = await conn.fetch(
            "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS at "
            "FROM workflow_run_events WHERE workspace_id = $1 AND run_id = $2 "
            "ORDER BY seq DESC LIMIT $3",
            WORKSPACE,
            run_id,
            k,
        )
    finally:
        await conn.close()
    # The server is on this machine: one wall clock. Read both clocks back to back.
    offset = time.time() - time.perf_counter()
    return [row["at"] - offset for row in reversed(rows)]


def _latencies(
    subs: list[Subscription],
    sends: list[float],
    responses: list[float],
    expected: list[str],
    commits: list[float] | None = None,
) -> dict[str, Any]:
    from_send: list[float] = []
    from_response: list[float] = []
    last: list[float] = []
    # From the commit: to every receipt, and to the last subscriber's.
    from_commit: list[float] = []
    last_from_commit: list[float] = []
    missing = 0
    wrong = 0
    for k in range(len(sends)):
        latest = None
        for sub in subs:
            if len(sub.receipts) <= k + 1:
                missing += 1
                continue
            at, payload = sub.receipts[k + 1]
            event = (payload or {}).get("data", {}).get("workflowRunStatusChanged") or {}
            if event.get("status") != expected[k]:
                wrong += 1
            from_send.append(at - sends[k])
            from_response.append(at - responses[k])
            if commits is not None:
                from_commit.append(at - commits[k])
            latest = at if latest is None else max(latest, at)
        if latest is not None:
            last.append(latest - sends[k])
            if commits is not None:
                last_from_commit.append(latest - commits[k])
    mutation = [r - s for s, r in zip(sends, responses, strict=True)]
    return {
        "receipts": len(from_send),
        "missing": missing,
        "out_of_order": wrong,
        "last_p50_ms": percentile(last, 50) * 1000,
        "last_p99_ms": percentile(last, 99) * 1000,
        "last_max_ms": max(last, default=float("nan")) * 1000,
        "all_p50_ms": percentile(from_send, 50) * 1000,
        "all_p99_ms": percentile(from_send, 99) * 1000,
        "all_max_ms": max(from_send, default=float("nan")) * 1000,
        "commit_last_p50_ms": percentile(last_from_commit, 50) * 1000,
        "commit_last_p99_ms": percentile(last_from_commit, 99) * 1000,
        "commit_all_p50_ms": percentile(from_commit, 50) * 1000,
        "resp_p50_ms": percentile(from_response, 50) * 1000,
        "resp_p99_ms": percentile(from_response, 99) * 1000,
        "mutation_p50_ms": percentile(mutation, 50) * 1000,
        "mutation_max_ms": max(mutation, default=float("nan")) * 1000,
    }


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and hard > soft:
        soft = hard if hard != resource.RLIM_INFINITY else needed
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


async def run_suite(args: argparse.Namespace, result: SuiteResult, config: Config) -> None:
    stamp = result.started.strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    async with postgres.scratch_database(args.admin_dsn, "subscribers") as dsn:
        conn = await connect(dsn)
        try:
            result.postgres = await machine.postgres(conn)
        finally:
            await conn.close()
        sizes = []
        for execution in config.executions:
            for n in config.sizes:
                sizes.append(await measure_size(dsn, n, execution, config, args, stamp))
    result.raw["sizes"] = sizes
    _tables(result, config, sizes)


def _ms(value: float) -> str:
    return "-" if value != value else (f"{value:.1f}" if value < 100 else f"{value:,.0f}")


def _gc_cells(stats: dict[str, Any] | None) -> list[str]:
    if not stats:
        return ["-", "-"]
    full = stats["2"]
    total = sum(g["seconds"] for g in stats.values())
    return [
        f"{full['collections']} / {full['seconds']:.1f} s / {full['max_s'] * 1000:,.0f} ms",
        f"{total:.1f} s",
    ]


def _gc_window_cell(window: dict[str, Any] | None) -> str:
    if not window:
        return "-"
    return f"{window['collections']} / {window['seconds']:.1f} s / {window['max_s'] * 1000:,.0f} ms"


def _tables(result: SuiteResult, config: Config, sizes: list[dict[str, Any]]) -> None:
    latency = Table(
        f"Delivery latency, ms from the mutation's send ({config.events} status changes "
        f"{config.spacing * 1000:.0f} ms apart)",
        [
            "execution",
            "N",
            "last sub p50",
            "last sub p99",
            "last sub max",
            "all p50",
            "all p99",
            "all max",
            "from response p50 / p99",
            "from commit: last sub p50 / p99, all p50",
            "missing",
            "mutation p50 / max",
            "server CPU",
            "client CPU",
            "server GC gen2 while delivering: n / total / max",
        ],
    )
    memory = Table(
        "Setup and memory",
        [
            "execution",
            "N",
            "connect+subscribe",
            "all live",
            "per-conn setup p50 / p99 ms",
            "failed",
            "RSS before",
            "RSS idle",
            "KiB per conn",
            "RSS peak",
            "server GC gen2: n / total / max pause",
            "all GC total",
        ],
    )
    for s in sizes:
        latency.add(
            s["execution"],
            f"{s['n']:,}",
            _ms(s["last_p50_ms"]),
            _ms(s["last_p99_ms"]),
            _ms(s["last_max_ms"]),
            _ms(s["all_p50_ms"]),
            _ms(s["all_p99_ms"]),
            _ms(s["all_max_ms"]),
            f"{_ms(s['resp_p50_ms'])} / {_ms(s['resp_p99_ms'])}",
            f"{_ms(s.get('commit_last_p50_ms', math.nan))} / "
            f"{_ms(s.get('commit_last_p99_ms', math.nan))}, "
            f"{_ms(s.get('commit_all_p50_ms', math.nan))}",
            f"{s['missing']:,}"
            + ("" if s["all_delivered"] else " (incomplete)")
            + (f"; {s['ended_early']:,} ended early" if s.get("ended_early") else ""),
            f"{_ms(s['mutation_p50_ms'])} / {_ms(s['mutation_max_ms'])}",
            f"{s['server_cpu_share']:.0%}",
            f"{s['client_cpu_share']:.0%}",
            _gc_window_cell(s.get("server_gc_delivery")),
        )
        memory.add(
            s["execution"],
            f"{s['n']:,}",
            f"{s['connected_s']:.1f} s",
            f"{s['live_s']:.1f} s" + ("" if s["live_all"] else " (not all)"),
            f"{_ms(s['setup_p50_ms'])} / {_ms(s['setup_p99_ms'])}",
            s["connect_failures"],
            f"{s['rss_before_kib'] / 1024:.1f} MiB",
            f"{s['rss_idle_kib'] / 1024:.1f} MiB",
            f"{s['kib_per_connection']:.1f}",
            f"{s['rss_peak_kib'] / 1024:.1f} MiB",
            *_gc_cells(s.get("server_gc")),
        )
    result.tables += [latency, memory]
    for s in sizes:
        for phase in ("setup", "deliver"):
            prof = s.get(f"profile_{phase}")
            if not prof or not prof["samples"]:
                continue
            table = Table(
                f"py-spy on the server, {s['execution']} execution, N={s['n']:,}, {phase} "
                f"phase ({prof['samples']} samples at 50 Hz): top functions",
                ["self %", "function (self)", "inclusive %", "function (inclusive)"],
            )
            for (own, own_share), (inc, inc_share) in zip(
                prof["self"], prof["inclusive"], strict=False
            ):
                table.add(f"{own_share:.1%}", f"`{own}`", f"{inc_share:.1%}", f"`{inc}`")
            result.tables.append(table)
    result.notes += [
        "`last sub` = per status change, the time until the last of the N subscribers received "
        "it; `all` = every receipt; both from the moment the mutation was sent (its HTTP "
        "POST), `from response` from when its response arrived (negative: the event arrived "
        "first). `from commit`: from the mutation's commit as PostgreSQL recorded it "
        "(pg_xact_commit_timestamp of its event row, track_commit_timestamp=on; '-' on a server "
        "without it), on the one wall clock of this machine. `missing` = receipts not seen "
        "before the deadline; `ended early` = subscriptions "
        "the server completed, failed or closed while they should have stayed open (details "
        "in the JSON: phase, events seen before).",
        "Server RSS from /proc/<pid>/status VmRSS: `before` with no socket open (after two "
        "mutations), `idle` with N subscribed sockets after the warm-up change reached all of "
        "them; KiB per conn = (idle - before) / N. `peak` = highest sample (every 100 ms) while "
        "the changes were delivered.",
        "Server GC: Python's cyclic garbage collector in the server process, timed with "
        "gc.callbacks (bench/gcprobe, loaded through PYTHONPATH; no service change): full "
        "(gen2) collections, their total and longest pause, and the total of all generations "
        "over the server's whole life for that size. A collection stops the event loop. The "
        "load generator runs with its own cyclic GC disabled for each size (its pauses would "
        "otherwise count as latency).",
        "`+ gc.freeze` (--server-gc freeze): once all N were live, the benchmark made the server "
        "call gc.freeze() (SIGUSR1 through bench/gcprobe), so later full collections skip the "
        "long-lived heap: an experiment the service does not do by itself.",
        "`all live` = from the first connect until the warm-up change reached all N (every "
        "subscription registered and caught up). `server CPU` / `client CPU` = each process's "
        "CPU time over the delivery phase's wall time (100% = one core busy).",
        "`shared` = the server's shared execution (one graphql execution per event and query "
        "shape, WORKFLOW_RUNS_SHARED_SUBSCRIPTIONS=true); `per-subscriber` = Strawberry's own "
        "(each event executed and serialised once per subscriber, =false).",
    ]


def main(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.sizes:
        config = Config(
            tuple(int(x) for x in args.sizes.split(",")),
            config.events,
            config.spacing,
            config.batch,
            config.deliver_timeout,
        )
    if args.events:
        config = Config(
            config.sizes, args.events, config.spacing, config.batch, config.deliver_timeout
        )
    if args.spacing:
        config = Config(
            config.sizes, config.events, args.spacing, config.batch, config.deliver_timeout
        )
    if args.execution != "both":
        config = Config(
            config.sizes,
            config.events,
            config.spacing,
            config.batch,
            config.deliver_timeout,
            (args.execution,),
        )
    if args.quick:
        args.py_spy = None
    limit = raise_fd_limit(max(config.sizes) + 200)
    if limit < max(config.sizes) + 200:
        raise SystemExit(
            f"the open-file limit ({limit}) is too low for {max(config.sizes)} sockets"
        )
    result = SuiteResult("subscribers", TITLE, args.quick, machine.describe(), {})
    result.raw["config"] = vars(config)
    result.raw["pinned"] = pin_load_generator()
    result.raw["profiled_with"] = args.py_spy
    # Commit timestamps: the latency from each mutation's commit, read back afterwards.
    with postgres.admin_dsn(args.dsn, {"track_commit_timestamp": "on"}) as admin:
        args.admin_dsn = admin
        asyncio.run(run_suite(args, result, config))
    result.notes.append(
        f"Server pinned to CPU 0 with taskset, load generator to CPU {result.raw['pinned']}; "
        "PostgreSQL not pinned. "
        + (
            f"py-spy (--nonblocking, 50 Hz, on the load generator's CPU) recorded the server "
            f"at N={args.profile_size or max(config.sizes):,}."
            if args.py_spy
            else "No profiler ran."
        )
    )
    result.raw["finished"] = datetime.now(UTC).isoformat()
    publish(result)
    return 0
