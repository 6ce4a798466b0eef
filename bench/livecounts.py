"""Suite `livecounts`: the server's cost per status change with 0, 100 and 1,000 subscribers
of `workflowRunStatusCountsChanged` (issue 10: "a benchmark in bench/ shows the cost per change
with 1,000 count subscribers").

For each N: a fresh `workflow-runs serve` (its own process, pinned to core 0) on one scratch
database seeded with runs; the writers' runs are created and started through the API (which
also warms the server up); N raw graphql-transport-ws connections from this process (pinned to
core 1), one count subscription each on one workspace, a quarter each of {no filter, a
subjectId filter} x {intervalMs 250, 1000}. Once every subscriber has its initial counts, the
server's idle CPU is read over a few seconds, then W concurrent writers drive K status
transitions (RUNNING -> WAITING -> RUNNING -> PAUSED -> RUNNING, round robin over their own
runs) through the HTTP API. After the writers stop, `workflowRunStatusCounts` is queried with
each filter; the suite waits until every subscriber's last message equals it (or a deadline),
then one more quiet period, and reads the server's CPU time (/proc/<pid>/stat) and its
statement counter (/metrics) again.

Reported per N: server CPU per change (and net of its idle rate), the marginal cost over the
0-subscriber baseline, per subscriber and change; statements per change; RSS. Per subscriber
class: messages received during the writes, gaps between consecutive messages shorter than the
interval (less a tolerance), whether the last message equals the query, and the time from the
last commit that could move its counts to its last message. No assertion on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import re
import statistics
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bench import machine, postgres
from bench.pinning import pin_load_generator
from bench.report import RESULTS, SuiteResult, Table, publish
from bench.server import Server
from bench.stats import median, percentile
from bench.subscribers import Api, raise_fd_limit, sample_rss, settled_rss
from bench.wsclient import Subscription, subscribe
from db.pool import connect
from server.auth import mint_token

TITLE = "livecounts: cost per change of live status-count subscribers"
WORKSPACE = "ws_counts"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
# The writers' runs alternate between two subjects; filtered subscribers watch the first.
SUBJECT_A = "wf_live_a"
SUBJECT_B = "wf_live_b"
FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    f"subjectId={SUBJECT_A}": {"subjectId": SUBJECT_A},
}
INTERVALS_MS = (250, 1000)
# Subscriber i belongs to CLASSES[i % 4].
CLASSES = tuple((f, iv) for iv in INTERVALS_MS for f in FILTERS)

SUBSCRIPTION = """
subscription Counts($ws: ID!, $filter: WorkflowRunFilter, $interval: Int) {
  workflowRunStatusCountsChanged(workspaceId: $ws, filter: $filter, intervalMs: $interval) {
    status count
  }
}
"""
COUNTS = """
query Counts($ws: ID!, $filter: WorkflowRunFilter) {
  workflowRunStatusCounts(workspaceId: $ws, filter: $filter) { status count }
}
"""
CREATE = """
mutation Create($ws: ID!, $subject: String!) {
  createWorkflowRun(input: {workspaceId: $ws, subjectId: $subject, triggeredBy: WORKFLOW}) { id }
}
"""
START = "mutation Start($id: ID!) { startWorkflowRun(id: $id) { status } }"
MARK_WAITING = "mutation Wait($id: ID!) { markWorkflowRunWaiting(id: $id) { status } }"
RESUME = "mutation Resume($id: ID!) { resumeWorkflowRun(id: $id) { status } }"
PAUSE = "mutation Pause($id: ID!) { pauseWorkflowRun(id: $id) { status } }"
# From RUNNING back to RUNNING: every step moves two counts.
CYCLE = (MARK_WAITING, RESUME, PAUSE, RESUME)


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]
    changes: int
    writers: int
    runs_per_writer: int
    seed_runs: int
    batch: int  # connections opened concurrently
    idle_s: float  # idle CPU measured over this long, with N subscribed
    settle_timeout: float  # after the last commit, for every last message to match
    tolerance: float  # a gap counts as too short below interval * (1 - tolerance)
    # Changes per second over all writers (0: each writer back to back). A fixed rate keeps
    # the write phase equally long at every N: the messages a subscriber is sent depend on
    # that time (one per interval at most), not on the number of changes.
    rate: float
    repeat: int  # runs of each N, interleaved (0, 100, 1000, 0, 100, ...); medians reported


FULL = Config(
    sizes=(0, 100, 1000),
    changes=2000,
    writers=8,
    runs_per_writer=8,
    seed_runs=10_000,
    batch=200,
    idle_s=3.0,
    settle_timeout=120.0,
    tolerance=0.1,
    rate=150.0,
    repeat=3,
)
QUICK = Config(
    sizes=(0, 40),
    changes=200,
    writers=4,
    runs_per_writer=4,
    seed_runs=1000,
    batch=100,
    idle_s=1.0,
    settle_timeout=15.0,
    tolerance=0.1,
    rate=100.0,
    repeat=1,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", help="comma-separated subscriber counts (default 0,100,1000)")
    parser.add_argument("--changes", type=int, help="status changes per size (default 2000)")
    parser.add_argument("--writers", type=int, help="concurrent writers (default 8)")
    parser.add_argument(
        "--rate",
        type=float,
        help="changes per second over all writers, 0 for back to back (default 150)",
    )
    parser.add_argument("--repeat", type=int, help="runs of each N (default 3)")


def _counts_of(payload: Any, field: str) -> dict[str, int] | None:
    """{status: count} of a payload's list, or None when it has none."""
    try:
        return {c["status"]: c["count"] for c in payload["data"][field]}
    except (KeyError, TypeError):
        return None


