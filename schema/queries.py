"""Query roots: translate arguments, authorize, call the data layer."""

from __future__ import annotations

import strawberry

from db import events, runs
from db.records import RunOrder, RunStatus
from schema.compiled import compile_connection, compile_run
from schema.context import READ
from schema.cursors import encode_event_cursor
from schema.pagination import page_request, run_list_page
from schema.types import (
    RunInfo,
    WorkflowRun,
    WorkflowRunConnection,
    WorkflowRunFilter,
    WorkflowRunStatusCount,
)
from schema.validation import check_text


@strawberry.type
class Query:
    @strawberry.field(description="null when no such run exists or the caller may not see it.")
    async def workflow_run(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun | None:
        ctx = info.context
        viewer = ctx.authorize(READ)
        check_text(id, "id")
        raw = info._raw_info
        compiled = compile_run(raw.field_nodes, raw.fragments) if ctx.compiled_selections else None
        async with ctx.connection(viewer.workspaces) as conn:
            if compiled:
                return await runs.get_run_json(conn, viewer.workspaces, id, compiled)  # type: ignore[return-value]
            return await runs.get_run(conn, viewer.workspaces, id)  # type: ignore[return-value]

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
        ctx = info.context
        ctx.authorize(READ, workspace_id)
        scope = f"workspace:{workspace_id}"
        request = page_request(
            ctx.limits, scope, order_by, first=first, after=after, last=last, before=before
        )
        flt = (filter or WorkflowRunFilter()).to_filter(status)
        raw = info._raw_info
        compiled = (
            compile_connection(raw.field_nodes, raw.fragments) if ctx.compiled_selections else None
        )
        page = await run_list_page(
            ctx, workspace_id, flt, order_by, request, scope=scope, compiled=compiled
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
