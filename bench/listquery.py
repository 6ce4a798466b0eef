"""Suite `listquery`: database time of one list page, from page 1 to page 2,000.

Seeds one workspace with 400,000 runs, then for pages 1, 10, 100, 1,000 and 2,000 (50 a page;
page N's keyset is found with one OFFSET query, used only to pick the cursor) runs
`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of the statement `db.runs.list_runs_sql` builds,
for several status sets and every orderBy, and of the naive single statement
(`status = ANY($2) ORDER BY key, id LIMIT 51`) that the design avoids.

asyncpg runs every statement as a named prepared statement, and PostgreSQL switches such a
statement to a generic plan after 5 executions when it does not look worse than the custom
ones (plan_cache_mode=auto). So each case is a SQL-level PREPARE, measured three ways:
forced custom plan, forced generic plan, and `auto` after 5 executions (what the service's
connection runs from then on); the tables say which plan `auto` chose.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from bench import machine, postgres
from bench.report import SuiteResult, Table, publish
from bench.stats import median
from db.pool import connect
from db.records import RUN_COLUMNS, RunOrder, RunStatus
from db.runs import Keyset, RunFilter, list_runs_sql

TITLE = "listquery: list page database time, page 1 to page 2,000"
WORKSPACE = "ws_bench"
PAGE_SIZE = 50
S = RunStatus
STATUS_SETS: tuple[tuple[str, frozenset[RunStatus] | None], ...] = (
    ("all", None),
    ("COMPLETED,FAILED", frozenset({S.COMPLETED, S.FAILED})),
    ("WAITING", frozenset({S.WAITING})),
    ("PAUSED,WAITING", frozenset({S.PAUSED, S.WAITING})),
)
COLUMNS = [
    "order",
    "status",
    "page",
    "plan",
    "exec ms",
    "planning ms",
    "hit/read",
    "rows",
    "custom ms",
    "generic ms",
    "shape (auto plan)",
]
_PARAM = re.compile(r"\$\d+")
_SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan")


@dataclass(frozen=True)
class Config:
    runs: int
    pages: tuple[int, ...]
    reps: int


FULL = Config(runs=400_000, pages=(1, 10, 100, 1000, 2000), reps=5)
QUICK = Config(runs=40_000, pages=(1, 10, 100), reps=2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="runs to seed (default 400,000; quick 40,000)")
    parser.add_argument(
        "--owner",
        action="store_true",
        help="measure as the table owner, without the service's row-level-security role",
    )
    parser.add_argument("--reps", type=int, help="EXPLAIN ANALYZE repetitions per plan mode")


# --- statements -----------------------------------------------------------------------------


def naive_sql(
    workspace_id: str, statuses: frozenset[RunStatus], order: RunOrder, after: Keyset | None
) -> tuple[str, list[Any]]:
    """The single statement the design avoids: one `status = ANY(...)` scan, sorted, cut."""
    direction = "DESC" if order.descending else "ASC"
    key = order.column
    params: list[Any] = [workspace_id, sorted(s.value for s in statuses)]
    conds = ["workspace_id = $1", "status = ANY($2::text[])"]
    if after is not None:
        comparison = "<" if order.descending else ">"
        params += [after.value, after.id]
        conds.append(f"({key}, id) {comparison} ($3, $4)")
    params.append(PAGE_SIZE + 1)
    sql = (
        f"SELECT {', '.join(RUN_COLUMNS)} FROM workflow_runs WHERE {' AND '.join(conds)} "
        f"ORDER BY {key} {direction}, id {direction} LIMIT ${len(params)}"
    )
    return sql, params


def _literal(value: Any) -> str:
    """A SQL literal for one of our own parameter values (EXECUTE takes expressions)."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"unexpected parameter {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::text[]"
    raise TypeError(f"unexpected parameter {value!r}")


# --- plans ----------------------------------------------------------------------------------


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def shape(plan: dict[str, Any]) -> str:
    """A compact plan signature: node types, index names, repeated children counted."""
    name = plan["Node Type"].replace(" Scan", "Scan").replace("Index", "Idx")
    if "Index Name" in plan:
        name += f"({plan['Index Name'].removeprefix('workflow_runs_')})"
    elif plan["Node Type"] == "Seq Scan":
        name += "(runs)"
    children = [shape(c) for c in plan.get("Plans", [])]
    if not children:
        return name
    runs: list[list[Any]] = []
    for child in children:
        if runs and runs[-1][0] == child:
            runs[-1][1] += 1
        else:
            runs.append([child, 1])
    parts = [child if n == 1 else f"{n}x {child}" for child, n in runs]
    return f"{name}>{parts[0]}" if len(parts) == 1 else f"{name}>[{', '.join(parts)}]"


def examined(plan: dict[str, Any]) -> int:
    """Rows the scans produced or filtered away (times loops): the work behind 51 rows."""
    total = 0.0
    for node in _nodes(plan):
        if node["Node Type"] in _SCANS:
            rows = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            rows += node.get("Rows Removed by Index Recheck", 0)
            total += rows * node.get("Actual Loops", 1)
    return int(total)


@dataclass
class Sample:
    exec_ms: float
    planning_ms: float
    hit: int
    read: int
    examined: int
    generic: bool
    shape: str


def _sample(raw: Any) -> Sample:
    doc = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    top = doc[0]
    plan = top["Plan"]
    return Sample(
        exec_ms=top["Execution Time"],
        planning_ms=top.get("Planning Time", 0.0),
        hit=plan.get("Shared Hit Blocks", 0),
        read=plan.get("Shared Read Blocks", 0),
        examined=examined(plan),
        generic=bool(_PARAM.search(orjson.dumps(plan).decode())),
        shape=shape(plan),
    )


@dataclass
class Measured:
    """One plan mode of one case: medians over the repetitions."""

    exec_ms: float
    planning_ms: float
    hit: float
    read: float
    examined: float
    generic: bool
    shape: str

    @classmethod
    def of(cls, samples: list[Sample]) -> Measured:
        return cls(
            exec_ms=median([s.exec_ms for s in samples]),
            planning_ms=median([s.planning_ms for s in samples]),
            hit=median([s.hit for s in samples]),
            read=median([s.read for s in samples]),
            examined=median([s.examined for s in samples]),
            generic=sum(s.generic for s in samples) * 2 > len(samples),
            shape=samples[len(samples) // 2].shape,
        )


async def measure(
    conn: asyncpg.Connection, sql: str, params: list[Any], reps: int
) -> dict[str, Measured]:
    """EXPLAIN ANALYZE of a prepared statement: forced custom, forced generic, and auto after
    5 executions (the plan the service's connection settles on)."""
    args = ", ".join(_literal(v) for v in params)
    explain = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE bench_page({args})"
    results: dict[str, Measured] = {}
    for mode in ("custom", "generic", "auto"):
        setting = "auto" if mode == "auto" else f"force_{mode}_plan"
        await conn.execute(f"SET plan_cache_mode = {setting}")
        await conn.execute(f"PREPARE bench_page AS {sql}")
        try:
            # Five executions: the custom plans `auto` compares the generic one with (and a
            # warm cache for the forced modes).
            for _ in range(5 if mode == "auto" else 1):
                await conn.execute(f"EXECUTE bench_page({args})")
            samples = [_sample(await conn.fetchval(explain)) for _ in range(reps)]
        finally:
            await conn.execute("DEALLOCATE bench_page")
        results[mode] = Measured.of(samples)
    await conn.execute("RESET plan_cache_mode")
    return results


# --- the suite ------------------------------------------------------------------------------


async def page_position(
    conn: asyncpg.Connection,
    statuses: frozenset[RunStatus] | None,
    order: RunOrder,
    page: int,
) -> Keyset | None:
    """The keyset that page `page` starts after (the last row of the page before it)."""
    if page == 1:
        return None
    direction = "DESC" if order.descending else "ASC"
    params: list[Any] = [WORKSPACE, (page - 1) * PAGE_SIZE - 1]
    cond = ""
    if statuses is not None:
        params.append(sorted(s.value for s in statuses))
        cond = " AND status = ANY($3::text[])"
    row = await conn.fetchrow(
        f"SELECT {order.column} AS value, id FROM workflow_runs WHERE workspace_id = $1{cond} "
        f"ORDER BY {order.column} {direction}, id {direction} OFFSET $2 LIMIT 1",
        *params,
    )
    assert row is not None, "page beyond the end"
    return Keyset(row["value"], row["id"])


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else (f"{value:.3f}" if value < 1 else f"{value:.1f}")


def _plan(m: Measured) -> str:
    return "generic" if m.generic else "custom"


async def run_suite(args: argparse.Namespace, result: SuiteResult, config: Config) -> None:
    async with postgres.scratch_database(args.admin_dsn, "listquery") as dsn:
        conn = await connect(dsn)
        try:
            result.postgres = await machine.postgres(conn)
            started = time.perf_counter()
            await postgres.seed_runs(conn, WORKSPACE, config.runs)
            seed_s = time.perf_counter() - started
            counts = {
                r["status"]: r["count"]
                for r in await conn.fetch(
                    "SELECT status, count(*) FROM workflow_runs GROUP BY status ORDER BY 2 DESC"
                )
            }
            size = await conn.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('workflow_runs'))"
            )
            print(f"seeded {config.runs:,} runs in {seed_s:.1f} s ({size} with indexes)")
            result.raw.update(seed_seconds=seed_s, status_counts=counts, table_size=size)
            result.raw["as_role"] = await _as_service(conn, owner=args.owner)
            await measure_all(conn, result, config, counts)
            result.notes.insert(
                0,
                f"Seeded {config.runs:,} runs in one workspace in {seed_s:.1f} s ({size} with "
                "indexes); status counts: "
                + ", ".join(f"{s} {n:,}" for s, n in counts.items())
                + ".",
            )
        finally:
            await conn.close()


