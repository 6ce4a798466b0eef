"""Reading runs: by id, in keyset-paginated lists, counted, and in batches for loaders.

Every statement filters by workspace. Dynamic filters are composed from the fixed fragments
below; user values only ever travel as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from db.errors import translated
from db.records import RUN_COLUMNS, Run, RunMode, RunOrder, RunStatus, RunTrigger
from db.runjson import Params, RunJson, RunJsonRow, json_expression

COLUMNS = ", ".join(RUN_COLUMNS)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs of a workspace a list or count covers; None means "any"."""

    statuses: frozenset[RunStatus] | None = None
    subject_id: str | None = None
    parent_run_id: str | None = None
    root_only: bool | None = None
    triggered_by: frozenset[RunTrigger] | None = None
    mode: RunMode | None = None
    user_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def matches_nothing(self) -> bool:
        """An empty status or trigger list matches no run."""
        return self.statuses == frozenset() or self.triggered_by == frozenset()

    def matches(self, run: Run) -> bool:
        """Whether `run` is one the filter selects: the SQL of `_filter_conditions`, in Python."""
        return (
            (self.statuses is None or run.status in self.statuses)
            and (self.subject_id is None or run.subject_id == self.subject_id)
            and (self.parent_run_id is None or run.parent_run_id == self.parent_run_id)
            and (self.root_only is None or (run.parent_run_id is None) == self.root_only)
            and (self.triggered_by is None or run.triggered_by in self.triggered_by)
            and (self.mode is None or run.mode == self.mode)
            and (self.user_id is None or run.user_id == self.user_id)
            and (self.created_after is None or run.created_at > self.created_after)
            and (self.created_before is None or run.created_at < self.created_before)
        )


@dataclass(frozen=True, slots=True)
class Keyset:
    """A position in a run list: the sort key and id of one run. As a bound it excludes that
    run, unless `inclusive`."""

    value: datetime
    id: str
    inclusive: bool = False


def _filter_conditions(flt: RunFilter, params: Params) -> list[str]:
    """The WHERE fragments of a filter, status excepted (callers place it themselves)."""
    conds = []
    if flt.subject_id is not None:
        conds.append(f"subject_id = {params.add(flt.subject_id)}")
    if flt.parent_run_id is not None:
        conds.append(f"parent_run_id = {params.add(flt.parent_run_id)}")
    if flt.root_only is True:
        conds.append("parent_run_id IS NULL")
    elif flt.root_only is False:
        conds.append("parent_run_id IS NOT NULL")
    if flt.triggered_by is not None and flt.triggered_by != frozenset(RunTrigger):
        values = sorted(t.value for t in flt.triggered_by)
        conds.append(f"triggered_by = ANY({params.add(values)}::text[])")
    if flt.mode is not None:
        conds.append(f"mode = {params.add(flt.mode.value)}")
    if flt.user_id is not None:
        conds.append(f"user_id = {params.add(flt.user_id)}")
    if flt.created_after is not None:
        conds.append(f"created_at > {params.add(flt.created_after)}")
    if flt.created_before is not None:
        conds.append(f"created_at < {params.add(flt.created_before)}")
    return conds


def _narrowing_statuses(flt: RunFilter) -> list[RunStatus] | None:
    """The statuses to scan one by one, or None when the filter does not narrow by status."""
    if flt.statuses is None or flt.statuses == frozenset(RunStatus):
        return None
    return sorted(flt.statuses)


def list_runs_sql(
    workspace_id: str,
    flt: RunFilter,
    order: RunOrder,
    *,
    limit: int,
    after: Keyset | None = None,
    before: Keyset | None = None,
    backward: bool = False,
) -> tuple[str, list[Any]]:
    """The statement for one page: `limit` runs strictly between `after` and `before` in
    `order`, read from the `after` end, or from the `before` end when `backward`.

    With a status filter, each status gets its own ordered index scan on
    (workspace_id, status, key, id), each stopping at `limit`, merged and cut to `limit`:
    the cost is the same on page 1 and page 2,000, for a rare status as for a common one.
    A single `status = ANY(...)` scan would read and sort every matching row instead.
    """
    params = Params()
    descending = order.descending != backward
    direction = "DESC" if descending else "ASC"
    key = order.column
    conds = [f"workspace_id = {params.add(workspace_id)}", *_filter_conditions(flt, params)]
    # "after" in list order is "below" for a descending list; "before" is the other side.
    for bound, below in ((after, order.descending), (before, not order.descending)):
        if bound is not None:
            comparison = ("<" if below else ">") + ("=" if bound.inclusive else "")
            conds.append(
                f"({key}, id) {comparison} ({params.add(bound.value)}, {params.add(bound.id)})"
            )
    order_by = f"ORDER BY {key} {direction}, id {direction}"
    limit_param = params.add(limit)
    where = " AND ".join(conds)

    statuses = _narrowing_statuses(flt)
    if statuses is None:
        sql = f"SELECT {COLUMNS} FROM workflow_runs WHERE {where} {order_by} LIMIT {limit_param}"
        return sql, params.values
    branches = [
        f"(SELECT {COLUMNS} FROM workflow_runs WHERE {where} AND status = {params.add(s.value)} "
        f"{order_by} LIMIT {limit_param})"
        for s in statuses
    ]
    union = " UNION ALL ".join(branches)
    sql = f"SELECT {COLUMNS} FROM ({union}) AS page {order_by} LIMIT {limit_param}"
    return sql, params.values


