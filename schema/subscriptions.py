"""Subscription roots: live status changes of a workspace, resumable from a cursor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from db import runs
from db.fanout import EventFilter, Subscriber
from db.records import RunEvent, RunStatus
from db.runs import RunFilter
from schema.context import READ, Context
from schema.cursors import decode_event_cursor, encode_event_cursor
from schema.errors import BadUserInput, Forbidden
from schema.live import LIVE_OPERATION, Held
from schema.types import RunInfo, WorkflowRunEvent, WorkflowRunFilter, WorkflowRunStatusCount
from schema.validation import check_text

# WebSocket close code for a subscriber that fell too far behind (see the contract's README).
TOO_FAR_BEHIND = 4429


async def _deliver(subscriber: Subscriber) -> AsyncGenerator[RunEvent, None]:
    try:
        async for event in subscriber:
            yield event
    finally:
        subscriber.close()


@strawberry.type
class StatusChanges:
    @strawberry.subscription(
        description=(
            "Status changes of the workspace's runs as they are committed, in commit order, "
            "creations included. With `after` (an event cursor) the stream first replays every "
            "later matching event, then goes live, with no gap and no duplicate. runId narrows "
            "to one run; status narrows to events entering those statuses."
        )
    )
    async def workflow_run_status_changed(
        self,
        info: RunInfo,
        workspace_id: strawberry.ID,
        run_id: strawberry.ID | None = None,
        status: list[RunStatus] | None = None,
        after: str | None = None,
    ) -> AsyncIterator[WorkflowRunEvent]:
        # A coroutine that returns the stream: refusals (FORBIDDEN, a bad or expired cursor)
        # happen before it starts, and reach the client as this operation's error.
        ctx: Context = info.context
        ctx.authorize(READ, workspace_id)
        check_text(run_id, "runId")
        after_seq = None if after is None else decode_event_cursor(after, workspace_id)
        if ctx.stream is None:
            raise Forbidden("Subscriptions are off on this host (WORKFLOW_RUNS_SUBSCRIPTIONS).")

        def overflowed(position: int) -> None:
            cursor = encode_event_cursor(workspace_id, position)
            if ctx.disconnect is not None:
                ctx.disconnect(TOO_FAR_BEHIND, f"Too far behind; resume with after={cursor}")

        subscriber = await ctx.stream.subscribe(
            workspace_id,
            after=after_seq,
            flt=EventFilter(run_id=run_id, statuses=None if status is None else frozenset(status)),
            on_overflow=overflowed,
        )
        live = LIVE_OPERATION.get()
        shape = None if live is None or ctx.live is None else ctx.live.shape(info, live.variables)
        if live is not None and ctx.live is not None and shape is not None:
            # Shared execution: the executor sends the payloads; Strawberry's stream stays open
            # (and yields nothing) for as long as the operation runs.
            return Held(ctx.live, subscriber, shape, live.send, handoff=live.handoff)
        return _deliver(subscriber)  # type: ignore[return-value]


async def _counts(
    subscriber: Subscriber,
    flt: RunFilter,
    counts: dict[RunStatus, int],
    interval: float,
) -> AsyncGenerator[list[WorkflowRunStatusCount], None]:
    """The counts now, then after every change that moves them, at most once per interval."""
    changed = asyncio.Event()

    async def apply() -> None:
        # Every field a filter can test is fixed at creation: an event moves the count of its
        # previous status down and of its new status up, or, for a run outside, nothing.
        async for event in subscriber:
            if flt.matches(event.run):
                if event.previous_status is not None:
                    counts[event.previous_status] -= 1
                counts[event.status] += 1
                changed.set()

    applying = asyncio.create_task(apply())
    sent = dict(counts)
    try:
        yield [WorkflowRunStatusCount(status=s, count=counts[s]) for s in RunStatus]
        while True:
            waiting = asyncio.create_task(changed.wait())
            await asyncio.wait({waiting, applying}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if applying.done():
                applying.result()  # the subscriber failed: surface why
                return
            changed.clear()
            if counts != sent:
                sent = dict(counts)
                yield [WorkflowRunStatusCount(status=s, count=counts[s]) for s in RunStatus]
                # The rate limit: changes meanwhile are coalesced into the next message.
                await asyncio.sleep(interval)
    finally:
        applying.cancel()
        subscriber.close()


@strawberry.type
class CountChanges:
    @strawberry.subscription(
        description=(
            "Per-status counts of the workspace's runs matching `filter`: all 8 at once on "
            "subscribe, then again after committed changes move them, at most one message per "
            "intervalMs (50..60,000). Derived from the event stream: no query per change."
        )
    )
    async def workflow_run_status_counts_changed(
        self,
        info: RunInfo,
        workspace_id: strawberry.ID,
        filter: WorkflowRunFilter | None = None,
        interval_ms: int | None = 250,
    ) -> AsyncIterator[list[WorkflowRunStatusCount]]:
        ctx: Context = info.context
        ctx.authorize(READ, workspace_id)
        interval_ms = 250 if interval_ms is None else interval_ms
        if not 50 <= interval_ms <= 60_000:
            raise BadUserInput("intervalMs must be between 50 and 60000.")
        flt = (filter or WorkflowRunFilter()).to_filter()
        if ctx.stream is None:
            raise Forbidden("Subscriptions are off on this host (WORKFLOW_RUNS_SUBSCRIPTIONS).")
        # Counts and stream position from one snapshot: the deltas after it apply exactly.
        async with ctx.connection([workspace_id], isolation="repeatable_read") as conn:
            counts, position = await runs.count_runs_at_position(conn, workspace_id, flt)

        def overflowed(position: int) -> None:
            if ctx.disconnect is not None:
                ctx.disconnect(TOO_FAR_BEHIND, "Too far behind; subscribe again")

        subscriber = await ctx.stream.subscribe(
            workspace_id, after=position, flt=EventFilter(), on_overflow=overflowed
        )
        return _counts(subscriber, flt, counts, interval_ms / 1000)


@strawberry.type
class Subscription(StatusChanges, CountChanges):
    """The subscription root: status changes, and the counts they move."""