APP_ROLE = "workflow_runs_app"


async def _as_service(conn: asyncpg.Connection, *, owner: bool) -> str:
    """Run the measurements as the service runs its queries: as its row-level-security role
    with the workspace named (when the schema has them). Returns who measures."""
    secured = await conn.fetchval(
        "SELECT relrowsecurity FROM pg_class WHERE oid = 'workflow_runs'::regclass"
    )
    role = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE)
    if owner or not secured or not role:
        return "owner"
    # The service sets these per transaction (db.tenancy); per session is the same to plans.
    await conn.execute(f"SET ROLE {APP_ROLE}")
    try:
        from db.tenancy import workspaces_setting
    except ImportError:  # --ref of a version before migration 0004, which read JSON
        setting = orjson.dumps([WORKSPACE]).decode()
    else:
        setting = workspaces_setting([WORKSPACE])
    await conn.execute("SELECT set_config('workflow_runs.workspaces', $1, false)", setting)
    return APP_ROLE


async def measure_all(
    conn: asyncpg.Connection, result: SuiteResult, config: Config, counts: dict[str, int]
) -> None:
    design = Table(
        "Service statement (db.runs.list_runs_sql, page size 50): "
        "EXPLAIN ANALYZE, median ms; `plan` is what plan_cache_mode=auto ran after 5 executions",
        COLUMNS,
    )
    naive = Table(
        "Naive single statement (status = ANY($2) ORDER BY key, id LIMIT 51), same cases",
        COLUMNS,
    )
    summary = Table(
        "Summary: exec ms of the plan the service runs (auto), first page vs deepest page",
        [
            "order",
            "status",
            "design p1",
            "design deepest",
            "naive p1",
            "naive deepest",
            "deepest page",
        ],
    )
    cases: list[dict[str, Any]] = []
    for order in RunOrder:
        for label, statuses in STATUS_SETS:
            matching = (
                sum(counts.values())
                if statuses is None
                else sum(counts.get(s.value, 0) for s in statuses)
            )
            last_page = max(1, math.ceil(matching / PAGE_SIZE))
            pages: list[tuple[int, str]] = []
            for page in config.pages:
                if page <= last_page:
                    pages.append((page, str(page)))
                elif not pages or pages[-1][0] != last_page:
                    pages.append((last_page, f"{last_page} (last)"))
            first: dict[str, Measured] = {}
            deepest: dict[str, Measured] = {}
            deepest_label = ""
            for page, page_label in pages:
                after = await page_position(conn, statuses, order, page)
                flt = RunFilter(statuses=statuses)
                sql, params = list_runs_sql(WORKSPACE, flt, order, limit=PAGE_SIZE + 1, after=after)
                case: dict[str, Any] = {
                    "order": order.name,
                    "status": label,
                    "page": page,
                    "matching_runs": matching,
                }
                variants = [("design", sql, params, design)]
                if statuses is not None:
                    nsql, nparams = naive_sql(WORKSPACE, statuses, order, after)
                    variants.append(("naive", nsql, nparams, naive))
                for name, vsql, vparams, table in variants:
                    m = await measure(conn, vsql, vparams, config.reps)
                    auto = m["auto"]
                    table.add(
                        order.name,
                        label,
                        page_label,
                        _plan(auto),
                        _ms(auto.exec_ms),
                        _ms(auto.planning_ms),
                        f"{auto.hit:.0f}/{auto.read:.0f}",
                        f"{auto.examined:,.0f}",
                        _ms(m["custom"].exec_ms),
                        _ms(m["generic"].exec_ms),
                        f"`{auto.shape}`",
                    )
                    case[name] = {mode: vars(v) for mode, v in m.items()}
                    if page == 1:
                        first[name] = auto
                    deepest[name] = auto
                    print(
                        f"{order.name:16} {label:17} page {page_label:>10} {name:6} "
                        f"auto={_plan(auto):7} {auto.exec_ms:9.3f} ms "
                        f"(custom {m['custom'].exec_ms:.3f}, generic {m['generic'].exec_ms:.3f}) "
                        f"hit/read {auto.hit:.0f}/{auto.read:.0f}",
                        flush=True,
                    )
                deepest_label = page_label
                cases.append(case)
            if statuses is None:
                naive_first = naive_deepest = "(same)"
            else:
                naive_first = _ms(first["naive"].exec_ms)
                naive_deepest = _ms(deepest["naive"].exec_ms)
            summary.add(
                order.name,
                label,
                _ms(first["design"].exec_ms),
                _ms(deepest["design"].exec_ms),
                naive_first,
                naive_deepest,
                deepest_label,
            )
    result.tables += [summary, design, naive]
    result.raw["cases"] = cases
    result.notes += [
        "exec ms = EXPLAIN ANALYZE `Execution Time` (median of the repetitions), planning ms = "
        "its `Planning Time` (a custom plan is planned on every execution), hit/read = "
        "shared buffers of the top plan node, rows = rows the scans "
        "returned or filtered away (times loops).",
        "Each case is a SQL-level PREPARE + EXPLAIN EXECUTE: `custom ms` forces a custom plan, "
        "`generic ms` a generic one; `plan`/`exec ms` are plan_cache_mode=auto after 5 "
        "executions of the same statement, which is what an asyncpg connection of the "
        "service runs from its 6th execution of that SQL text on.",
        "Measured as "
        + (
            f"the service runs its queries: role {APP_ROLE} with the workspace in "
            "workflow_runs.workspaces, so the row-level-security policy is part of every plan "
            "(--owner measures without it)."
            if result.raw.get("as_role") == APP_ROLE
            else "the table owner (no row-level security)."
        ),
        "With no status filter the service's statement is already the single ordered scan, "
        "so it has no naive twin. A status set with fewer pages than asked is measured on "
        "its last page instead.",
    ]


def main(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.runs:
        config = Config(args.runs, config.pages, config.reps)
    if args.reps:
        config = Config(config.runs, config.pages, args.reps)
    result = SuiteResult("listquery", TITLE, args.quick, machine.describe(), {})
    result.raw["config"] = vars(config)
    with postgres.admin_dsn(args.dsn) as admin:
        args.admin_dsn = admin
        asyncio.run(run_suite(args, result, config))
    publish(result)
    return 0