@translated
async def list_runs(
    conn: asyncpg.Connection,
    workspace_id: str,
    flt: RunFilter,
    order: RunOrder,
    *,
    limit: int,
    after: Keyset | None = None,
    before: Keyset | None = None,
    backward: bool = False,
) -> tuple[list[Run], bool]:
    """Up to `limit` runs between the bounds, and whether more lie beyond them in the
    direction read. Backward pages come back in the list's own order.
    """
    if flt.matches_nothing():
        return [], False
    sql, params = list_runs_sql(
        workspace_id, flt, order, limit=limit + 1, after=after, before=before, backward=backward
    )
    rows = await conn.fetch(sql, *params)
    runs = [Run.from_row(r) for r in rows[:limit]]
    if backward:
        runs.reverse()
    return runs, len(rows) > limit


def _as_json(sql: str, order: RunOrder, descending: bool, selections: Sequence[RunJson]) -> str:
    # The page as it is, then, for its rows only, the JSON of each selection.
    direction = "DESC" if descending else "ASC"
    key = order.column
    texts = "".join(
        f", {json_expression(spec, 'page')} AS json_{index}"
        for index, spec in enumerate(selections)
    )
    return (
        f"SELECT page.id, page.workspace_id, page.created_at, page.updated_at{texts} "
        f"FROM ({sql}) AS page ORDER BY page.{key} {direction}, page.id {direction}"
    )


