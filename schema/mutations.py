"""Mutation roots: each is one transaction in the data layer, then a hint to live subscribers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
import strawberry

from db import lifecycle
from db.lifecycle import Change, NewRun, Transition
from db.replicas import commit_position
from schema.context import WRITE, Context
from schema.scalars import JSON
from schema.types import CreateWorkflowRunInput, RunInfo, WorkflowRun
from schema.validation import check_json, check_required_text, check_text


async def _commit(
    ctx: Context,
    workspaces: Iterable[str],
    write: Callable[[asyncpg.Connection], Awaitable[Change]],
) -> Any:
    """Run one write in its own transaction, then tell the event stream what it appended."""
    # Mutations run one after another: what earlier fields loaded may be stale after this.
    ctx.loaders = ctx.loaders.fresh()
    # From now on this request reads its own writes, on the primary.
    ctx.wrote = True
    async with ctx.connection(workspaces, write=True) as conn:
        change = await write(conn)
    if ctx.router is not None:
        # With replicas, the response names the commit's position (extensions.lsn), so the
        # client can ask to read at least that far (X-Min-LSN).
        async with ctx.pool.acquire() as conn:
            ctx.commit_lsn = await commit_position(conn)
    if change.last_seq is not None:
        ctx.events.published(change.run.workspace_id, change.last_seq)
    return change.run


async def _transition(
    info: RunInfo,
    run_id: str,
    transition: Transition,
    *,
    output: Any = None,
    error: str | None = None,
    cf_workflow_id: str | None = None,
) -> Any:
    ctx = info.context
    viewer = ctx.authorize(WRITE)
    check_text(run_id, "id")
    workspaces = sorted(viewer.workspaces)
    return await _commit(
        ctx,
        workspaces,
        lambda conn: lifecycle.transition_run(
            conn,
            workspaces,
            run_id,
            transition,
            output=output,
            error=error,
            cf_workflow_id=cf_workflow_id,
        ),
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Creates a run in PENDING. userId is the authenticated caller."
    )
    async def create_workflow_run(
        self, info: RunInfo, input: CreateWorkflowRunInput
    ) -> WorkflowRun:
        ctx = info.context
        viewer = ctx.authorize(WRITE, input.workspace_id)
        check_required_text(input.subject_id, "subjectId")
        check_text(input.parent_run_id, "parentRunId")
        check_text(input.cf_workflow_id, "cfWorkflowId")
        check_text(input.idempotency_key, "idempotencyKey")
        check_json(ctx.limits, input.input, "input")
        new = NewRun(
            workspace_id=input.workspace_id,
            subject_id=input.subject_id,
            triggered_by=input.triggered_by,
            mode=input.mode,
            parent_run_id=input.parent_run_id,
            input=input.input,
            cf_workflow_id=input.cf_workflow_id,
            idempotency_key=input.idempotency_key,
        )
        return await _commit(  # type: ignore[no-any-return]
            ctx,
            [input.workspace_id],
            lambda conn: lifecycle.create_run(conn, new, user_id=viewer.user_id),
        )

    @strawberry.mutation(
        description=(
            "PENDING -> RUNNING; sets startedAt, and cfWorkflowId when the run was handed to a "
            "Cloudflare Workflow."
        )
    )
    async def start_workflow_run(
        self, info: RunInfo, id: strawberry.ID, cf_workflow_id: str | None = None
    ) -> WorkflowRun:
        check_text(cf_workflow_id, "cfWorkflowId")
        return await _transition(info, id, Transition.START, cf_workflow_id=cf_workflow_id)  # type: ignore[no-any-return]

    @strawberry.mutation(
        description="RUNNING -> WAITING (the run waits for an event, a timer or a person)."
    )
    async def mark_workflow_run_waiting(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun:
        return await _transition(info, id, Transition.MARK_WAITING)  # type: ignore[no-any-return]

    @strawberry.mutation(description="PENDING, RUNNING or WAITING -> PAUSED.")
    async def pause_workflow_run(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun:
        return await _transition(info, id, Transition.PAUSE)  # type: ignore[no-any-return]

    @strawberry.mutation(
        description="PAUSED or WAITING -> RUNNING (PAUSED -> PENDING when the run never started)."
    )
    async def resume_workflow_run(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun:
        return await _transition(info, id, Transition.RESUME)  # type: ignore[no-any-return]

    @strawberry.mutation(description="RUNNING or WAITING -> COMPLETED with its output.")
    async def complete_workflow_run(
        self, info: RunInfo, id: strawberry.ID, output: JSON | None = None
    ) -> WorkflowRun:
        check_json(info.context.limits, output, "output")
        return await _transition(info, id, Transition.COMPLETE, output=output)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Any non-terminal status -> FAILED with its error message.")
    async def fail_workflow_run(self, info: RunInfo, id: strawberry.ID, error: str) -> WorkflowRun:
        check_text(error, "error", info.context.limits.max_text_bytes)
        return await _transition(info, id, Transition.FAIL, error=error)  # type: ignore[no-any-return]

    @strawberry.mutation(
        description=(
            "Any non-terminal status -> CANCELLED; non-terminal descendants are cancelled in "
            "the same transaction."
        )
    )
    async def cancel_workflow_run(
        self, info: RunInfo, id: strawberry.ID, reason: str | None = None
    ) -> WorkflowRun:
        check_text(reason, "reason", info.context.limits.max_text_bytes)
        return await _transition(info, id, Transition.CANCEL, error=reason)  # type: ignore[no-any-return]

    @strawberry.mutation(description="Any non-terminal status -> TIMED_OUT.")
    async def time_out_workflow_run(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun:
        return await _transition(info, id, Transition.TIME_OUT)  # type: ignore[no-any-return]

    @strawberry.mutation(
        description=(
            "A terminal run that did not complete (FAILED, CANCELLED, TIMED_OUT) -> a new "
            "PENDING run with the same subject, input and parent."
        )
    )
    async def retry_workflow_run(self, info: RunInfo, id: strawberry.ID) -> WorkflowRun:
        ctx = info.context
        viewer = ctx.authorize(WRITE)
        check_text(id, "id")
        workspaces = sorted(viewer.workspaces)
        return await _commit(  # type: ignore[no-any-return]
            ctx,
            workspaces,
            lambda conn: lifecycle.retry_run(conn, workspaces, id, user_id=viewer.user_id),
        )
