"""Suite `notify`: what NOTIFY costs the write path.

A NOTIFY queued in a transaction makes its commit take a cluster-wide lock (held through the
commit's WAL flush), so writers that notify commit one at a time. The service instead commits
first and then hints through `EventFanout.published`, which sends coalesced NOTIFYs on the
listener connection. This suite measures write throughput (create, start, complete: three
writes a run, each counted as one transition) of C concurrent clients, each with its own
one-connection pool, writing through the service's unit of work (`db.tenancy.scoped`: a
transaction as the row-level-security role, when the code under test has it), in modes:

- bare:          one autocommit statement per write (the service before row-level security);
- none:          (a) the service's unit of work, no notification at all;
- fanout:        (b) the service's design: after each commit, `EventFanout.published(...)` on
                 a running EventFanout;
- fanout-async:  (b') as (b), with the fan-out's listener connection at
                 synchronous_commit=off (an experiment: a lost hint only delays readers until
                 their next poll, so its commit need not wait for the WAL flush);
- txn+notify:    (c) `pg_notify(...)` inside each write's transaction.

Clients write either to their own workspaces (so they contend on nothing but NOTIFY's lock
and the WAL) or all to one workspace (they also queue on its stream head, which every write
locks until commit). A separate LISTEN connection stays open throughout, as a server
process's listener would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from bench import machine, postgres
from bench.pinning import pin_load_generator
from bench.report import SuiteResult, Table, publish
from bench.stats import median, percentile
from db.fanout import EventFanout
from db.lifecycle import Change, NewRun, Transition, create_run, transition_run
from db.listener import CHANNEL
from db.pool import connect, create_pool
from db.records import RunTrigger

TITLE = "notify: write throughput with and without NOTIFY"
MODES = ("bare", "none", "fanout", "fanout-async", "txn+notify")
LABELS = {
    "bare": "(0) bare autocommit statement",
    "none": "(a) unit of work, no notification",
    "fanout": "(b) (a) + fan-out NOTIFY after commit",
    "fanout-async": "(b') (b), listener synchronous_commit=off",
    "txn+notify": "(c) (a) + pg_notify in the transaction",
}

try:  # the service's unit of work since row-level security; absent in older code
    from db.tenancy import scoped as _scoped
except ImportError:  # pragma: no cover - older refs
    _scoped = None


@contextlib.asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool, workspace: str, *, transaction: bool
) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one write, as the service gets it (or a bare pooled connection)."""
    if _scoped is not None:
        async with _scoped(pool, [workspace]) as conn:
            yield conn
        return
    async with pool.acquire() as conn:
        if not transaction:
            yield conn
            return
        async with conn.transaction():
            yield conn


@dataclass(frozen=True)
class Config:
    clients: tuple[int, ...]
    layouts: tuple[str, ...]
    seconds: float  # measured time per mode, split over the rounds
    warmup: float  # per measurement, not counted
    rounds: int  # rounds alternate the mode order (ABCD, DCBA, ...) against drift


FULL = Config(clients=(8, 32), layouts=("own", "shared"), seconds=10.0, warmup=1.0, rounds=2)
QUICK = Config(clients=(8, 32), layouts=("own",), seconds=2.0, warmup=0.5, rounds=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, help="measured seconds per mode (default 10)")
    parser.add_argument(
        "--clients", help="comma-separated client counts (default 8,32)", default=None
    )


@dataclass
class Tally:
    ops: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


async def _write(conn: asyncpg.Connection, workspace: str, step: int, run_id: str | None) -> Change:
    if step == 0:
        new = NewRun(workspace_id=workspace, subject_id="wf_bench", triggered_by=RunTrigger.USER)
        return await create_run(conn, new, user_id="bench")
    assert run_id is not None
    transition = Transition.START if step == 1 else Transition.COMPLETE
    return await transition_run(conn, [workspace], run_id, transition)


async def _client(
    pool: asyncpg.Pool,
    workspace: str,
    mode: str,
    fanout: EventFanout | None,
    counted_from: float,
    until: float,
    tally: Tally,
) -> None:
    run_id: str | None = None
    step = 0
    while True:
        began = time.perf_counter()
        if began >= until:
            return
        try:
            if mode == "bare":
                async with pool.acquire() as conn:
                    change = await _write(conn, workspace, step, run_id)
            elif mode == "txn+notify":
                async with unit_of_work(pool, workspace, transaction=True) as conn:
                    change = await _write(conn, workspace, step, run_id)
                    hint = orjson.dumps({workspace: change.last_seq}).decode()
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, hint)
            else:
                async with unit_of_work(pool, workspace, transaction=False) as conn:
                    change = await _write(conn, workspace, step, run_id)
            if fanout is not None:
                assert change.last_seq is not None
                fanout.published(workspace, change.last_seq)
        except asyncpg.PostgresError:
            tally.errors += 1
            step, run_id = 0, None
            continue
        done = time.perf_counter()
        if counted_from <= done < until:
            tally.ops += 1
            tally.latencies.append(done - began)
        run_id = change.run.id
        step = (step + 1) % 3


