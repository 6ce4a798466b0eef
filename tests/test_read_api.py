"""Acceptance tests of the read API: workflowRuns, workflowRunStatusCounts, workflowRun and the
nested fields, judged against the contract (schema.graphql + README "Precise readings").

Expected answers come from a reference computed in Python over the seeded runs
(tests/factories.py), never from the service's own SQL.

Most tests only read. They share one database and one server for the module (`world`,
`reader`): each data set lives in its own workspace, is seeded once, and no test changes it,
so the tests stay independent and order-free while the module stays fast. Tests that write
(through the API) do so in workspaces of their own and only read back what they wrote; tests
that count SQL statements get a fresh database and server each (`app`, `client`).
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette

from db.pool import create_pool
from server.app import create_app
from server.config import Settings
from tests.factories import (
    STATUSES,
    TRIGGERS,
    by_id,
    insert_runs,
    make_run,
    seed_runs,
)
from tests.support import SECRET, GraphQLClient, create_run, running, token, with_database

Runs = list[dict[str, Any]]

ORDERS = ("CREATED_AT_DESC", "CREATED_AT_ASC", "UPDATED_AT_DESC")
STATUS_ENUM = [s.upper() for s in STATUSES]
DATETIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
US = timedelta(microseconds=1)

# The shared world's workspaces, one per data set.
PAGES = "ws-pages"
FILTERS = "ws-filters"
TREE = "ws-tree"
FAMILY = "ws-family"
TIES = "ws-ties"
MICRO = "ws-micro"
PENDING_ONLY = "ws-pending"
SMALL = "ws-small"
SMALL_OTHER = "ws-small-other"
EXTREME = "ws-extreme"
EMPTY = "ws-empty"
SINGLE = "ws-single"
WRITES = "ws-writes"
READER_WORKSPACES = (
    PAGES,
    FILTERS,
    TREE,
    FAMILY,
    TIES,
    MICRO,
    PENDING_ONLY,
    SMALL,
    SMALL_OTHER,
    EXTREME,
    EMPTY,
    SINGLE,
    WRITES,
)

RUN_FIELDS = """
  id workspaceId subjectId parentRunId status mode input output error triggeredBy
  cfWorkflowId durationMs userId startedAt completedAt createdAt updatedAt
