"""The contract's types. Runs and events are served straight from the storage records
(`db.records.Run` / `RunEvent`), whose attribute names are the fields' Python names."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from db.records import Run, RunEvent, RunMode, RunOrder, RunStatus, RunTrigger
from db.runs import RunFilter
from schema.context import Context
from schema.cursors import encode_event_cursor
from schema.loaders import ChildrenCountKey, ChildrenKey
from schema.pagination import Page, page_request, run_list_page
from schema.scalars import JSON, DateTime, Long

# The storage enums are the GraphQL enums: member names are the GraphQL values (PENDING),
# member values what the database stores ("pending").
strawberry.enum(RunStatus, name="WorkflowRunStatus")
strawberry.enum(RunMode, name="WorkflowRunMode")
strawberry.enum(RunTrigger, name="WorkflowRunTrigger")
strawberry.enum(RunOrder, name="WorkflowRunOrder")

RunInfo = Info[Context, None]


async def resolve_parent(root: Run, info: RunInfo) -> WorkflowRun | None:
    if root.parent_run_id is None:
        return None
    return await info.context.loaders.run.load((root.workspace_id, root.parent_run_id))  # type: ignore[return-value]


async def resolve_children(
    root: Run,
    info: RunInfo,
    status: list[RunStatus] | None = None,
    first: int | None = None,
    after: str | None = None,
) -> WorkflowRunConnection:
    ctx = info.context
    order = RunOrder.CREATED_AT_ASC
    scope = f"children:{root.workspace_id}:{root.id}"
    request = page_request(ctx.limits, scope, order, first=first, after=after)
    statuses = None if status is None else frozenset(status)
    first_page = await ctx.loaders.children.load(
        ChildrenKey(root.workspace_id, root.id, statuses, request.limit, request.after)
    )
    page = await run_list_page(
        ctx,
        root.workspace_id,
        RunFilter(statuses=statuses, parent_run_id=root.id),
        order,
        request,
        scope=scope,
        first_page=first_page,
    )

    async def total() -> int:
        return await ctx.loaders.children_count.load(
            ChildrenCountKey(root.workspace_id, root.id, statuses)
        )

    page.total = total
    return WorkflowRunConnection(page=page)


async def resolve_events(root: Run, info: RunInfo) -> list[WorkflowRunEvent]:
    return await info.context.loaders.events.load((root.workspace_id, root.id))  # type: ignore[return-value]


@strawberry.type(
    name="WorkflowRun", description="One execution of a workflow, agent or swarm, in one workspace."
)
class WorkflowRun:
    id: strawberry.ID
    workspace_id: strawberry.ID
    subject_id: str = strawberry.field(
        description="Prefixed ID of the entity being run (e.g. wf_..., agt_...)."
    )
    parent_run_id: strawberry.ID | None
    status: RunStatus
    mode: RunMode
    input: JSON | None
    output: JSON | None
    error: str | None
    triggered_by: RunTrigger
    cf_workflow_id: str | None = strawberry.field(
        description="Cloudflare Workflow instance ID, when the run used workflows."
    )
    duration_ms: Long | None = strawberry.field(
        description=(
            "completedAt - startedAt in whole milliseconds once the run is terminal; "
            "null before, and for a run that never started."
        )
    )
    user_id: strawberry.ID
    started_at: DateTime | None
    completed_at: DateTime | None
    created_at: DateTime
    updated_at: DateTime

    parent: WorkflowRun | None = strawberry.field(resolver=resolve_parent)
    children: WorkflowRunConnection = strawberry.field(
        resolver=resolve_children, description="Child runs, oldest first."
    )
    events: list[WorkflowRunEvent] = strawberry.field(
        resolver=resolve_events,
        description="The run's status history, oldest first: its creation and every transition.",
    )


def resolve_event_cursor(root: RunEvent) -> str:
    return encode_event_cursor(root.workspace_id, root.seq)


def resolve_event_run(root: RunEvent) -> WorkflowRun:
    return root.run  # type: ignore[return-value]


@strawberry.type(
    name="WorkflowRunEvent",
    description="A status change of one run, as recorded in the run's event log.",
)
class WorkflowRunEvent:
    cursor: str = strawberry.field(
        resolver=resolve_event_cursor,
        description=(
            "Opaque, strictly increasing position in the workspace's event stream; "
            "pass it back as `after` to resume."
        ),
    )
    run_id: strawberry.ID
    workspace_id: strawberry.ID
    previous_status: RunStatus | None = strawberry.field(
        description="null for the event that created the run."
    )
    status: RunStatus
    occurred_at: DateTime
    run: WorkflowRun = strawberry.field(
        resolver=resolve_event_run,
        description="The run as it was right after this event (run.status == status).",
    )


@strawberry.type
class PageInfo:
    page: strawberry.Private[Page]

    @strawberry.field
    async def has_next_page(self) -> bool:
        return await self.page.has_next()

    @strawberry.field
    async def has_previous_page(self) -> bool:
        return await self.page.has_previous()

    @strawberry.field
    def start_cursor(self) -> str | None:
        return self.page.start_cursor()

    @strawberry.field
    def end_cursor(self) -> str | None:
        return self.page.end_cursor()


@strawberry.type
class WorkflowRunEdge:
    cursor: str
    node: WorkflowRun


@strawberry.type
class WorkflowRunConnection:
    page: strawberry.Private[Page]

    @strawberry.field
    def edges(self) -> list[WorkflowRunEdge]:
        cursor = self.page.cursor
        return [WorkflowRunEdge(cursor=cursor(run), node=run) for run in self.page.runs]  # type: ignore[arg-type]

    @strawberry.field
    def nodes(self) -> list[WorkflowRun]:
        return self.page.runs  # type: ignore[return-value]

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo(page=self.page)

    @strawberry.field(description="Number of runs matching the filter, ignoring pagination.")
    async def total_count(self) -> int:
        return await self.page.total()


@strawberry.type
class WorkflowRunStatusCount:
    status: RunStatus
    count: int


@strawberry.input
class WorkflowRunFilter:
    subject_id: str | None = None
    parent_run_id: strawberry.ID | None = None
    root_only: bool | None = strawberry.field(
        default=None, description="true: only runs without a parent; false: only child runs."
    )
    triggered_by: list[RunTrigger] | None = None
    mode: RunMode | None = None
    user_id: strawberry.ID | None = None
    created_after: DateTime | None = strawberry.field(
        default=None, description="Runs created strictly after this instant."
    )
    created_before: DateTime | None = strawberry.field(
        default=None, description="Runs created strictly before this instant."
    )

    def to_filter(self, statuses: list[RunStatus] | None = None) -> RunFilter:
        return RunFilter(
            statuses=None if statuses is None else frozenset(statuses),
            subject_id=self.subject_id,
            parent_run_id=self.parent_run_id,
            root_only=self.root_only,
            triggered_by=None if self.triggered_by is None else frozenset(self.triggered_by),
            mode=self.mode,
            user_id=self.user_id,
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.input
class CreateWorkflowRunInput:
    workspace_id: strawberry.ID
    subject_id: str
    triggered_by: RunTrigger
    parent_run_id: strawberry.ID | None = None
    mode: RunMode = RunMode.ASYNC
    input: JSON | None = None
    cf_workflow_id: str | None = None
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Retrying a create with the same key in the same workspace returns the first run "
            "instead of a second one."
        ),
    )
