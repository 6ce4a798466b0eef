"""The ceiling of the side-by-side benchmark: no GraphQL library, one SQL statement per request.

A minimal Starlette + asyncpg endpoint. Each request names an operation and its parameters
(`{"op": "page", "workspaceId": ..., "statuses": [...]}`); PostgreSQL builds the whole response
body, in the shape the GraphQL API answers, and the endpoint returns those bytes as they come.
Its page statement is the service's own (`db.runs.list_runs_sql`), so both do the same database
work and the difference between them is what the GraphQL layer costs.

It connects as the table owner, so row-level security does not apply to it (the service runs
its queries as `workflow_runs_app`, under the policies).

Run: `python -m bench.ceiling --dsn DSN --port PORT`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db.records import RunOrder, RunStatus
from db.runs import RunFilter, list_runs_sql

# A run's 17 fields under the API's names; enums upper-case as GraphQL spells them.
_RUN = """json_build_object(
    'id', {r}.id, 'workspaceId', {r}.workspace_id, 'subjectId', {r}.subject_id,
    'parentRunId', {r}.parent_run_id, 'status', upper({r}.status), 'mode', upper({r}.mode),
    'input', {r}.input, 'output', {r}.output, 'error', {r}.error,
    'triggeredBy', upper({r}.triggered_by), 'cfWorkflowId', {r}.cf_workflow_id,
    'durationMs', {r}.duration_ms, 'userId', {r}.user_id, 'startedAt', {r}.started_at,
    'completedAt', {r}.completed_at, 'createdAt', {r}.created_at,
    'updatedAt', {r}.updated_at{extra})"""
_PARENT = (
    ", 'parent', (SELECT json_build_object('id', p.id, 'status', upper(p.status)) "
    "FROM workflow_runs p WHERE p.workspace_id = page.workspace_id AND p.id = page.parent_run_id)"
)
_BY_ID = f"""
SELECT json_build_object('data', json_build_object('workflowRun', (
    SELECT {_RUN.format(r="r", extra="")} FROM workflow_runs r
     WHERE r.workspace_id = $1 AND r.id = $2)))::text
"""


def page_sql(workspace_id: str, statuses: list[str], *, parents: bool) -> tuple[str, list[object]]:
    """One statement answering a page of 50, newest first, as the API's response body."""
    flt = RunFilter(statuses=frozenset(RunStatus(s) for s in statuses))
    inner, params = list_runs_sql(workspace_id, flt, RunOrder.CREATED_AT_DESC, limit=50)
    run = _RUN.format(r="page", extra=_PARENT if parents else "")
    sql = (
        "SELECT json_build_object('data', json_build_object('workflowRuns', json_build_object("
        f"'nodes', coalesce(json_agg({run} ORDER BY page.created_at DESC, page.id DESC), "
        f"'[]'::json))))::text FROM ({inner}) AS page"
    )
    return sql, params


def create_app(dsn: str) -> Starlette:
    """The ceiling endpoint on `dsn`, at POST /graphql."""
    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pools.append(await asyncpg.create_pool(dsn, min_size=10, max_size=10))
        try:
            yield
        finally:
            await pools[0].close()

    async def answer(request: Request) -> Response:
        body = orjson.loads(await request.body())
        op = body["op"]
        if op == "by_id":
            text = await pools[0].fetchval(_BY_ID, body["workspaceId"], body["id"])
        else:
            sql, params = page_sql(body["workspaceId"], body["statuses"], parents=op == "parents")
            text = await pools[0].fetchval(sql, *params)
        return Response(text, media_type="application/json")

    return Starlette(routes=[Route("/graphql", answer, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        create_app(args.dsn),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