"""

LIST = """
query List($ws: ID!, $status: [WorkflowRunStatus!], $filter: WorkflowRunFilter,
           $orderBy: WorkflowRunOrder!, $first: Int, $after: String, $last: Int,
           $before: String) {
  workflowRuns(workspaceId: $ws, status: $status, filter: $filter, orderBy: $orderBy,
               first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

COUNTS = """
query Counts($ws: ID!, $filter: WorkflowRunFilter) {
  workflowRunStatusCounts(workspaceId: $ws, filter: $filter) { status count }
}
"""

RUN = f"""
query Run($id: ID!) {{ workflowRun(id: $id) {{ {RUN_FIELDS} }} }}
"""


# --- the reference ------------------------------------------------------------------------


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def reference_matches(
    run: dict[str, Any], status: list[str] | None, flt: dict[str, Any] | None
) -> bool:
    """Whether `run` matches `status` and `filter`, as the contract reads them."""
    if status is not None and run["status"].upper() not in status:
        return False
    flt = flt or {}
    if flt.get("subjectId") is not None and run["subject_id"] != flt["subjectId"]:
        return False
    if flt.get("parentRunId") is not None and run["parent_run_id"] != flt["parentRunId"]:
        return False
    if flt.get("rootOnly") is True and run["parent_run_id"] is not None:
        return False
    if flt.get("rootOnly") is False and run["parent_run_id"] is None:
        return False
    triggers = flt.get("triggeredBy")
    if triggers is not None and run["triggered_by"].upper() not in triggers:
        return False
    if flt.get("mode") is not None and run["mode"].upper() != flt["mode"]:
        return False
    if flt.get("userId") is not None and run["user_id"] != flt["userId"]:
        return False
    after = flt.get("createdAfter")
    if after is not None and not run["created_at"] > _instant(after):
        return False
    before = flt.get("createdBefore")
    return before is None or run["created_at"] < _instant(before)


def reference_order(runs: Runs, order: str) -> Runs:
    """The runs in list order: by the order's key, ties by id, both in the order's direction."""
    column = "updated_at" if order == "UPDATED_AT_DESC" else "created_at"
    return sorted(runs, key=lambda r: (r[column], r["id"]), reverse=order.endswith("_DESC"))


def reference_ids(
    runs: Runs,
    *,
    status: list[str] | None = None,
    flt: dict[str, Any] | None = None,
    order: str = "CREATED_AT_DESC",
) -> list[str]:
    matching = [r for r in runs if reference_matches(r, status, flt)]
    return [r["id"] for r in reference_order(matching, order)]


def reference_counts(runs: Runs, flt: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {
            "status": s.upper(),
            "count": sum(1 for r in runs if r["status"] == s and reference_matches(r, None, flt)),
        }
        for s in STATUSES
    ]


def iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


# --- the shared, read-only world -----------------------------------------------------------


@dataclass
class World:
    pages: Runs
    filters: Runs
    tree: Runs
    family: dict[str, dict[str, Any]]
    ties: Runs
    micro: Runs
    small: Runs
    small_other: Runs
    extreme: Runs


RICH_INPUT = {
    "prompt": 'Résumé ✓ 数据 "quoted" \\ back\nslash',
    "numbers": [0, -1, 3.25, 1e-7, 9007199254740993, -9223372036854775808],
    "flags": {"a": True, "b": False, "none": None},
    "nested": {"deep": [[[]], {}, {"x": [1, {"y": "z"}]}]},
    "": "empty key",
}


def build_family() -> dict[str, dict[str, Any]]:
    """A completed parent with a long run (durationMs beyond 32 bits) and two children."""
    created = datetime(2025, 1, 2, 3, 4, 5, 0, tzinfo=UTC)
    started = created + timedelta(seconds=2, microseconds=123_456)
    completed = started + timedelta(days=30, seconds=1, microseconds=234_400)
    parent = make_run(
        FAMILY,
        subject_id="swm_research",
        status="completed",
        mode="sync",
        input=RICH_INPUT,
        output={"summary": "done", "items": [1, 2, 3]},
        triggered_by="swarm",
        cf_workflow_id="cf-instance-42",
        user_id="user-carol",
        started_at=started,
        completed_at=completed,
        created_at=created,
        updated_at=completed,
    )
    failed = make_run(
        FAMILY,
        subject_id="agt_triage",
        parent_run_id=parent["id"],
        status="failed",
        input="just a string",
        error="exploded:\n  line 2 — ünïcødé",
        triggered_by="agent",
        user_id="user-dave",
        completed_at=created + timedelta(seconds=9, microseconds=1),
        created_at=created + timedelta(seconds=3),
        updated_at=created + timedelta(seconds=9, microseconds=1),
    )
    running_child = make_run(
        FAMILY,
        parent_run_id=parent["id"],
        status="running",
        input=[1, "two", None],
        triggered_by="workflow",
        started_at=created + timedelta(seconds=4, microseconds=999_999),
        created_at=created + timedelta(seconds=4),
        updated_at=created + timedelta(seconds=4, microseconds=999_999),
    )
    return {"parent": parent, "failed": failed, "running": running_child}


@pytest.fixture(scope="module")
async def shared_database(admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    name = f"wr_read_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield with_database(admin_dsn, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def world(shared_database: str) -> World:
    pool = await create_pool(shared_database, min_size=1, max_size=4)
    try:
        family = build_family()
        await insert_runs(pool, list(family.values()))
        instant = datetime(2025, 5, 1, 12, 0, 0, 250_001, tzinfo=UTC)
        ties = [make_run(TIES, created_at=instant, updated_at=instant) for _ in range(12)]
        await insert_runs(pool, ties)
        base = datetime(2025, 6, 1, 0, 0, 0, 500_000, tzinfo=UTC)
        micro = [make_run(MICRO, created_at=base + n * US) for n in range(3)]
        await insert_runs(pool, micro)
        await insert_runs(pool, [make_run(PENDING_ONLY), make_run(PENDING_ONLY)])
        await insert_runs(pool, [make_run(SINGLE)])
        return World(
            pages=await seed_runs(pool, PAGES, 1100, rng=random.Random(1100)),
            filters=await seed_runs(pool, FILTERS, 600, rng=random.Random(600), child_ratio=0.4),
            tree=await seed_runs(pool, TREE, 500, rng=random.Random(500), child_ratio=0.5),
            family=family,
            ties=ties,
            micro=micro,
            small=await seed_runs(pool, SMALL, 20, rng=random.Random(20)),
            small_other=await seed_runs(pool, SMALL_OTHER, 20, rng=random.Random(21)),
            extreme=await seed_runs(pool, EXTREME, 10, rng=random.Random(10)),
        )
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def shared_server(
    shared_database: str, world: World, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("read-api")
    settings = replace(
        Settings.from_env({}),
        database_url=shared_database,
        jwt_secret=SECRET,
        data_dir=data_dir,
        pool_min_size=1,
    )
    async with running(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
async def reader(shared_server: str) -> AsyncIterator[GraphQLClient]:
    """A client of the shared server whose token reads (and writes) every world workspace."""
    client = GraphQLClient(shared_server, token(READER_WORKSPACES))
    yield client
    await client.aclose()


# --- helpers -----------------------------------------------------------------------------


async def list_page(client: GraphQLClient, ws: str, **args: Any) -> dict[str, Any]:
    variables = {"ws": ws, "orderBy": "CREATED_AT_DESC", **args}
    data = await client.data(LIST, variables)
    connection: dict[str, Any] = data["workflowRuns"]
    return connection


async def all_ids(
    client: GraphQLClient,
    ws: str,
    *,
    status: list[str] | None = None,
    flt: dict[str, Any] | None = None,
    order: str = "CREATED_AT_DESC",
) -> tuple[list[str], int]:
    """Every id the API lists (walking pages of 500), and the totalCount it reports."""
    ids: list[str] = []
    after = None
    total = None
    for _ in range(100):
        page = await list_page(
            client, ws, status=status, filter=flt, orderBy=order, first=500, after=after
        )
        total = page["totalCount"]
        ids += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert total is not None
    return ids, total


def check_page_shape(page: dict[str, Any]) -> list[str]:
    """The page's ids, after checking that edges, nodes and start/end cursors agree."""
    edge_ids = [e["node"]["id"] for e in page["edges"]]
    assert [n["id"] for n in page["nodes"]] == edge_ids
    info = page["pageInfo"]
    if page["edges"]:
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
    else:
        assert info["startCursor"] is None
        assert info["endCursor"] is None
    return edge_ids


async def walk_forward(
    client: GraphQLClient, ws: str, expected: list[str], size: int, **args: Any
) -> list[str]:
    """Walk first/after pages, checking each page against `expected` as it goes."""
    seen: list[str] = []
    after = None
    for _ in range(len(expected) + 2):
        page = await list_page(client, ws, first=size, after=after, **args)
        ids = check_page_shape(page)
        start = len(seen)
        context = f"page at {start}, size {size}"
        assert ids == expected[start : start + size], context
        assert page["totalCount"] == len(expected), context
        info = page["pageInfo"]
        assert info["hasNextPage"] == (start + len(ids) < len(expected)), context
        assert info["hasPreviousPage"] == (start > 0), context
        seen += ids
        if not info["hasNextPage"]:
            return seen
        after = info["endCursor"]
    raise AssertionError("forward walk never ended")


async def walk_backward(
    client: GraphQLClient, ws: str, expected: list[str], size: int, **args: Any
) -> list[str]:
    """Walk last/before pages from the end, checking each page against `expected`."""
    seen: list[str] = []
    before = None
    for _ in range(len(expected) + 2):
        page = await list_page(client, ws, last=size, before=before, **args)
        ids = check_page_shape(page)
        end = len(expected) - len(seen)
        start = max(0, end - size)
        context = f"page ending at {end}, size {size}"
        assert ids == expected[start:end], context
        assert page["totalCount"] == len(expected), context
        info = page["pageInfo"]
        assert info["hasPreviousPage"] == (start > 0), context
        assert info["hasNextPage"] == (end < len(expected)), context
        seen = ids + seen
        if not info["hasPreviousPage"]:
            return seen
        before = info["startCursor"]
    raise AssertionError("backward walk never ended")


async def assert_still_serving(client: GraphQLClient, ws: str) -> None:
    data = await client.data(COUNTS, {"ws": ws})
    assert [c["status"] for c in data["workflowRunStatusCounts"]] == STATUS_ENUM


# --- pagination over > 1,000 runs ---------------------------------------------------------

COMMON = ["COMPLETED", "FAILED", "RUNNING"]
RARE = ["TIMED_OUT", "PAUSED"]
# Which page sizes each status set is walked with: the small sizes where pages are many.
STATUS_SETS: dict[str, tuple[list[str] | None, tuple[int, ...]]] = {
    "all": (None, (7, 50, 500)),
    "common": (COMMON, (50, 500)),
    "rare": (RARE, (1, 7, 500)),
    "all_but_one": ([s for s in STATUS_ENUM if s != "COMPLETED"], (13,)),
}


@pytest.mark.parametrize("status_set", list(STATUS_SETS))
@pytest.mark.parametrize("order", ORDERS)
async def test_forward_pages_return_each_run_once_in_order(
    reader: GraphQLClient, world: World, order: str, status_set: str
) -> None:
    status, sizes = STATUS_SETS[status_set]
    expected = reference_ids(world.pages, status=status, order=order)
    assert len(expected) >= 40, "the seed should give every status set many runs"
    for size in sizes:
        seen = await walk_forward(reader, PAGES, expected, size, status=status, orderBy=order)
        assert seen == expected
        assert len(set(seen)) == len(seen)


@pytest.mark.parametrize("status_set", list(STATUS_SETS))
@pytest.mark.parametrize("order", ORDERS)
async def test_backward_pages_return_each_run_once_in_order(
    reader: GraphQLClient, world: World, order: str, status_set: str
) -> None:
    status, sizes = STATUS_SETS[status_set]
    expected = reference_ids(world.pages, status=status, order=order)
    for size in sizes:
        seen = await walk_backward(reader, PAGES, expected, size, status=status, orderBy=order)
        assert seen == expected
        assert len(set(seen)) == len(seen)


async def test_seed_has_ties_that_only_the_id_can_break(world: World) -> None:
    created = [r["created_at"] for r in world.pages]
    updated = [r["updated_at"] for r in world.pages]
    assert len(set(created)) < len(created) - 50
    assert len(set(updated)) < len(updated) - 50
    assert {r["status"] for r in world.pages} == set(STATUSES)


async def test_default_order_is_newest_first_with_50_runs(
    reader: GraphQLClient, world: World
) -> None:
    query = """
    query Default($ws: ID!) {
      workflowRuns(workspaceId: $ws) {
        totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage }
      }
    }
    """
    data = await reader.data(query, {"ws": PAGES})
    connection = data["workflowRuns"]
    assert [n["id"] for n in connection["nodes"]] == reference_ids(world.pages)[:50]
    assert connection["totalCount"] == 1100
    assert connection["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}


async def test_last_without_before_returns_the_end_of_the_list(
    reader: GraphQLClient, world: World
) -> None:
    expected = reference_ids(world.pages, order="CREATED_AT_ASC")
    page = await list_page(reader, PAGES, orderBy="CREATED_AT_ASC", last=7)
    assert check_page_shape(page) == expected[-7:]
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is True


async def test_backward_from_a_forward_cursor_returns_the_preceding_runs(
    reader: GraphQLClient, world: World
) -> None:
    expected = reference_ids(world.pages, order="UPDATED_AT_DESC")
    first = await list_page(reader, PAGES, orderBy="UPDATED_AT_DESC", first=30)
    second = await list_page(
        reader, PAGES, orderBy="UPDATED_AT_DESC", first=30, after=first["pageInfo"]["endCursor"]
    )
    assert check_page_shape(second) == expected[30:60]
    back = await list_page(
        reader, PAGES, orderBy="UPDATED_AT_DESC", last=10, before=second["pageInfo"]["startCursor"]
    )
    assert check_page_shape(back) == expected[20:30]
    assert back["pageInfo"]["hasNextPage"] is True
    assert back["pageInfo"]["hasPreviousPage"] is True


async def test_page_after_the_last_run_is_empty(reader: GraphQLClient, world: World) -> None:
    expected = reference_ids(world.pages, status=RARE)
    last = await list_page(reader, PAGES, status=RARE, last=1)
    assert check_page_shape(last) == expected[-1:]
    beyond = await list_page(
        reader, PAGES, status=RARE, first=5, after=last["pageInfo"]["endCursor"]
    )
    assert check_page_shape(beyond) == []
    assert beyond["totalCount"] == len(expected)
    assert beyond["pageInfo"]["hasNextPage"] is False
    assert beyond["pageInfo"]["hasPreviousPage"] is True


async def test_page_before_the_first_run_is_empty(reader: GraphQLClient, world: World) -> None:
    first = await list_page(reader, PAGES, orderBy="CREATED_AT_ASC", first=1)
    before = await list_page(
        reader, PAGES, orderBy="CREATED_AT_ASC", last=5, before=first["pageInfo"]["startCursor"]
    )
    assert check_page_shape(before) == []
    assert before["pageInfo"]["hasPreviousPage"] is False
    assert before["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("direction", ["first", "last"])
async def test_after_and_before_together_bound_the_page(
    reader: GraphQLClient, world: World, direction: str
) -> None:
    status = ["COMPLETED", "FAILED"]
    expected = reference_ids(world.pages, status=status, order="UPDATED_AT_DESC")
    args = {"status": status, "orderBy": "UPDATED_AT_DESC"}
    head = await list_page(reader, PAGES, first=40, **args)
    low, high = head["edges"][9]["cursor"], head["edges"][30]["cursor"]
    window = await list_page(reader, PAGES, after=low, before=high, **{direction: 500}, **args)
    assert check_page_shape(window) == expected[10:30]
    small = await list_page(reader, PAGES, after=low, before=high, **{direction: 4}, **args)
    assert check_page_shape(small) == (expected[10:14] if direction == "first" else expected[26:30])


async def test_page_after_the_only_run_is_empty_with_a_previous_page(
    reader: GraphQLClient, world: World
) -> None:
    only = await list_page(reader, SINGLE, first=5)
    assert only["pageInfo"]["hasNextPage"] is False
    assert only["pageInfo"]["hasPreviousPage"] is False
    beyond = await list_page(reader, SINGLE, first=5, after=only["pageInfo"]["endCursor"])
    assert check_page_shape(beyond) == []
    assert beyond["totalCount"] == 1
    assert beyond["pageInfo"]["hasNextPage"] is False
    # The run the cursor names lies before this (empty) page.
    assert beyond["pageInfo"]["hasPreviousPage"] is True


async def test_page_before_the_only_run_is_empty_with_a_next_page(
    reader: GraphQLClient, world: World
) -> None:
    only = await list_page(reader, SINGLE, last=5)
    before = await list_page(reader, SINGLE, last=5, before=only["pageInfo"]["startCursor"])
    assert check_page_shape(before) == []
    assert before["pageInfo"]["hasPreviousPage"] is False
    # The run the cursor names lies after this (empty) page.
    assert before["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("order", ORDERS)
async def test_runs_with_equal_timestamps_are_ordered_by_id(
    reader: GraphQLClient, world: World, order: str
) -> None:
    ids = sorted(r["id"] for r in world.ties)
    expected = ids if order == "CREATED_AT_ASC" else ids[::-1]
    assert await walk_forward(reader, TIES, expected, 5, orderBy=order) == expected
    assert await walk_backward(reader, TIES, expected, 5, orderBy=order) == expected


async def test_empty_workspace_lists_nothing(reader: GraphQLClient, world: World) -> None:
    page = await list_page(reader, EMPTY, first=10)
    assert check_page_shape(page) == []
    assert page["totalCount"] == 0
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is False


async def test_runs_created_during_a_walk_do_not_shift_its_pages(
    pool: asyncpg.Pool, client: GraphQLClient
) -> None:
    runs = await seed_runs(pool, "ws-a", 60, rng=random.Random(61))
    expected = reference_ids(runs)
    seen: list[str] = []
    after = None
    for _ in range(20):
        page = await list_page(client, "ws-a", first=7, after=after)
        seen += check_page_shape(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        # Newer runs arrive at the head of the list while the client walks on.
        await create_run(client, "ws-a")
    assert seen == expected


# --- filters ---------------------------------------------------------------------------------

FilterCase = Callable[[Runs], tuple[list[str] | None, dict[str, Any] | None]]


def _hub(runs: Runs) -> str:
    return str(runs[0]["id"])


def _leaf(runs: Runs) -> str:
    parents = {r["parent_run_id"] for r in runs}
    return str(next(r["id"] for r in reversed(runs) if r["id"] not in parents))


def _tied_created(runs: Runs) -> datetime:
    """A created_at shared by two runs, in the middle of the seed."""
    middle = runs[len(runs) // 2 :]
    for a, b in itertools.pairwise(middle):
        if a["created_at"] == b["created_at"]:
            return a["created_at"]  # type: ignore[no-any-return]
    raise AssertionError("the seed has no tied created_at")


def _mid_created(runs: Runs, fraction: float) -> datetime:
    return runs[int(len(runs) * fraction)]["created_at"]  # type: ignore[no-any-return]


def _in_offset(value: datetime, hours: int, minutes: int = 0) -> str:
    offset = timezone(timedelta(hours=hours, minutes=minutes))
    return value.astimezone(offset).isoformat(timespec="microseconds")


# name: (builder of (status, filter) from the seeded runs, whether the answer is empty by design)
FILTER_CASES: dict[str, tuple[FilterCase, bool]] = {
    "no_filter": (lambda runs: (None, None), False),
    "empty_filter_object": (lambda runs: (None, {}), False),
    "explicit_nulls": (
        lambda runs: (None, {"subjectId": None, "rootOnly": None, "triggeredBy": None}),
        False,
    ),
    "subject": (lambda runs: (None, {"subjectId": "wf_report"}), False),
    "unknown_subject": (lambda runs: (None, {"subjectId": "wf_nope"}), True),
    "parent_hub": (lambda runs: (None, {"parentRunId": _hub(runs)}), False),
    "parent_without_children": (lambda runs: (None, {"parentRunId": _leaf(runs)}), True),
    "unknown_parent": (lambda runs: (None, {"parentRunId": "run_doesnotexist"}), True),
    "root_only": (lambda runs: (None, {"rootOnly": True}), False),
    "children_only": (lambda runs: (None, {"rootOnly": False}), False),
    "children_of_hub": (
        lambda runs: (None, {"rootOnly": False, "parentRunId": _hub(runs)}),
        False,
    ),
    "root_only_contradicts_parent": (
        lambda runs: (None, {"rootOnly": True, "parentRunId": _hub(runs)}),
        True,
    ),
    "one_trigger": (lambda runs: (None, {"triggeredBy": ["AGENT"]}), False),
    "two_triggers": (lambda runs: (None, {"triggeredBy": ["SWARM", "EVENT"]}), False),
    "all_triggers": (lambda runs: (None, {"triggeredBy": [t.upper() for t in TRIGGERS]}), False),
    "no_trigger": (lambda runs: (None, {"triggeredBy": []}), True),
    "mode_sync": (lambda runs: (None, {"mode": "SYNC"}), False),
    "mode_async": (lambda runs: (None, {"mode": "ASYNC"}), False),
    "user": (lambda runs: (None, {"userId": "user-bob"}), False),
    "unknown_user": (lambda runs: (None, {"userId": "user-nobody"}), True),
    "created_after_tie_is_strict": (
        lambda runs: (None, {"createdAfter": iso(_tied_created(runs))}),
        False,
    ),
    "created_after_one_microsecond_earlier": (
        lambda runs: (None, {"createdAfter": iso(_tied_created(runs) - US)}),
        False,
    ),
    "created_before_tie_is_strict": (
        lambda runs: (None, {"createdBefore": iso(_tied_created(runs))}),
        False,
    ),
    "created_before_one_microsecond_later": (
        lambda runs: (None, {"createdBefore": iso(_tied_created(runs) + US)}),
        False,
    ),
    "created_window": (
        lambda runs: (
            None,
            {
                "createdAfter": iso(_mid_created(runs, 0.2)),
                "createdBefore": iso(_mid_created(runs, 0.6)),
            },
        ),
        False,
    ),
    "created_after_in_another_offset": (
        lambda runs: (None, {"createdAfter": _in_offset(_tied_created(runs), -7, -30)}),
        False,
    ),
    "created_before_in_another_offset": (
        lambda runs: (None, {"createdBefore": _in_offset(_tied_created(runs), 5, 45)}),
        False,
    ),
    "created_after_utc_z": (
        lambda runs: (
            None,
            {"createdAfter": iso(_mid_created(runs, 0.5)).replace("+00:00", "Z")},
        ),
        False,
    ),
    "empty_window": (
        lambda runs: (
            None,
            {
                "createdAfter": iso(_mid_created(runs, 0.5)),
                "createdBefore": iso(_mid_created(runs, 0.5) + US),
            },
        ),
        True,
    ),
    "status_one": (lambda runs: (["PAUSED"], None), False),
    "status_many": (lambda runs: (["PENDING", "WAITING", "CANCELLED"], None), False),
    "status_all": (lambda runs: (list(STATUS_ENUM), None), False),
    "status_duplicated": (lambda runs: (["FAILED", "FAILED"], None), False),
    "status_empty": (lambda runs: ([], None), True),
    "status_and_subject_and_mode": (
        lambda runs: (["FAILED", "CANCELLED"], {"subjectId": "wf_ingest", "mode": "ASYNC"}),
        False,
    ),
    "status_and_children_and_triggers_and_user": (
        lambda runs: (
            ["COMPLETED", "RUNNING"],
            {"rootOnly": False, "triggeredBy": ["WORKFLOW", "AGENT"], "userId": "user-carol"},
        ),
        False,
    ),
    "status_and_window_and_parent": (
        lambda runs: (
            ["COMPLETED", "FAILED"],
            {
                "parentRunId": _hub(runs),
                "createdAfter": iso(_mid_created(runs, 0.1)),
                "createdBefore": iso(_mid_created(runs, 0.9)),
            },
        ),
        False,
    ),
    "everything_at_once": (
        lambda runs: (
            ["COMPLETED", "FAILED", "CANCELLED", "RUNNING"],
            {
                "subjectId": "wf_backup",
                "rootOnly": True,
                "triggeredBy": ["USER", "WORKFLOW", "AGENT"],
                "mode": "ASYNC",
                "createdAfter": iso(_mid_created(runs, 0.05)),
                "createdBefore": iso(_mid_created(runs, 0.95)),
            },
        ),
        False,
    ),
    "status_with_no_trigger": (lambda runs: (["COMPLETED"], {"triggeredBy": []}), True),
    "empty_status_with_filter": (lambda runs: ([], {"mode": "SYNC"}), True),
}


@pytest.mark.parametrize("case", list(FILTER_CASES))
async def test_filters_match_the_reference(reader: GraphQLClient, world: World, case: str) -> None:
    build, empty_by_design = FILTER_CASES[case]
    status, flt = build(world.filters)
    expected = reference_ids(world.filters, status=status, flt=flt)
    assert (len(expected) == 0) == empty_by_design, f"the seed does not exercise {case}"
    ids, total = await all_ids(reader, FILTERS, status=status, flt=flt)
    assert total == len(expected)
    assert ids == expected


@pytest.mark.parametrize("order", ORDERS)
async def test_combined_filters_page_in_every_order(
    reader: GraphQLClient, world: World, order: str
) -> None:
    status = ["COMPLETED", "RUNNING", "TIMED_OUT"]
    flt = {"rootOnly": False, "triggeredBy": ["WORKFLOW", "AGENT", "USER"], "mode": "ASYNC"}
    expected = reference_ids(world.filters, status=status, flt=flt, order=order)
    assert len(expected) > 20
    args = {"status": status, "filter": flt, "orderBy": order}
    assert await walk_forward(reader, FILTERS, expected, 6, **args) == expected
    assert await walk_backward(reader, FILTERS, expected, 6, **args) == expected


async def test_created_after_and_before_compare_at_microsecond_precision(
    reader: GraphQLClient, world: World
) -> None:
    base = world.micro[0]["created_at"]
    ids = [r["id"] for r in world.micro]
    after, _ = await all_ids(reader, MICRO, flt={"createdAfter": iso(base)}, order="CREATED_AT_ASC")
    assert after == [ids[1], ids[2]]
    before, _ = await all_ids(
        reader, MICRO, flt={"createdBefore": iso(base + 2 * US)}, order="CREATED_AT_ASC"
    )
    assert before == [ids[0], ids[1]]
    between, _ = await all_ids(
        reader,
        MICRO,
        flt={"createdAfter": iso(base), "createdBefore": iso(base + 2 * US)},
        order="CREATED_AT_ASC",
    )
    assert between == [ids[1]]


# --- status counts -------------------------------------------------------------------------

COUNT_CASES = [
    "no_filter",
    "explicit_nulls",
    "subject",
    "unknown_subject",
    "parent_hub",
    "root_only",
    "children_only",
    "two_triggers",
    "all_triggers",
    "no_trigger",
    "mode_sync",
    "user",
    "created_after_tie_is_strict",
    "created_before_tie_is_strict",
    "created_window",
    "created_after_in_another_offset",
]


@pytest.mark.parametrize("case", COUNT_CASES)
async def test_status_counts_list_every_status_in_enum_order(
    reader: GraphQLClient, world: World, case: str
) -> None:
    status, flt = FILTER_CASES[case][0](world.filters)
    assert status is None
    data = await reader.data(COUNTS, {"ws": FILTERS, "filter": flt})
    assert data["workflowRunStatusCounts"] == reference_counts(world.filters, flt)


async def test_status_counts_of_an_empty_workspace_are_all_zero(
    reader: GraphQLClient, world: World
) -> None:
    data = await reader.data(COUNTS, {"ws": EMPTY})
    assert data["workflowRunStatusCounts"] == [{"status": s, "count": 0} for s in STATUS_ENUM]


async def test_status_counts_include_statuses_without_runs(
    reader: GraphQLClient, world: World
) -> None:
    data = await reader.data(COUNTS, {"ws": PENDING_ONLY})
    expected = [{"status": s, "count": 2 if s == "PENDING" else 0} for s in STATUS_ENUM]
    assert data["workflowRunStatusCounts"] == expected


async def test_status_counts_add_up_to_the_list_total(reader: GraphQLClient, world: World) -> None:
    flt = {"mode": "SYNC", "rootOnly": True}
    data = await reader.data(COUNTS, {"ws": PAGES, "filter": flt})
    _, total = await all_ids(reader, PAGES, flt=flt)
    assert sum(c["count"] for c in data["workflowRunStatusCounts"]) == total


# --- workflowRun(id) ------------------------------------------------------------------------


def expected_fields(run: dict[str, Any]) -> dict[str, Any]:
    """The GraphQL view of a reference run, datetimes as instants."""
    return {
        "id": run["id"],
        "workspaceId": run["workspace_id"],
        "subjectId": run["subject_id"],
        "parentRunId": run["parent_run_id"],
        "status": run["status"].upper(),
        "mode": run["mode"].upper(),
        "input": run["input"],
        "output": run["output"],
        "error": run["error"],
        "triggeredBy": run["triggered_by"].upper(),
        "cfWorkflowId": run["cf_workflow_id"],
        "durationMs": run["duration_ms"],
        "userId": run["user_id"],
        "startedAt": run["started_at"],
        "completedAt": run["completed_at"],
        "createdAt": run["created_at"],
        "updatedAt": run["updated_at"],
    }


def as_instants(view: dict[str, Any]) -> dict[str, Any]:
    """An API run with its DateTime fields checked for format and parsed."""
    result = dict(view)
    for name in ("startedAt", "completedAt", "createdAt", "updatedAt"):
        value = view[name]
        if value is not None:
            assert DATETIME_FORMAT.match(value), f"{name}={value!r}"
            result[name] = _instant(value)
    return result


@pytest.mark.parametrize("which", ["parent", "failed", "running"])
async def test_run_by_id_returns_every_field(
    reader: GraphQLClient, world: World, which: str
) -> None:
    run = world.family[which]
    data = await reader.data(RUN, {"id": run["id"]})
    assert as_instants(data["workflowRun"]) == expected_fields(run)


async def test_datetimes_keep_six_fractional_digits_and_an_offset(
    reader: GraphQLClient, world: World
) -> None:
    data = await reader.data(RUN, {"id": world.family["parent"]["id"]})
    run = data["workflowRun"]
    # createdAt has zero microseconds: still six digits.
    assert re.search(r"T03:04:05\.000000(Z|\+00:00)$", run["createdAt"]), run["createdAt"]
    assert re.search(r"T03:04:07\.123456(Z|\+00:00)$", run["startedAt"]), run["startedAt"]


async def test_duration_is_whole_milliseconds_beyond_32_bits(
    reader: GraphQLClient, world: World
) -> None:
    data = await reader.data(RUN, {"id": world.family["parent"]["id"]})
    duration = data["workflowRun"]["durationMs"]
    assert isinstance(duration, int)
    assert duration == 30 * 86_400_000 + 1_234


@pytest.mark.parametrize("which", ["failed", "running"])
async def test_duration_is_null_unless_started_and_terminal(
    reader: GraphQLClient, world: World, which: str
) -> None:
    data = await reader.data(RUN, {"id": world.family[which]["id"]})
    assert data["workflowRun"]["durationMs"] is None


async def test_every_listed_run_agrees_with_the_reference(
    reader: GraphQLClient, world: World
) -> None:
    query = f"""
    query All($ws: ID!) {{
      workflowRuns(workspaceId: $ws, first: 500) {{ nodes {{ {RUN_FIELDS} }} }}
    }}
    """
    reference = by_id(world.filters)
    data = await reader.data(query, {"ws": FILTERS})
    nodes = data["workflowRuns"]["nodes"]
    assert len(nodes) == 500
    for node in nodes:
        assert as_instants(node) == expected_fields(reference[node["id"]])


async def test_run_by_id_agrees_with_the_reference_for_seeded_runs(
    reader: GraphQLClient, world: World
) -> None:
    sample = random.Random(3).sample(world.pages, 25)
    query = "query Many(" + ", ".join(f"$i{n}: ID!" for n in range(len(sample))) + ") {"
    query += " ".join(
        f"r{n}: workflowRun(id: $i{n}) {{ {RUN_FIELDS} }}" for n in range(len(sample))
    )
    query += "}"
    data = await reader.data(query, {f"i{n}": r["id"] for n, r in enumerate(sample)})
    for n, run in enumerate(sample):
        assert as_instants(data[f"r{n}"]) == expected_fields(run)


@pytest.mark.parametrize(
    "value",
    [
        RICH_INPUT,
        [1, "two", {"three": [3.5, None]}],
        "a plain string",
        0,
        -12.5,
        True,
        {},
        [],
    ],
    ids=["object", "array", "string", "zero", "float", "bool", "empty_object", "empty_array"],
)
async def test_input_json_round_trips(reader: GraphQLClient, world: World, value: Any) -> None:
    created = await create_run(reader, WRITES, input=value)
    assert created["input"] == value
    data = await reader.data(RUN, {"id": created["id"]})
    assert data["workflowRun"]["input"] == value


async def test_absent_input_reads_back_as_null(reader: GraphQLClient, world: World) -> None:
    created = await create_run(reader, WRITES)
    data = await reader.data(RUN, {"id": created["id"]})
    assert data["workflowRun"]["input"] is None


@pytest.mark.parametrize(
    "run_id", ["run_00000000000000000000000000", "nope", "", "run_" + "x" * 200]
)
async def test_unknown_run_id_is_null(reader: GraphQLClient, world: World, run_id: str) -> None:
    body = await reader.execute(RUN, {"id": run_id})
    assert body.get("errors") is None
    assert body["data"] == {"workflowRun": None}


# --- nested: parent and children ---------------------------------------------------------------

NESTED_PARENT = """
query Page($ws: ID!) {
  workflowRuns(workspaceId: $ws, first: 300, orderBy: CREATED_AT_ASC) {
    nodes { id parent { id status subjectId parentRunId createdAt } }
  }
}
"""


async def test_parent_is_the_parent_run_or_null(reader: GraphQLClient, world: World) -> None:
    data = await reader.data(NESTED_PARENT, {"ws": FILTERS})
    reference = by_id(world.filters)
    nodes = data["workflowRuns"]["nodes"]
    assert any(n["parent"] for n in nodes)
    assert any(n["parent"] is None for n in nodes)
    for node in nodes:
        parent_id = reference[node["id"]]["parent_run_id"]
        if parent_id is None:
            assert node["parent"] is None
            continue
        parent = reference[parent_id]
        assert node["parent"]["id"] == parent_id
        assert node["parent"]["status"] == parent["status"].upper()
        assert node["parent"]["subjectId"] == parent["subject_id"]
        assert node["parent"]["parentRunId"] == parent["parent_run_id"]
        assert _instant(node["parent"]["createdAt"]) == parent["created_at"]


async def test_parent_of_a_run_by_id(reader: GraphQLClient, world: World) -> None:
    query = "query P($id: ID!) { workflowRun(id: $id) { parent { id parent { id } } } }"
    child = await reader.data(query, {"id": world.family["failed"]["id"]})
    assert child["workflowRun"]["parent"] == {"id": world.family["parent"]["id"], "parent": None}
    root = await reader.data(query, {"id": world.family["parent"]["id"]})
    assert root["workflowRun"]["parent"] is None


CHILDREN = """
query Children($id: ID!, $status: [WorkflowRunStatus!], $first: Int, $after: String) {
  workflowRun(id: $id) {
    children(status: $status, first: $first, after: $after) {
      totalCount
      edges { cursor node { id parentRunId } }
      nodes { id }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


def reference_children(runs: Runs, parent_id: str, status: list[str] | None = None) -> list[str]:
    return reference_ids(
        runs, status=status, flt={"parentRunId": parent_id}, order="CREATED_AT_ASC"
    )


async def children_page(client: GraphQLClient, run_id: str, **args: Any) -> dict[str, Any]:
    data = await client.data(CHILDREN, {"id": run_id, **args})
    page: dict[str, Any] = data["workflowRun"]["children"]
    return page


async def test_children_default_to_the_50_oldest(reader: GraphQLClient, world: World) -> None:
    hub = _hub(world.tree)
    expected = reference_children(world.tree, hub)
    assert len(expected) > 50
    page = await children_page(reader, hub)
    assert check_page_shape(page) == expected[:50]
    assert page["totalCount"] == len(expected)
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["hasPreviousPage"] is False
    assert {e["node"]["parentRunId"] for e in page["edges"]} == {hub}


@pytest.mark.parametrize("size", [1, 7, 500])
async def test_children_pages_return_each_child_once_oldest_first(
    reader: GraphQLClient, world: World, size: int
) -> None:
    hub = _hub(world.tree)
    expected = reference_children(world.tree, hub)
    seen: list[str] = []
    after = None
    for _ in range(len(expected) + 2):
        page = await children_page(reader, hub, first=size, after=after)
        ids = check_page_shape(page)
        start = len(seen)
        assert ids == expected[start : start + size], f"page at {start}"
        assert page["totalCount"] == len(expected)
        assert page["pageInfo"]["hasPreviousPage"] == (start > 0), f"page at {start}"
        seen += ids
        assert page["pageInfo"]["hasNextPage"] == (len(seen) < len(expected))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected


@pytest.mark.parametrize(
    "status",
    [["COMPLETED"], ["FAILED", "CANCELLED", "TIMED_OUT"], list(STATUS_ENUM)],
    ids=["one", "several", "all"],
)
async def test_children_status_filter_matches_the_reference(
    reader: GraphQLClient, world: World, status: list[str]
) -> None:
    hub = _hub(world.tree)
    expected = reference_children(world.tree, hub, status)
    assert expected
    page = await children_page(reader, hub, status=status, first=500)
    assert check_page_shape(page) == expected
    assert page["totalCount"] == len(expected)


async def test_children_status_filter_pages_with_after(reader: GraphQLClient, world: World) -> None:
    hub = _hub(world.tree)
    status = ["COMPLETED", "RUNNING"]
    expected = reference_children(world.tree, hub, status)
    first = await children_page(reader, hub, status=status, first=5)
    second = await children_page(
        reader, hub, status=status, first=5, after=first["pageInfo"]["endCursor"]
    )
    assert check_page_shape(first) + check_page_shape(second) == expected[:10]
    assert second["totalCount"] == len(expected)


async def test_children_with_an_empty_status_list_are_none(
    reader: GraphQLClient, world: World
) -> None:
    page = await children_page(reader, _hub(world.tree), status=[])
    assert check_page_shape(page) == []
    assert page["totalCount"] == 0
    assert page["pageInfo"]["hasNextPage"] is False


async def test_children_of_a_leaf_are_empty(reader: GraphQLClient, world: World) -> None:
    page = await children_page(reader, _leaf(world.tree))
    assert check_page_shape(page) == []
    assert page["totalCount"] == 0
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_children_of_every_run_in_a_page_match_the_reference(
    reader: GraphQLClient, world: World
) -> None:
    query = """
    query Page($ws: ID!) {
      workflowRuns(workspaceId: $ws, first: 150, orderBy: CREATED_AT_ASC) {
        nodes { id children(first: 3) { totalCount nodes { id } pageInfo { hasNextPage } } }
      }
    }
    """
    data = await reader.data(query, {"ws": TREE})
    nodes = data["workflowRuns"]["nodes"]
    assert sum(1 for n in nodes if n["children"]["totalCount"] > 3) >= 3
    for node in nodes:
        expected = reference_children(world.tree, node["id"])
        children = node["children"]
        assert [c["id"] for c in children["nodes"]] == expected[:3], node["id"]
        assert children["totalCount"] == len(expected)
        assert children["pageInfo"]["hasNextPage"] == (len(expected) > 3)


async def test_aliased_children_fields_keep_their_own_arguments(
    reader: GraphQLClient, world: World
) -> None:
    query = """
    query Page($ws: ID!) {
      workflowRuns(workspaceId: $ws, first: 60, orderBy: CREATED_AT_ASC) {
        nodes {
          id
          oldest: children(first: 2) { totalCount nodes { id } }
          done: children(status: [COMPLETED], first: 4) { totalCount nodes { id } }
          none: children(status: []) { totalCount nodes { id } }
        }
      }
    }
    """
    data = await reader.data(query, {"ws": TREE})
    for node in data["workflowRuns"]["nodes"]:
        every = reference_children(world.tree, node["id"])
        done = reference_children(world.tree, node["id"], ["COMPLETED"])
        assert node["oldest"] == {"totalCount": len(every), "nodes": [{"id": i} for i in every[:2]]}
        assert node["done"] == {"totalCount": len(done), "nodes": [{"id": i} for i in done[:4]]}
        assert node["none"] == {"totalCount": 0, "nodes": []}


# --- nested: events -------------------------------------------------------------------------

EVENTS = """
query Events($id: ID!) {
  workflowRun(id: $id) {
    id
    events {
      cursor runId workspaceId previousStatus status occurredAt
      run { id status startedAt completedAt updatedAt output }
    }
  }
}
"""

LIFECYCLE = """
mutation Start($id: ID!) { startWorkflowRun(id: $id) { status } }
mutation Wait($id: ID!) { markWorkflowRunWaiting(id: $id) { status } }
mutation Resume($id: ID!) { resumeWorkflowRun(id: $id) { status } }
mutation Complete($id: ID!, $output: JSON) {
  completeWorkflowRun(id: $id, output: $output) { status }
}
"""


async def move(client: GraphQLClient, operation: str, run_id: str, **extra: Any) -> None:
    """Apply one lifecycle mutation through the API."""
    response = await client.http.post(
        client.url,
        json={"query": LIFECYCLE, "operationName": operation, "variables": {"id": run_id, **extra}},
        headers=client.headers(client.token),
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.json()


async def test_events_list_the_history_oldest_first(reader: GraphQLClient, world: World) -> None:
    run = await create_run(reader, WRITES)
    for operation in ("Start", "Wait", "Resume"):
        await move(reader, operation, run["id"])
    await move(reader, "Complete", run["id"], output={"ok": 1})
    data = await reader.data(EVENTS, {"id": run["id"]})
    events = data["workflowRun"]["events"]
    assert [e["status"] for e in events] == [
        "PENDING",
        "RUNNING",
        "WAITING",
        "RUNNING",
        "COMPLETED",
    ]
    assert [e["previousStatus"] for e in events] == [
        None,
        "PENDING",
        "RUNNING",
        "WAITING",
        "RUNNING",
    ]
    assert {e["runId"] for e in events} == {run["id"]}
    assert {e["workspaceId"] for e in events} == {WRITES}
    occurred = [_instant(e["occurredAt"]) for e in events]
    assert occurred == sorted(occurred)
    assert len({e["cursor"] for e in events}) == len(events)


async def test_creation_event_has_no_previous_status(reader: GraphQLClient, world: World) -> None:
    run = await create_run(reader, WRITES)
    data = await reader.data(EVENTS, {"id": run["id"]})
    (event,) = data["workflowRun"]["events"]
    assert event["previousStatus"] is None
    assert event["status"] == "PENDING"
    assert DATETIME_FORMAT.match(event["occurredAt"])
    assert _instant(event["occurredAt"]) == _instant(run["createdAt"])


async def test_each_event_shows_the_run_right_after_it(reader: GraphQLClient, world: World) -> None:
    run = await create_run(reader, WRITES)
    await move(reader, "Start", run["id"])
    await move(reader, "Complete", run["id"], output={"answer": 42})
    data = await reader.data(EVENTS, {"id": run["id"]})
    events = data["workflowRun"]["events"]
    for event in events:
        assert event["run"]["id"] == run["id"]
        assert event["run"]["status"] == event["status"]
    created, started, completed = (e["run"] for e in events)
    assert created["startedAt"] is None
    assert created["output"] is None
    assert started["startedAt"] is not None
    assert started["completedAt"] is None
    assert completed["output"] == {"answer": 42}
    assert completed["completedAt"] is not None
    now = (await reader.data(RUN, {"id": run["id"]}))["workflowRun"]
    assert completed["updatedAt"] == now["updatedAt"]
    assert completed["startedAt"] == now["startedAt"]


async def test_the_last_events_run_is_the_current_run(reader: GraphQLClient, world: World) -> None:
    run = await create_run(reader, WRITES, input={"k": [1, 2]}, cfWorkflowId="cf-1")
    await move(reader, "Start", run["id"])
    await move(reader, "Complete", run["id"], output={"done": True})
    query = f"""
    query Last($id: ID!) {{
      workflowRun(id: $id) {{ {RUN_FIELDS} events {{ status run {{ {RUN_FIELDS} }} }} }}
    }}
    """
    data = await reader.data(query, {"id": run["id"]})
    current = dict(data["workflowRun"])
    events = current.pop("events")
    assert events[-1]["run"] == current
    assert isinstance(current["durationMs"], int)
    assert events[0]["run"] == {**run, "userId": current["userId"]}


async def test_events_of_different_runs_stay_apart(reader: GraphQLClient, world: World) -> None:
    first = await create_run(reader, WRITES)
    second = await create_run(reader, WRITES)
    await move(reader, "Start", second["id"])
    query = """
    query Two($a: ID!, $b: ID!) {
      a: workflowRun(id: $a) { events { runId status } }
      b: workflowRun(id: $b) { events { runId status } }
    }
    """
    data = await reader.data(query, {"a": first["id"], "b": second["id"]})
    assert data["a"]["events"] == [{"runId": first["id"], "status": "PENDING"}]
    assert data["b"]["events"] == [
        {"runId": second["id"], "status": "PENDING"},
        {"runId": second["id"], "status": "RUNNING"},
    ]


# --- nested fields after a write, within one operation ----------------------------------------
# Mutations run one after another; each result shows the run as it is after that mutation,
# nested fields included (README: "event.run is the run right after that event"; events list
# "every transition").


async def test_a_later_mutation_in_the_same_operation_sees_its_own_event(
    reader: GraphQLClient, world: World
) -> None:
    run = await create_run(reader, WRITES)
    query = """
    mutation Both($id: ID!) {
      a: startWorkflowRun(id: $id) { status events { status } }
      b: completeWorkflowRun(id: $id) { status events { status } }
    }
    """
    data = await reader.data(query, {"id": run["id"]})
    assert [e["status"] for e in data["a"]["events"]] == ["PENDING", "RUNNING"]
    assert data["b"]["status"] == "COMPLETED"
    assert [e["status"] for e in data["b"]["events"]] == ["PENDING", "RUNNING", "COMPLETED"]


async def test_a_later_mutation_in_the_same_operation_sees_fresh_children(
    reader: GraphQLClient, world: World
) -> None:
    parent = await create_run(reader, WRITES)
    query = """
    mutation TwoChildren($ws: ID!, $parent: ID!) {
      a: createWorkflowRun(input: {workspaceId: $ws, subjectId: "wf_a", triggeredBy: USER,
                                   parentRunId: $parent}) {
        id parent { children { totalCount } }
      }
      b: createWorkflowRun(input: {workspaceId: $ws, subjectId: "wf_b", triggeredBy: USER,
                                   parentRunId: $parent}) {
        id parent { children { totalCount nodes { id } } }
      }
    }
    """
    data = await reader.data(query, {"ws": WRITES, "parent": parent["id"]})
    assert data["a"]["parent"]["children"]["totalCount"] == 1
    children = data["b"]["parent"]["children"]
    assert children["totalCount"] == 2
    assert [c["id"] for c in children["nodes"]] == [data["a"]["id"], data["b"]["id"]]


async def test_a_later_mutation_in_the_same_operation_sees_a_fresh_parent(
    reader: GraphQLClient, world: World
) -> None:
    parent = await create_run(reader, WRITES)
    query = """
    mutation ChildStartChild($ws: ID!, $parent: ID!) {
      a: createWorkflowRun(input: {workspaceId: $ws, subjectId: "wf_a", triggeredBy: USER,
                                   parentRunId: $parent}) { parent { status } }
      started: startWorkflowRun(id: $parent) { status }
      b: createWorkflowRun(input: {workspaceId: $ws, subjectId: "wf_b", triggeredBy: USER,
                                   parentRunId: $parent}) { parent { status } }
    }
    """
    data = await reader.data(query, {"ws": WRITES, "parent": parent["id"]})
    assert data["a"]["parent"]["status"] == "PENDING"
    assert data["started"]["status"] == "RUNNING"
    assert data["b"]["parent"]["status"] == "RUNNING"


# --- N+1: nested fields cost a constant number of statements ----------------------------------


async def statements(app: Starlette, client: GraphQLClient, query: str, first: int) -> int:
    """How many SQL statements the service sends to answer `query` for a page of `first`."""
    before = app.state.runtime.queries
    await client.data(query, {"first": first})
    return int(app.state.runtime.queries - before)


async def assert_constant_cost(app: Starlette, client: GraphQLClient, query: str) -> None:
    # Warm up both shapes once (connection setup, prepared statements).
    await statements(app, client, query, 5)
    await statements(app, client, query, 50)
    small = await statements(app, client, query, 5)
    large = await statements(app, client, query, 50)
    assert large - small <= 1, f"page of 5: {small} statements, page of 50: {large}"


NESTED_PAGE = """
query Page($first: Int) {{
  workflowRuns(workspaceId: "ws-a", first: $first, orderBy: CREATED_AT_DESC) {{
    nodes {{ id {field} }}
  }}
}}
"""


async def test_parents_of_a_page_cost_constant_statements(
    app: Starlette, pool: asyncpg.Pool, client: GraphQLClient
) -> None:
    runs = await seed_runs(pool, "ws-a", 150, rng=random.Random(150), child_ratio=0.9)
    newest = set(reference_ids(runs)[:50])
    assert sum(1 for r in runs if r["id"] in newest and r["parent_run_id"]) >= 30
    await assert_constant_cost(app, client, NESTED_PAGE.format(field="parent { id status }"))


async def test_children_of_a_page_cost_constant_statements(
    app: Starlette, pool: asyncpg.Pool, client: GraphQLClient
) -> None:
    await seed_runs(pool, "ws-a", 150, rng=random.Random(151), child_ratio=0.9)
    await assert_constant_cost(
        app, client, NESTED_PAGE.format(field="children { totalCount nodes { id } }")
    )


async def test_events_of_a_page_cost_constant_statements(
    app: Starlette, client: GraphQLClient
) -> None:
    for n in range(55):
        run = await create_run(client, subjectId=f"wf_{n}")
        if n % 2:
            await move(client, "Start", run["id"])
    await assert_constant_cost(app, client, NESTED_PAGE.format(field="events { status }"))


# --- bad arguments ------------------------------------------------------------------------------

VALIDATION_CODES = {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}
BAD_INPUT_CODES = {"BAD_USER_INPUT", *VALIDATION_CODES}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


BAD_LIST_ARGUMENTS: dict[str, dict[str, Any]] = {
    "first_over_500": {"first": 501},
    "first_zero": {"first": 0},
    "first_negative": {"first": -1},
    "last_over_500": {"last": 501},
    "last_zero": {"last": 0},
    "last_negative": {"last": -3},
    "first_and_last": {"first": 5, "last": 5},
    "garbage_after": {"first": 5, "after": "not a cursor!!"},
    "garbage_before": {"last": 5, "before": "%%%"},
    "base64_junk_after": {"first": 5, "after": b64(b"junk junk junk")},
    "base64_junk_before": {"last": 5, "before": b64(b"\xff\xfe\x00binary")},
    "base64_json_object_after": {"first": 5, "after": b64(b'{"version": 1}')},
    "base64_json_list_after": {"first": 5, "after": b64(b'[1, "xx", "yesterday", 3]')},
    "base64_huge_timestamp_after": {
        "first": 5,
        "after": b64(json.dumps([1, "00000000", 10**30, "run_x"]).encode()),
    },
    "non_ascii_after": {"first": 5, "after": "ümlaut"},
    "empty_after": {"first": 5, "after": ""},
    "unknown_order": {"orderBy": "SIDEWAYS"},
    "null_order": {"orderBy": None},
    "unknown_status": {"status": ["NOPE"]},
    "lowercase_status": {"status": ["pending"]},
    "first_as_string": {"first": "ten"},
    "first_as_float": {"first": 1.5},
    "first_beyond_int32": {"first": 2**31},
    "status_not_a_list_of_enums": {"status": [{"a": 1}]},
    "filter_unknown_field": {"filter": {"nope": 1}},
    "filter_unknown_trigger": {"filter": {"triggeredBy": ["ROBOT"]}},
    "filter_root_only_as_string": {"filter": {"rootOnly": "yes"}},
    "created_after_garbage": {"filter": {"createdAfter": "yesterday"}},
    "created_after_impossible_date": {"filter": {"createdAfter": "2025-13-45T00:00:00+00:00"}},
    "created_after_without_offset": {"filter": {"createdAfter": "2025-03-01T10:00:00.123456"}},
    "created_before_without_offset": {"filter": {"createdBefore": "2025-03-01T10:00:00"}},
    "created_after_as_number": {"filter": {"createdAfter": 1_740_000_000}},
    "created_before_date_only": {"filter": {"createdBefore": "2025-03-01"}},
}


def assert_refused(response: Any, codes: set[str]) -> None:
    """A client error: < 500, coded errors, no data for the list, no traceback."""
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    body = response.json()
    assert body.get("errors"), body
    for error in body["errors"]:
        assert error.get("extensions", {}).get("code") in codes, error
    data = body.get("data")
    assert not data or data.get("workflowRuns") is None, body


@pytest.mark.parametrize("case", list(BAD_LIST_ARGUMENTS))
async def test_bad_list_arguments_are_refused_as_user_input(
    reader: GraphQLClient, world: World, case: str
) -> None:
    variables = {"ws": SMALL, "orderBy": "CREATED_AT_DESC", **BAD_LIST_ARGUMENTS[case]}
    response = await reader.post(LIST, variables)
    assert_refused(response, BAD_INPUT_CODES)
    await assert_still_serving(reader, SMALL)


BAD_DOCUMENTS: dict[str, str] = {
    "inline_unknown_enum": (
        '{ workflowRuns(workspaceId: "ws-small", orderBy: SIDEWAYS) { totalCount } }'
    ),
    "inline_first_as_string": (
        '{ workflowRuns(workspaceId: "ws-small", first: "5") { totalCount } }'
    ),
    "inline_first_over_500": '{ workflowRuns(workspaceId: "ws-small", first: 501) { totalCount } }',
    "inline_first_and_last": (
        '{ workflowRuns(workspaceId: "ws-small", first: 1, last: 1) { totalCount } }'
    ),
    "inline_int_overflow": (
        '{ workflowRuns(workspaceId: "ws-small", first: 99999999999) { totalCount } }'
    ),
    "inline_datetime_without_offset": (
        '{ workflowRuns(workspaceId: "ws-small", filter: {createdAfter: "2025-03-01T10:00:00"}) '
        "{ totalCount } }"
    ),
    "inline_datetime_garbage": (
        '{ workflowRunStatusCounts(workspaceId: "ws-small", filter: {createdBefore: "soon"}) '
        "{ status } }"
    ),
    "missing_workspace": "{ workflowRuns { totalCount } }",
    "unknown_field": '{ workflowRuns(workspaceId: "ws-small") { nope } }',
    "syntax_error": '{ workflowRuns(workspaceId: "ws-small" { totalCount }',
    "inline_children_first_over_500": (
        '{ workflowRuns(workspaceId: "ws-small", first: 2) '
        "{ nodes { children(first: 501) { totalCount } } } }"
    ),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
async def test_bad_documents_are_refused_as_user_input(
    reader: GraphQLClient, world: World, case: str
) -> None:
    response = await reader.post(BAD_DOCUMENTS[case])
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    body = response.json()
    assert body.get("errors"), body
    for error in body["errors"]:
        assert error.get("extensions", {}).get("code") in BAD_INPUT_CODES, error
    await assert_still_serving(reader, SMALL)


@pytest.mark.parametrize(
    ("first", "after"),
    [(0, None), (501, None), (-1, None), (5, "garbage"), (5, b64(b"junk"))],
    ids=["first_zero", "first_over_500", "first_negative", "garbage_after", "base64_junk"],
)
async def test_bad_children_arguments_are_refused_as_user_input(
    reader: GraphQLClient, world: World, first: int, after: str | None
) -> None:
    query = """
    query Children($id: ID!, $first: Int, $after: String) {
      workflowRun(id: $id) { id children(first: $first, after: $after) { totalCount } }
    }
    """
    variables = {"id": world.family["parent"]["id"], "first": first, "after": after}
    response = await reader.post(query, variables)
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    body = response.json()
    assert body.get("errors"), body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    await assert_still_serving(reader, SMALL)


async def test_cursor_from_another_workspace_is_refused(
    reader: GraphQLClient, world: World
) -> None:
    foreign = await list_page(reader, SMALL_OTHER, first=5)
    for argument in (
        {"first": 5, "after": foreign["pageInfo"]["endCursor"]},
        {"last": 5, "before": foreign["pageInfo"]["startCursor"]},
    ):
        response = await reader.post(LIST, {"ws": SMALL, "orderBy": "CREATED_AT_DESC", **argument})
        assert_refused(response, {"BAD_USER_INPUT"})
    await assert_still_serving(reader, SMALL)


@pytest.mark.parametrize(
    ("made_with", "used_with"),
    [
        ("CREATED_AT_DESC", "CREATED_AT_ASC"),
        ("CREATED_AT_ASC", "UPDATED_AT_DESC"),
        ("UPDATED_AT_DESC", "CREATED_AT_DESC"),
    ],
)
async def test_cursor_from_another_order_is_refused(
    reader: GraphQLClient, world: World, made_with: str, used_with: str
) -> None:
    page = await list_page(reader, SMALL, orderBy=made_with, first=5)
    for argument in (
        {"first": 5, "after": page["pageInfo"]["endCursor"]},
        {"last": 5, "before": page["pageInfo"]["startCursor"]},
    ):
        response = await reader.post(LIST, {"ws": SMALL, "orderBy": used_with, **argument})
        assert_refused(response, {"BAD_USER_INPUT"})
    await assert_still_serving(reader, SMALL)


async def test_cursor_from_a_children_list_is_refused_by_the_workspace_list(
    reader: GraphQLClient, world: World
) -> None:
    page = await children_page(reader, _hub(world.tree), first=3)
    response = await reader.post(
        LIST,
        {
            "ws": TREE,
            "orderBy": "CREATED_AT_ASC",
            "first": 5,
            "after": page["pageInfo"]["endCursor"],
        },
    )
    assert_refused(response, {"BAD_USER_INPUT"})


@pytest.mark.parametrize(
    "instant",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59.999999-14:00",
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59.999999+00:00",
    ],
)
@pytest.mark.parametrize("key", ["createdAfter", "createdBefore"])
async def test_extreme_datetimes_are_answered_or_refused_never_crash(
    reader: GraphQLClient, world: World, instant: str, key: str
) -> None:
    flt = {key: instant}
    response = await reader.post(LIST, {"ws": EXTREME, "orderBy": "CREATED_AT_DESC", "filter": flt})
    assert response.status_code < 500, response.text
    body = response.json()
    if body.get("errors"):
        assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}, body
    else:
        expected = reference_ids(world.extreme, flt=flt)
        assert [n["id"] for n in body["data"]["workflowRuns"]["nodes"]] == expected
    await assert_still_serving(reader, EXTREME)


@pytest.mark.parametrize("field", ["subjectId", "userId", "parentRunId"])
async def test_nul_characters_in_filters_are_bad_user_input(
    reader: GraphQLClient, world: World, field: str
) -> None:
    response = await reader.post(
        LIST, {"ws": SMALL, "orderBy": "CREATED_AT_DESC", "filter": {field: "wf_\u0000x"}}
    )
    assert_refused(response, {"BAD_USER_INPUT"})
    await assert_still_serving(reader, SMALL)


async def test_nul_character_in_a_run_id_is_never_a_crash(
    reader: GraphQLClient, world: World
) -> None:
    response = await reader.post(RUN, {"id": "run_\u0000"})
    assert response.status_code < 500, response.text
    body = response.json()
    if body.get("errors"):
        assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    else:
        assert body["data"] == {"workflowRun": None}
    await assert_still_serving(reader, SMALL)