async def _measure(
    dsn: str,
    pools: list[asyncpg.Pool],
    workspaces: list[str],
    mode: str,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    fanout: EventFanout | None = None
    pool: asyncpg.Pool | None = None
    sends = 0
    window = [float("inf"), float("inf")]
    if mode in ("fanout", "fanout-async"):
        pool = await create_pool(dsn, min_size=1, max_size=2)
        fanout = EventFanout(pool, dsn)
        listener = fanout.listener
        original_send = listener.send

        async def counting_send(hints: Any) -> bool:
            # Only the NOTIFYs of the measured window, like the commits they are compared with.
            nonlocal sends
            if window[0] <= time.perf_counter() < window[1]:
                sends += 1
            return await original_send(hints)

        listener.send = counting_send  # type: ignore[method-assign]
        await fanout.start()
        await asyncio.wait_for(listener.connected.wait(), 10)
        if mode == "fanout-async":
            async with listener._busy:
                assert listener._conn is not None
                await listener._conn.execute("SET synchronous_commit = off")
    try:
        async with pools[0].acquire() as conn:
            await conn.execute("CHECKPOINT")
        tallies = [Tally() for _ in pools]
        start = time.perf_counter()
        cpu = time.process_time()
        ticks = machine.cpu_ticks()
        counted_from, until = start + warmup, start + warmup + seconds
        window[:] = [counted_from, until]
        await asyncio.gather(
            *(
                _client(p, w, mode, fanout, counted_from, until, t)
                for p, w, t in zip(pools, workspaces, tallies, strict=True)
            )
        )
        wall = time.perf_counter() - start
        cpu_share = (time.process_time() - cpu) / wall
        busy, iowait = machine.cpu_busy_since(ticks)
    finally:
        if fanout is not None:
            await asyncio.sleep(0.2)  # let the last hints go out
            await fanout.stop()
        if pool is not None:
            await pool.close()
    latencies = [x for t in tallies for x in t.latencies]
    return {
        "ops": sum(t.ops for t in tallies),
        "errors": sum(t.errors for t in tallies),
        "seconds": seconds,
        "latencies": latencies,
        "notifies_sent": sends if fanout is not None else None,
        "client_cpu_share": cpu_share,
        "machine_busy": busy,
        "machine_iowait": iowait,
    }


async def run_suite(args: argparse.Namespace, result: SuiteResult, config: Config) -> None:
    async with postgres.scratch_database(args.admin_dsn, "notify") as dsn:
        listener = await connect(dsn, application_name="bench-listener")
        await listener.add_listener(CHANNEL, lambda *_: None)
        try:
            result.postgres = await machine.postgres(listener)
            table = Table(
                "Transitions/s (create, start, complete; each write counted), "
                f"{config.seconds:g} s per mode",
                [
                    "workspaces",
                    "clients",
                    "mode",
                    "transitions/s",
                    "vs (a)",
                    "p50 ms",
                    "p99 ms",
                    "NOTIFYs",
                    "client CPU",
                    "machine busy / iowait",
                ],
            )
            raw: list[dict[str, Any]] = []
            for layout in config.layouts:
                for clients in config.clients:
                    await _configuration(dsn, layout, clients, config, table, raw)
            result.tables.append(table)
            result.raw["measurements"] = raw
        finally:
            await listener.close()


async def _configuration(
    dsn: str, layout: str, clients: int, config: Config, table: Table, raw: list[dict[str, Any]]
) -> None:
    prefix = f"ws_{layout}_{clients}_{os.getpid()}"
    workspaces = [prefix if layout == "shared" else f"{prefix}_{i}" for i in range(clients)]
    pools = [
        await create_pool(dsn, min_size=1, max_size=1, application_name="bench-writer")
        for _ in range(clients)
    ]
    modes = MODES if _scoped is not None else tuple(m for m in MODES if m != "bare")
    try:
        totals = {m: {"ops": 0, "errors": 0, "seconds": 0.0, "latencies": []} for m in modes}
        extra: dict[str, dict[str, Any]] = {
            m: {"notifies_sent": 0, "cpu": [], "busy": [], "iowait": []} for m in modes
        }
        per_round = config.seconds / config.rounds
        for round_no in range(config.rounds):
            order = modes if round_no % 2 == 0 else tuple(reversed(modes))
            for mode in order:
                m = await _measure(dsn, pools, workspaces, mode, per_round, config.warmup)
                for key in ("ops", "errors", "seconds"):
                    totals[mode][key] += m[key]
                totals[mode]["latencies"] += m["latencies"]
                extra[mode]["notifies_sent"] += m["notifies_sent"] or 0
                extra[mode]["cpu"].append(m["client_cpu_share"])
                extra[mode]["busy"].append(m["machine_busy"])
                extra[mode]["iowait"].append(m["machine_iowait"])
                print(
                    f"{layout:6} {clients:3} clients {mode:11} round {round_no + 1}: "
                    f"{m['ops'] / m['seconds']:8.0f} transitions/s ({m['errors']} errors)",
                    flush=True,
                )
        base = totals["none"]["ops"] / totals["none"]["seconds"]
        for mode in modes:
            t = totals[mode]
            rate = t["ops"] / t["seconds"]
            lat = t["latencies"]
            sent = extra[mode]["notifies_sent"]
            table.add(
                "one shared" if layout == "shared" else "one per client",
                clients,
                LABELS[mode],
                f"{rate:,.0f}",
                f"{rate / base:.2f}x",
                f"{percentile(lat, 50) * 1000:.2f}",
                f"{percentile(lat, 99) * 1000:.2f}",
                f"{sent:,} for {t['ops']:,} commits" if mode.startswith("fanout") else "-",
                f"{max(extra[mode]['cpu']):.0%}",
                f"{median(extra[mode]['busy']):.0%} / {median(extra[mode]['iowait']):.0%}",
            )
            raw.append(
                {
                    "layout": layout,
                    "clients": clients,
                    "mode": mode,
                    "transitions_per_s": rate,
                    "ratio_vs_none": rate / base,
                    "ops": t["ops"],
                    "errors": t["errors"],
                    "seconds": t["seconds"],
                    "p50_ms": percentile(lat, 50) * 1000,
                    "p99_ms": percentile(lat, 99) * 1000,
                    "notifies_sent": sent if mode.startswith("fanout") else None,
                    "client_cpu_share": extra[mode]["cpu"],
                    "machine_busy": extra[mode]["busy"],
                    "machine_iowait": extra[mode]["iowait"],
                }
            )
    finally:
        for pool in pools:
            await pool.close()


def main(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.seconds:
        config = Config(config.clients, config.layouts, args.seconds, config.warmup, config.rounds)
    if args.clients:
        clients = tuple(int(c) for c in args.clients.split(","))
        config = Config(clients, config.layouts, config.seconds, config.warmup, config.rounds)
    result = SuiteResult("notify", TITLE, args.quick, machine.describe(), {})
    result.raw["config"] = vars(config)
    result.raw["pinned"] = pin_load_generator()
    with postgres.admin_dsn(args.dsn) as admin:
        args.admin_dsn = admin
        asyncio.run(run_suite(args, result, config))
    unit = (
        "db.tenancy.scoped: BEGIN, set_config(role, workspaces, statement_timeout), the write, "
        "COMMIT"
        if _scoped is not None
        else "a pooled connection, one autocommit statement"
    )
    result.notes += [
        "Each client (its own one-connection pool, like the service's) runs create -> start -> "
        f"complete on its own runs with db.lifecycle, each write in the service's unit of work "
        f"({unit}). Throughput counts writes that finished in the measured window, after "
        f"{config.warmup:g} s of warm-up per measurement; {config.rounds} round(s) per mode, "
        "alternating the mode order; CHECKPOINT before each measurement. `vs (a)` is the "
        "ratio to (a).",
        "(b) and (b') run a real EventFanout (pool + listener connection): `NOTIFYs` is how many "
        "coalesced pg_notify statements its send loop issued in the measured window. Each is "
        "its own transaction on the listener connection, with an xid, so its commit waits for "
        "a WAL flush unless synchronous_commit is off ((b'), set by the benchmark on that "
        "connection; the service does not do it).",
        f"The load generator runs pinned to CPU {result.raw['pinned']}; PostgreSQL is not "
        "pinned. `client CPU` is the load generator's CPU time over wall time (near 100% "
        "would mean the client limits the numbers); `machine busy / iowait` is the share of all "
        "CPUs busy and waiting on I/O during the measurement (from /proc/stat), other work on "
        "the machine included.",
    ]
    publish(result)
    return 0
