"""workflowRunStatusCountsChanged: live per-status counts that match the query when quiet."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from starlette.applications import Starlette

from db.lifecycle import NewRun, Transition, create_run, transition_run
from db.records import RunTrigger
from db.tenancy import scoped
from tests.support import GraphQLClient, LiveEvents, subscribers_registered, token, wait_for

COUNTS = """
subscription Counts($ws: ID!, $filter: WorkflowRunFilter, $interval: Int) {
  workflowRunStatusCountsChanged(workspaceId: $ws, filter: $filter, intervalMs: $interval) {
    status count
  }
}
"""
QUERY = """
query($ws: ID!, $filter: WorkflowRunFilter) {
  workflowRunStatusCounts(workspaceId: $ws, filter: $filter) { status count }
}
"""
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"subjectId": "wf_1"},
    {"triggeredBy": ["AGENT", "SWARM"]},
    {"rootOnly": True},
]


class LiveCounts(LiveEvents):
    """Collects each message of a counts subscription, with its arrival time."""

    def __init__(self, server: str, filter_: dict[str, Any] | None, interval: int) -> None:
        super().__init__(server, token(), query=COUNTS)
        self._variables = {"ws": "ws-a", "filter": filter_, "interval": interval}
        self.times: list[float] = []

    async def __aenter__(self) -> LiveCounts:
        from gql import GraphQLRequest

        session = await self._client.connect_async()
        request = GraphQLRequest(self._query, variable_values=self._variables)

        async def consume() -> None:
            try:
                async for result in session.subscribe(request):
                    self.events.append(result["workflowRunStatusCountsChanged"])
                    self.times.append(time.monotonic())
            except Exception as exc:
                self.error = exc

        self._task = asyncio.create_task(consume())
        return self


async def _writer(app: Starlette, seed: int, steps: int) -> None:
    runtime = app.state.runtime
    events = runtime.events
    rng = random.Random(seed)
    made: list[str] = []
    for _ in range(steps):
        # One unit of work per change, on the service's own pool, scoped as its requests are.
        async with scoped(runtime.pool, ["ws-a"], mode=runtime.settings.tenancy) as conn:
            if not made or rng.random() < 0.3:
                parent = rng.choice(made) if made and rng.random() < 0.3 else None
                change = await create_run(
                    conn,
                    NewRun(
                        "ws-a",
                        rng.choice(["wf_1", "wf_2"]),
                        rng.choice(list(RunTrigger)),
                        parent_run_id=parent,
                    ),
                    user_id="u",
                )
                made.append(change.run.id)
            else:
                transition = rng.choice(list(Transition))
                try:
                    change = await transition_run(conn, ["ws-a"], rng.choice(made), transition)
                except Exception:  # refused transitions are part of the traffic
                    continue
        if change.last_seq is not None:
            events.published("ws-a", change.last_seq)


async def test_counts_on_subscribe_are_the_queried_counts(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    await _writer(app, seed=1, steps=30)
    async with LiveCounts(server, None, 50) as live:
        [first] = await live.wait_for_count(1)
    expected = (await client.data(QUERY, {"ws": "ws-a"}))["workflowRunStatusCounts"]
    assert first == expected
    assert [c["status"] for c in first] == [
        "PENDING",
        "RUNNING",
        "WAITING",
        "PAUSED",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMED_OUT",
    ]


async def test_under_concurrent_writers_the_last_message_equals_the_query(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    subscriptions = [LiveCounts(server, f, 50) for f in FILTERS]
    for s in subscriptions:
        await s.__aenter__()
    try:
        await subscribers_registered(app, len(FILTERS))
        await asyncio.gather(*(_writer(app, seed, 60) for seed in range(8)))
        for filter_, live in zip(FILTERS, subscriptions, strict=True):
            expected = (await client.data(QUERY, {"ws": "ws-a", "filter": filter_}))[
                "workflowRunStatusCounts"
            ]
            await wait_for(
                lambda live=live, expected=expected: (
                    bool(live.events) and live.events[-1] == expected
                ),
                what=f"the counts for {filter_} to settle",
            )
            assert len(live.events) > 1
    finally:
        for s in subscriptions:
            await s.__aexit__()


async def test_messages_are_coalesced_to_one_per_interval(
    app: Starlette, server: str, client: GraphQLClient
) -> None:
    interval = 300
    async with LiveCounts(server, None, interval) as live:
        await live.wait_for_count(1)
        await subscribers_registered(app, 1)
        await asyncio.gather(*(_writer(app, seed, 40) for seed in range(4)))
        expected = (await client.data(QUERY, {"ws": "ws-a"}))["workflowRunStatusCounts"]
        await wait_for(lambda: live.events[-1] == expected, what="the last counts")
    gaps = [b - a for a, b in zip(live.times[1:], live.times[2:], strict=False)]
    # 160 changes arrived in a burst: a handful of messages, spaced by the interval.
    assert len(live.events) < 20
    assert all(gap >= interval / 1000 * 0.9 for gap in gaps), gaps


@pytest.mark.parametrize("interval", [49, 60_001])
async def test_an_interval_out_of_range_is_bad_user_input(server: str, interval: int) -> None:
    async with LiveCounts(server, None, interval) as live:
        await wait_for(lambda: live.error is not None, what="the refusal")
    assert "BAD_USER_INPUT" in repr(live.error) or "intervalMs" in repr(live.error)


async def test_counts_of_a_foreign_workspace_are_forbidden(server: str) -> None:
    live = LiveCounts(server, None, 250)
    live._variables["ws"] = "ws-z"
    async with live:
        await wait_for(lambda: live.error is not None, what="the refusal")
    assert "FORBIDDEN" in repr(live.error) or "grant" in repr(live.error)
