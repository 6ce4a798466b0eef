"""Query roots: translate arguments, authorize, call the data layer."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from graphql import FieldNode

from db import events, runs
from db.records import Run, RunOrder, RunStatus
from db.runjson import RunJsonRow
from schema.compiled import Fragments, compile_connection, compile_run
from schema.context import READ, Context
from schema.cursors import encode_event_cursor
from schema.pagination import Page, page_request, run_list_page
from schema.types import (
    RunInfo,
    WorkflowRun,
    WorkflowRunConnection,
    WorkflowRunFilter,
    WorkflowRunStatusCount,
)
from schema.validation import check_text

# The resolvers' work, shared with whole operations planned in schema/plans.py.


async def find_run(
    ctx: Context, id: str, nodes: Sequence[FieldNode], fragments: Fragments
) -> Run | RunJsonRow | None:
    """The run `id` if the caller may see it; as JSON when its selection `nodes` compiles."""
    viewer = ctx.authorize(READ)
    check_text(id, "id")
    compiled = compile_run(nodes, fragments) if ctx.compiled_selections else None
    async with ctx.connection(viewer.workspaces) as conn:
        if compiled:
            return await runs.get_run_json(conn, viewer.workspaces, id, compiled)
        return await runs.get_run(conn, viewer.workspaces, id)


async def list_runs_page(
    ctx: Context,
    nodes: Sequence[FieldNode],
    fragments: Fragments,
    *,
    workspace_id: str,
    status: list[RunStatus] | None,
    filter: WorkflowRunFilter | None,
    order_by: RunOrder,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Page:
    """One page of a workspace's runs; its runs as JSON when the selection `nodes` compiles."""
    ctx.authorize(READ, workspace_id)
    scope = f"workspace:{workspace_id}"
    request = page_request(
        ctx.limits, scope, order_by, first=first, after=after, last=last, before=before
    )
    flt = (filter or WorkflowRunFilter()).to_filter(status)
    compiled = compile_connection(nodes, fragments) if ctx.compiled_selections else None
    return await run_list_page(
        ctx, workspace_id, flt, order_by, request, scope=scope, compiled=compiled
    )


@strawberry.type
class Query:
    @strawberry.field(description="null when no such run exists or the caller may not see it.")
    async def workflow_run(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun | None:
        raw = info._raw_info
        return await find_run(info.context, id, raw.field_nodes, raw.fragments)  # type: ignore[return-value]

    @strawberry.field(
        description=(
            "Runs of one workspace, newest first unless orderBy says otherwise. Relay cursor "
            "pagination, forwards (first/after) and backwards (last/before)."
        )
    )
    async def workflow_runs(
        self,
        info: RunInfo,
        workspace_id: strawberry.ID,
        status: list[RunStatus] | None = None,
        filter: WorkflowRunFilter | None = None,
        order_by: RunOrder = RunOrder.CREATED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> WorkflowRunConnection:
        raw = info._raw_info
        page = await list_runs_page(
            info.context,
            raw.field_nodes,
            raw.fragments,
            workspace_id=workspace_id,
            status=status,
            filter=filter,
            order_by=order_by,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return WorkflowRunConnection(page=page)

    @strawberry.field(
        description=(
            "The cursor of the workspace's newest event (valid even before the first one). "
            "Read it together with your view of the runs, then subscribe with it as `after`: "
            "every change committed since arrives, none twice."
        )
    )
    async def workflow_run_event_cursor(self, info: RunInfo, workspace_id: strawberry.ID) -> str:
        ctx = info.context
        ctx.authorize(READ, workspace_id)
        async with ctx.connection([workspace_id]) as conn:
            bounds = await events.stream_bounds(conn, workspace_id)
        return encode_event_cursor(workspace_id, bounds.last_seq)

    @strawberry.field(
        description=(
            "How many runs of the workspace are in each status "
            "(every status listed, zeros included)."
        )
    )
    async def workflow_run_status_counts(
        self,
        info: RunInfo,
        workspace_id: strawberry.ID,
        filter: WorkflowRunFilter | None = None,
    ) -> list[WorkflowRunStatusCount]:
        ctx = info.context
        ctx.authorize(READ, workspace_id)
        flt = (filter or WorkflowRunFilter()).to_filter()
        async with ctx.connection([workspace_id]) as conn:
            counts = await runs.count_runs_by_status(conn, workspace_id, flt)
        return [WorkflowRunStatusCount(status=s, count=counts[s]) for s in RunStatus]