def _json_row(row: Any, keys: Sequence[object]) -> RunJsonRow:
    return RunJsonRow(
        id=row["id"],
        workspace_id=row["workspace_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        json={key: row[f"json_{index}"] for index, key in enumerate(keys)},
    )


@translated
async def list_runs_json(
    conn: asyncpg.Connection,
    workspace_id: str,
    flt: RunFilter,
    order: RunOrder,
    selections: Sequence[tuple[object, RunJson]],
    *,
    limit: int,
    after: Keyset | None = None,
    before: Keyset | None = None,
    backward: bool = False,
) -> tuple[list[RunJsonRow], bool]:
    """`list_runs`, with each run as the JSON text of each selection (by the caller's keys)."""
    if flt.matches_nothing():
        return [], False
    sql, values = list_runs_sql(
        workspace_id, flt, order, limit=limit + 1, after=after, before=before, backward=backward
    )
    descending = order.descending != backward
    sql = _as_json(sql, order, descending, [spec for _, spec in selections])
    rows = await conn.fetch(sql, *values)
    keys = [key for key, _ in selections]
    page = [_json_row(r, keys) for r in rows[:limit]]
    if backward:
        page.reverse()
    return page, len(rows) > limit


@translated
async def get_run_json(
    conn: asyncpg.Connection,
    workspaces: Iterable[str],
    run_id: str,
    selections: Sequence[tuple[object, RunJson]],
) -> RunJsonRow | None:
    """`get_run`, with the run as the JSON text of each selection."""
    texts = "".join(
        f", {json_expression(spec, 'r')} AS json_{index}"
        for index, (_, spec) in enumerate(selections)
    )
    sql = (
        f"SELECT r.id, r.workspace_id, r.created_at, r.updated_at{texts} FROM workflow_runs r "
        "WHERE r.workspace_id = ANY($1::text[]) AND r.id = $2"
    )
    row = await conn.fetchrow(sql, list(workspaces), run_id)
    return None if row is None else _json_row(row, [key for key, _ in selections])


@translated
async def count_runs(conn: asyncpg.Connection, workspace_id: str, flt: RunFilter) -> int:
    """How many runs of the workspace match the filter."""
    if flt.matches_nothing():
        return 0
    params = Params()
    conds = [f"workspace_id = {params.add(workspace_id)}", *_filter_conditions(flt, params)]
    statuses = _narrowing_statuses(flt)
    if statuses is not None:
        conds.append(f"status = ANY({params.add([s.value for s in statuses])}::text[])")
    sql = f"SELECT count(*) FROM workflow_runs WHERE {' AND '.join(conds)}"
    count: int = await conn.fetchval(sql, *params.values)
    return count


@translated
async def count_runs_by_status(
    conn: asyncpg.Connection, workspace_id: str, flt: RunFilter
) -> dict[RunStatus, int]:
    """How many runs of the workspace are in each status; every status listed, zeros included."""
    counts = dict.fromkeys(RunStatus, 0)
    if flt.matches_nothing():
        return counts
    params = Params()
    conds = [f"workspace_id = {params.add(workspace_id)}", *_filter_conditions(flt, params)]
    statuses = _narrowing_statuses(flt)
    if statuses is not None:
        conds.append(f"status = ANY({params.add([s.value for s in statuses])}::text[])")
    sql = f"SELECT status, count(*) FROM workflow_runs WHERE {' AND '.join(conds)} GROUP BY status"
    for row in await conn.fetch(sql, *params.values):
        counts[RunStatus(row["status"])] = row["count"]
    return counts


@translated
async def count_runs_at_position(
    conn: asyncpg.Connection, workspace_id: str, flt: RunFilter
) -> tuple[dict[RunStatus, int], int]:
    """Per-status counts and the stream position they are exact at.

    Call it in a REPEATABLE READ transaction: both reads then see one snapshot, in which the
    counts are those of every event up to the position and of none after it.
    """
    position: int = await conn.fetchval(
        "SELECT coalesce((SELECT last_seq FROM workflow_run_streams WHERE workspace_id = $1), 0)",
        workspace_id,
    )
    return await count_runs_by_status(conn, workspace_id, flt), position


_GET_RUN = f"""
SELECT {COLUMNS}
  FROM workflow_runs
 WHERE workspace_id = ANY($1::text[]) AND id = $2
"""


@translated
async def get_run(conn: asyncpg.Connection, workspaces: Iterable[str], run_id: str) -> Run | None:
    """The run with this id, if it belongs to one of `workspaces`."""
    row = await conn.fetchrow(_GET_RUN, list(workspaces), run_id)
    return None if row is None else Run.from_row(row)


_GET_RUNS = f"""
SELECT {COLUMNS}
  FROM workflow_runs
 WHERE (workspace_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


@translated
async def get_runs(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Run]:
    """Runs by (workspace_id, id), in one statement; missing keys are absent from the result."""
    rows = await conn.fetch(_GET_RUNS, [k[0] for k in keys], [k[1] for k in keys])
    return {(r["workspace_id"], r["id"]): Run.from_row(r) for r in rows}


@translated
async def list_children(
    conn: asyncpg.Connection,
    workspace_id: str,
    parent_ids: Sequence[str],
    statuses: frozenset[RunStatus] | None,
    *,
    limit: int,
    after: Keyset | None,
) -> dict[str, tuple[list[Run], bool]]:
    """One page of children, oldest first, for each parent, in one statement."""
    parent_ids = list(dict.fromkeys(parent_ids))
    result: dict[str, tuple[list[Run], bool]] = {p: ([], False) for p in parent_ids}
    if statuses == frozenset():
        return result
    params = Params()
    ws = params.add(workspace_id)
    parents = params.add(list(parent_ids))
    conds = [f"c.workspace_id = {ws}", "c.parent_run_id = p.id"]
    if statuses is not None and statuses != frozenset(RunStatus):
        conds.append(f"c.status = ANY({params.add(sorted(s.value for s in statuses))}::text[])")
    if after is not None:
        comparison = ">=" if after.inclusive else ">"
        conds.append(
            f"(c.created_at, c.id) {comparison} ({params.add(after.value)}, {params.add(after.id)})"
        )
    columns = ", ".join(f"c.{c}" for c in RUN_COLUMNS)
    sql = f"""
    SELECT page.*
      FROM unnest({parents}::text[]) AS p(id)
     CROSS JOIN LATERAL (
        SELECT {columns}
          FROM workflow_runs c
         WHERE {" AND ".join(conds)}
         ORDER BY c.created_at, c.id
         LIMIT {params.add(limit + 1)}
     ) AS page
    """
    grouped: dict[str, list[Run]] = {p: [] for p in parent_ids}
    for row in await conn.fetch(sql, *params.values):
        grouped[row["parent_run_id"]].append(Run.from_row(row))
    return {p: (runs[:limit], len(runs) > limit) for p, runs in grouped.items()}


@translated
async def count_children(
    conn: asyncpg.Connection,
    workspace_id: str,
    parent_ids: Sequence[str],
    statuses: frozenset[RunStatus] | None,
) -> dict[str, int]:
    """How many children each parent has (with one of `statuses`, if given)."""
    parent_ids = list(dict.fromkeys(parent_ids))
    counts = dict.fromkeys(parent_ids, 0)
    if statuses == frozenset():
        return counts
    params = Params()
    conds = [
        f"workspace_id = {params.add(workspace_id)}",
        f"parent_run_id = ANY({params.add(list(parent_ids))}::text[])",
    ]
    if statuses is not None and statuses != frozenset(RunStatus):
        conds.append(f"status = ANY({params.add(sorted(s.value for s in statuses))}::text[])")
    sql = (
        "SELECT parent_run_id, count(*) FROM workflow_runs "
        f"WHERE {' AND '.join(conds)} GROUP BY parent_run_id"
    )
    for row in await conn.fetch(sql, *params.values):
        counts[row["parent_run_id"]] = row["count"]
    return counts