async def _query_counts(api: Api, flt: dict[str, Any] | None) -> dict[str, int]:
    data = await api.call(COUNTS, ws=WORKSPACE, filter=flt)
    return {c["status"]: c["count"] for c in data["workflowRunStatusCounts"]}


async def _statements(api: Api) -> float:
    """The server's count of statements sent to PostgreSQL (its /metrics)."""
    response = await api.http.get("/metrics")
    response.raise_for_status()
    found = re.search(r"^workflow_runs_db_queries(?:_total)? (\S+)$", response.text, re.M)
    return float(found.group(1)) if found else math.nan


async def _create_runs(api: Api, config: Config) -> list[list[tuple[str, str]]]:
    """Each writer's runs, created and started (RUNNING): (id, subject)."""

    async def one(k: int) -> tuple[str, str]:
        subject = SUBJECT_A if k % 2 == 0 else SUBJECT_B
        run_id = (await api.call(CREATE, ws=WORKSPACE, subject=subject))["createWorkflowRun"]["id"]
        await api.call(START, id=run_id)
        return run_id, subject

    owned = []
    for _ in range(config.writers):
        owned.append(list(await asyncio.gather(*(one(k) for k in range(config.runs_per_writer)))))
    return owned


async def _write(
    api: Api,
    runs: list[tuple[str, str]],
    count: int,
    log: list[tuple[float, str]],
    first: float,
    period: float,
) -> None:
    """`count` transitions, round robin over `runs`, each round one step of CYCLE, the k-th
    due at first + k * period (at once when late; period 0: back to back); logs each
    response's arrival and the run's subject."""
    for k in range(count):
        delay = first + k * period - time.perf_counter()
        if period and delay > 0:
            await asyncio.sleep(delay)
        run_id, subject = runs[k % len(runs)]
        await api.call(CYCLE[(k // len(runs)) % len(CYCLE)], id=run_id)
        log.append((time.perf_counter(), subject))


async def _open_all(
    server: Server, n: int, token: str, batch: int
) -> tuple[list[tuple[int, Subscription]], int]:
    """Open n count subscriptions, `batch` at a time: (class index, subscription), failures."""
    gate = asyncio.Semaphore(batch)
    failures = 0

    async def one(i: int) -> tuple[int, Subscription] | None:
        nonlocal failures
        kind = i % len(CLASSES)
        flt, interval = CLASSES[kind]
        variables = {"ws": WORKSPACE, "filter": FILTERS[flt], "interval": interval}
        async with gate:
            try:
                sub = await asyncio.wait_for(
                    subscribe(
                        "127.0.0.1", server.port, server.ws_url, token, SUBSCRIPTION, variables
                    ),
                    60,
                )
            except (OSError, TimeoutError, ConnectionError):
                failures += 1
                return None
            return kind, sub

    opened = await asyncio.gather(*(one(i) for i in range(n)))
    return [s for s in opened if s is not None], failures


def _ended(sub: Subscription) -> bool:
    return sub.ended_at is not None or sub.lost_at is not None


def _last_counts(sub: Subscription) -> dict[str, int] | None:
    if not sub.receipts:
        return None
    return _counts_of(sub.receipts[-1][1], "workflowRunStatusCountsChanged")


async def _wait_until(check: Any, deadline: float) -> bool:
    while time.perf_counter() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return bool(check())


async def measure_size(
    dsn: str, n: int, config: Config, stamp: str, rep: int = 0
) -> dict[str, Any]:
    token = mint_token(
        SECRET, user="bench", workspaces=[WORKSPACE], scopes=["runs:read", "runs:write"]
    )
    server = Server(dsn, SECRET, RESULTS / f"livecounts-{stamp}-server-{n}-{rep}.log")
    server.start()
    api = Api(server.base_url, token)
    subs: list[tuple[int, Subscription]] = []
    out: dict[str, Any] = {"n": n, "rep": rep}
    # The load generator's own cyclic GC would pause it and skew the arrival times.
    gc.collect()
    gc.disable()
    try:
        # Warm-up: the writers' runs, created and started through the API.
        owned = await _create_runs(api, config)
        rss_before = await settled_rss(server)

        began = time.perf_counter()
        cpu0 = server.cpu_seconds()
        subs, failures = await _open_all(server, n, token, config.batch)
        live_all = await _wait_until(
            lambda: all(s.receipts or _ended(s) for _, s in subs), time.perf_counter() + 300
        )
        live_all = live_all and all(s.receipts for _, s in subs)
        out.update(
            subscribed=len(subs),
            connect_failures=failures,
            live_all=live_all,
            live_s=time.perf_counter() - began,
            setup_server_cpu_s=server.cpu_seconds() - cpu0,
        )
        print(
            f"N={n}: {len(subs)} subscribed ({failures} failed), all with their initial counts "
            f"after {out['live_s']:.1f} s",
            flush=True,
        )
        rss_idle = await settled_rss(server)
        cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(config.idle_s)
        idle_rate = (server.cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
        initial = [len(s.receipts) for _, s in subs]

        # The writes.
        peak = [rss_idle]
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(server, peak, stop))
        statements0 = await _statements(api)
        share, extra = divmod(config.changes, config.writers)
        logs: list[list[tuple[float, str]]] = [[] for _ in range(config.writers)]
        period = config.writers / config.rate if config.rate else 0.0
        cpu0, client0, wall0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
        await asyncio.gather(
            *(
                _write(
                    api,
                    owned[w],
                    share + (1 if w < extra else 0),
                    logs[w],
                    wall0 + (w / config.rate if config.rate else 0.0),
                    period,
                )
                for w in range(config.writers)
            )
        )
        writes_s = time.perf_counter() - wall0
        commits = sorted(entry for log in logs for entry in log)
        last_commit = {None: commits[-1][0]}
        for at, subject in commits:
            last_commit[subject] = at
        expected = {name: await _query_counts(api, flt) for name, flt in FILTERS.items()}

        def matched() -> bool:
            return all(
                _ended(s) or _last_counts(s) == expected[CLASSES[kind][0]] for kind, s in subs
            )

        settled = await _wait_until(matched, time.perf_counter() + config.settle_timeout)
        settle_s = time.perf_counter() - commits[-1][0]
        settled_counts = [len(s.receipts) for _, s in subs]
        received = sum(len(s.receipts) for _, s in subs) - sum(initial)
        # One more quiet period: nothing further should arrive.
        await asyncio.sleep(max(INTERVALS_MS) / 1000 + 0.5)
        window = time.perf_counter() - wall0
        server_cpu = server.cpu_seconds() - cpu0
        client_cpu = time.process_time() - client0
        statements = await _statements(api) - statements0
        stop.set()
        await sampler
        out.update(
            changes=len(commits),
            writes_s=writes_s,
            window_s=window,
            settled=settled,
            settle_s=settle_s,
            server_cpu_s=server_cpu,
            idle_cpu_share=idle_rate,
            server_cpu_net_s=server_cpu - idle_rate * window,
            client_cpu_share=client_cpu / window,
            statements=statements,
            messages=received,
            rss_before_kib=rss_before,
            rss_idle_kib=rss_idle,
            rss_peak_kib=peak[0],
            kib_per_subscriber=(rss_idle - rss_before) / max(1, len(subs)),
            late_messages=sum(
                len(s.receipts) - c for (_, s), c in zip(subs, settled_counts, strict=True)
            ),
            ended_early=sum(1 for _, s in subs if _ended(s)),
            problems=sorted({p for _, s in subs for p in s.problems})[:10],
            expected=expected,
        )
        out["classes"] = _classes(subs, initial, expected, last_commit, wall0, config)
        log_text = server.log_tail(2_000_000)
        out["server_log"] = {
            "tracebacks": log_text.count("Traceback"),
            # JSON lines ({"level":"error",...}), or uvicorn's plain ones before logging is set.
            "errors": len(re.findall(r'"level":\s*"(?:error|critical)"|^ERROR', log_text, re.M)),
            "warnings": len(re.findall(r'"level":\s*"warning"|^WARNING', log_text, re.M)),
        }
        print(
            f"N={n}: {len(commits)} changes in {writes_s:.1f} s; server CPU "
            f"{server_cpu / len(commits) * 1000:.2f} ms per change (idle {idle_rate:.1%}); "
            f"{statements / len(commits):.2f} statements per change; "
            f"settled {settle_s:.2f} s after the last commit" + ("" if settled else " (NOT ALL)"),
            flush=True,
        )
    finally:
        for _, sub in subs:
            sub.abort()
        await api.aclose()
        await asyncio.sleep(0.5)
        server.stop()
        gc.enable()
    return out


def _classes(
    subs: list[tuple[int, Subscription]],
    initial: list[int],
    expected: dict[str, dict[str, int]],
    last_commit: dict[str | None, float],
    writes_began: float,
    config: Config,
) -> list[dict[str, Any]]:
    """Per subscriber class, one run's raw numbers: messages, gaps, final equality, latency."""
    rows = []
    for kind, (flt, interval_ms) in enumerate(CLASSES):
        members = [(s, c) for (k, s), c in zip(subs, initial, strict=True) if k == kind]
        if not members:
            continue
        interval = interval_ms / 1000
        floor = interval * (1 - config.tolerance)
        # The last commit that could move this class's counts.
        subject = FILTERS[flt]["subjectId"] if FILTERS[flt] else None
        reference = last_commit.get(subject, last_commit[None])
        messages, latencies, gaps, short, equal, repeats, initial_ok = [], [], 0, 0, 0, 0, 0
        min_gap = math.inf
        for sub, before in members:
            times = [t for t, _ in sub.receipts]
            messages.append(len(times) - before)
            for a, b in itertools.pairwise(times):
                gaps += 1
                short += b - a < floor
                min_gap = min(min_gap, b - a)
            payloads = [_counts_of(p, "workflowRunStatusCountsChanged") for _, p in sub.receipts]
            repeats += sum(1 for a, b in itertools.pairwise(payloads) if a == b)
            initial_ok += bool(payloads) and payloads[0] is not None and len(payloads[0]) == 8
            if payloads and payloads[-1] == expected[flt]:
                equal += 1
            if len(times) > before:
                latencies.append(times[-1] - reference)
        rows.append(
            {
                "filter": flt,
                "interval_ms": interval_ms,
                "subscribers": len(members),
                "initial_ok": initial_ok,
                "messages": messages,
                "bound": math.ceil((reference - writes_began) / interval) + 1,
                "gaps": gaps,
                "short_gaps": short,
                "min_gap_s": min_gap if gaps else math.nan,
                "repeated_payloads": repeats,
                "final_equal": equal,
                "latencies_s": latencies,
            }
        )
    return rows


def _merge_classes(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per subscriber class over every repetition of one N."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for run in runs:
        for c in run.get("classes", []):
            key = (c["filter"], c["interval_ms"])
            m = merged.setdefault(
                key,
                {
                    "filter": c["filter"],
                    "interval_ms": c["interval_ms"],
                    "subscribers": 0,
                    "initial_ok": 0,
                    "messages": [],
                    "bounds": [],
                    "gaps": 0,
                    "short_gaps": 0,
                    "min_gap_s": math.inf,
                    "repeated_payloads": 0,
                    "final_equal": 0,
                    "latencies_s": [],
                },
            )
            for name in (
                "subscribers",
                "initial_ok",
                "gaps",
                "short_gaps",
                "repeated_payloads",
                "final_equal",
            ):
                m[name] += c[name]
            m["messages"] += c["messages"]
            m["latencies_s"] += c["latencies_s"]
            m["bounds"].append(c["bound"])
            if c["min_gap_s"] == c["min_gap_s"]:
                m["min_gap_s"] = min(m["min_gap_s"], c["min_gap_s"])
    return list(merged.values())


async def run_suite(args: argparse.Namespace, result: SuiteResult, config: Config) -> None:
    stamp = result.started.strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    async with postgres.scratch_database(args.admin_dsn, "livecounts") as dsn:
        conn = await connect(dsn)
        try:
            result.postgres = await machine.postgres(conn)
            await postgres.seed_runs(conn, WORKSPACE, config.seed_runs)
        finally:
            await conn.close()
        sizes = [
            await measure_size(dsn, n, config, stamp, rep)
            for rep in range(config.repeat)
            for n in config.sizes
        ]
    result.raw["sizes"] = sizes
    _tables(result, config, sizes)


def _ms(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"


def _by_size(sizes: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Every repetition's raw result, grouped by N in the order the sizes were given."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for s in sizes:
        grouped.setdefault(s["n"], []).append(s)
    return grouped


def _per_change(runs: list[dict[str, Any]], key: str) -> float:
    """Median over repetitions of runs[i][key] / changes, in ms."""
    return median([r[key] / r["changes"] * 1000 for r in runs])


def _problems(runs: list[dict[str, Any]]) -> str:
    problems = []
    for name, label in (
        ("connect_failures", "failed to connect"),
        ("ended_early", "ended early"),
        ("late_messages", "messages after settling"),
    ):
        total = sum(r.get(name, 0) for r in runs)
        if total:
            problems.append(f"{total} {label}")
    if not all(r.get("live_all", True) for r in runs):
        problems.append("not all got initial counts")
    tracebacks = sum((r.get("server_log") or {}).get("tracebacks", 0) for r in runs)
    errors = sum((r.get("server_log") or {}).get("errors", 0) for r in runs)
    if tracebacks or errors:
        problems.append(f"server log: {tracebacks} tracebacks, {errors} errors")
    return "; ".join(problems) or "none"


def _class_summary(c: dict[str, Any]) -> dict[str, Any]:
    """A merged class row's figures as the table shows them."""
    messages, latencies = c["messages"], sorted(c["latencies_s"])
    return {
        "messages_mean": statistics.fmean(messages) if messages else math.nan,
        "messages_min": min(messages, default=0),
        "messages_max": max(messages, default=0),
        "messages_bound": (
            f"{min(c['bounds'])}-{max(c['bounds'])}"
            if min(c["bounds"]) != max(c["bounds"])
            else str(c["bounds"][0])
        ),
        "min_gap_ms": c["min_gap_s"] * 1000,
        "latency_p50_ms": percentile(latencies, 50) * 1000,
        "latency_p99_ms": percentile(latencies, 99) * 1000,
        "latency_max_ms": latencies[-1] * 1000 if latencies else math.nan,
    }


def _tables(result: SuiteResult, config: Config, sizes: list[dict[str, Any]]) -> None:
    grouped = _by_size(sizes)
    base = grouped.get(0)
    base_net = _per_change(base, "server_cpu_net_s") if base else math.nan
    reps = max(len(runs) for runs in grouped.values())
    cost = Table(
        f"Server cost per status change ({config.changes:,} transitions from "
        f"{config.writers} concurrent writers at {config.rate:,.0f}/s; median of {reps} "
        "runs of each N)",
        [
            "N",
            "writes",
            "changes/s",
            "server CPU per change ms (net of idle)",
            "marginal over N=0 ms",
            "µs per subscriber per change",
            "statements per change",
            "idle CPU",
            "client CPU",
            "RSS before / idle / peak MiB",
            "KiB per subscriber",
            "settled after last commit",
            "problems",
        ],
    )
    for n, runs in grouped.items():
        writes = median([r["writes_s"] for r in runs])
        net = _per_change(runs, "server_cpu_net_s")
        marginal, per_sub = "-", "-"
        if base is not None and n > 0:
            marginal = _ms(net - base_net, 2)
            per_sub = _ms((net - base_net) * 1000 / n, 2)
        settled = all(r["settled"] for r in runs)
        cost.add(
            f"{n:,}",
            f"{writes:.1f} s",
            f"{median([r['changes'] / r['writes_s'] for r in runs]):,.0f}",
            f"{_per_change(runs, 'server_cpu_s'):.2f} ({net:.2f})",
            marginal,
            per_sub,
            _ms(median([r["statements"] / r["changes"] for r in runs]), 2),
            f"{median([r['idle_cpu_share'] for r in runs]):.1%}",
            f"{median([r['client_cpu_share'] for r in runs]):.0%}",
            " / ".join(
                f"{median([r[k] for r in runs]) / 1024:.1f}"
                for k in ("rss_before_kib", "rss_idle_kib", "rss_peak_kib")
            ),
            "-" if n == 0 else f"{median([r['kib_per_subscriber'] for r in runs]):.1f}",
            "-"
            if n == 0
            else f"{median([r['settle_s'] for r in runs]):.2f} s" + ("" if settled else " (NOT)"),
            _problems(runs),
        )
    result.tables.append(cost)
    classes = Table(
        "Per subscriber class: messages during the writes, interval check, final equality, "
        "latency of the last message",
        [
            "N",
            "filter",
            "intervalMs",
            "subscribers",
            "messages per sub mean (min-max)",
            "bound",
            f"gaps < {1 - config.tolerance:.0%} of interval",
            "shortest gap ms",
            "last == workflowRunStatusCounts",
            "last commit -> last message p50 / p99 / max ms",
        ],
    )
    for n, runs in grouped.items():
        for merged in _merge_classes(runs):
            c = {**merged, **_class_summary(merged)}
            classes.add(
                f"{n:,}",
                c["filter"],
                c["interval_ms"],
                c["subscribers"],
                f"{c['messages_mean']:.1f} ({c['messages_min']}-{c['messages_max']})",
                c["messages_bound"],
                f"{c['short_gaps']} of {c['gaps']}",
                _ms(c["min_gap_ms"], 0),
                f"{c['final_equal']} of {c['subscribers']}",
                f"{_ms(c['latency_p50_ms'], 0)} / {_ms(c['latency_p99_ms'], 0)} / "
                f"{_ms(c['latency_max_ms'], 0)}",
            )
    if classes.rows:
        result.tables.append(classes)
    result.notes += [
        f"Each N on a fresh server over one scratch database seeded with {config.seed_runs:,} "
        f"runs in the workspace; {config.writers} writers x {config.runs_per_writer} runs "
        "created and started through the API first (also the warm-up). Transitions cycle "
        "RUNNING -> WAITING -> RUNNING -> PAUSED -> RUNNING, each moving two counts; the runs "
        f"alternate between subjects {SUBJECT_A} and {SUBJECT_B}. Subscribers: a quarter each "
        f"of filter none / subjectId={SUBJECT_A} x intervalMs "
        + " / ".join(str(i) for i in INTERVALS_MS)
        + ", all on one workspace, all subscribed before the writes.",
        "`server CPU per change` = the server process's user+system CPU (/proc/<pid>/stat) from "
        "the first write until every subscriber's last message matched and one more quiet "
        f"period ({max(INTERVALS_MS) / 1000 + 0.5:.1f} s) passed, divided by the changes; "
        "`net of idle` subtracts the server's idle CPU rate (measured over "
        f"{config.idle_s:.0f} s with the N subscribed, before the writes) times that window. "
        "`marginal over N=0` = the net per-change difference to the 0-subscriber baseline; "
        "`µs per subscriber per change` = that / N. PostgreSQL's CPU is not included (not "
        "pinned); `statements per change` = the server's own statement counter (/metrics "
        "workflow_runs_db_queries) over the same window: a query per subscriber per change "
        "would show as ~N.",
        "`messages` = messages a subscriber received after its initial counts; `bound` = "
        "the most the rate limit allows in that time, ceil((last relevant commit - first write) "
        f"/ interval) + 1. A `gap` is the time between two consecutive messages of one "
        f"subscriber, as they arrived here; `< {1 - config.tolerance:.0%} of interval` counts "
        "those shorter than the interval less the tolerance (more than one message per "
        "interval). `last == workflowRunStatusCounts`: the subscriber's last message against "
        "the query with the same filter, sent once the writers stopped. `last commit -> last "
        "message`: from the arrival here of the response to the last mutation that could move "
        "the class's counts (for the subjectId filter: the last on a run of that subject) to "
        "the subscriber's last message; the rate limit alone can add up to one interval. It is "
        "negative when the last commits left the counts as already sent (one run paused and "
        "another resumed within one interval): no newer message was due.",
    ]


def main(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.sizes:
        config = replace(config, sizes=tuple(int(x) for x in args.sizes.split(",")))
    # A rate of 0 means back to back; the counts must be positive.
    given = {"changes": args.changes, "writers": args.writers, "repeat": args.repeat}
    config = replace(config, **{k: v for k, v in given.items() if v})
    if args.rate is not None:
        config = replace(config, rate=args.rate)
    limit = raise_fd_limit(max(config.sizes) + 200)
    if limit < max(config.sizes) + 200:
        raise SystemExit(
            f"the open-file limit ({limit}) is too low for {max(config.sizes)} sockets"
        )
    result = SuiteResult("livecounts", TITLE, args.quick, machine.describe(), {})
    result.raw["config"] = asdict(config)
    result.raw["pinned"] = pin_load_generator()
    with postgres.admin_dsn(args.dsn) as admin:
        args.admin_dsn = admin
        asyncio.run(run_suite(args, result, config))
    result.notes.append(
        f"Server pinned to CPU 0 with taskset, load generator (subscribers and writers) to CPU "
        f"{result.raw['pinned']}; PostgreSQL not pinned."
    )
    result.raw["finished"] = datetime.now(UTC).isoformat()
    publish(result)
    return 0
