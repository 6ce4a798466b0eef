"""Per-request DataLoaders: a page of runs asking for `parent`, `children` or `events` costs one
query per field, not one per run."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg
from strawberry.dataloader import DataLoader

from db import events, runs
from db.records import Run, RunEvent, RunStatus


@dataclass(frozen=True, slots=True)
class ChildrenKey:
    """One `children` field: whose children, which statuses, which page."""

    workspace_id: str
    parent_id: str
    statuses: frozenset[RunStatus] | None
    limit: int
    after: runs.Keyset | None


@dataclass(frozen=True, slots=True)
class ChildrenCountKey:
    workspace_id: str
    parent_id: str
    statuses: frozenset[RunStatus] | None


ChildrenPage = tuple[list[Run], bool]
# Opens a connection that sees the given workspaces (the request context's `connection`).
Connect = Callable[[Iterable[str]], AbstractAsyncContextManager[asyncpg.Connection]]


class Loaders:
    """The loaders of one request. Sockets pass `cache=False`: a subscription lives for hours,
    and each event must see the runs as they are then. Each loader is made on first use:
    most requests, and every shared subscription, need none or one."""

    def __init__(self, connect: Connect, *, cache: bool = True) -> None:
        self._connection = connect
        self._cache = cache

    @functools.cached_property
    def run(self) -> DataLoader[tuple[str, str], Run | None]:
        return DataLoader(self._runs, cache=self._cache)

    @functools.cached_property
    def events(self) -> DataLoader[tuple[str, str], list[RunEvent]]:
        return DataLoader(self._events, cache=self._cache)

    @functools.cached_property
    def children(self) -> DataLoader[ChildrenKey, ChildrenPage]:
        return DataLoader(self._children, cache=self._cache)

    @functools.cached_property
    def children_count(self) -> DataLoader[ChildrenCountKey, int]:
        return DataLoader(self._children_count, cache=self._cache)

    def fresh(self) -> Loaders:
        """New loaders with empty caches (after a write)."""
        return Loaders(self._connection, cache=self._cache)

    async def _runs(self, keys: Sequence[tuple[str, str]]) -> list[Run | None]:
        async with self._connection(k[0] for k in keys) as conn:
            found = await runs.get_runs(conn, keys)
        return [found.get(k) for k in keys]

    async def _events(self, keys: Sequence[tuple[str, str]]) -> list[list[RunEvent]]:
        by_workspace: dict[str, list[str]] = defaultdict(list)
        for workspace_id, run_id in keys:
            by_workspace[workspace_id].append(run_id)
        found: dict[tuple[str, str], list[RunEvent]] = {}
        async with self._connection(by_workspace) as conn:
            for workspace_id, run_ids in by_workspace.items():
                histories = await events.run_histories(conn, workspace_id, run_ids)
                for run_id, history in histories.items():
                    found[(workspace_id, run_id)] = history
        return [found[k] for k in keys]

    async def _children(self, keys: Sequence[ChildrenKey]) -> list[ChildrenPage]:
        # Keys that differ only by parent share one statement.
        groups: dict[tuple[object, ...], list[ChildrenKey]] = defaultdict(list)
        for key in keys:
            groups[(key.workspace_id, key.statuses, key.limit, key.after)].append(key)
        found: dict[ChildrenKey, ChildrenPage] = {}
        async with self._connection(k.workspace_id for k in keys) as conn:
            for group in groups.values():
                first = group[0]
                pages = await runs.list_children(
                    conn,
                    first.workspace_id,
                    [k.parent_id for k in group],
                    first.statuses,
                    limit=first.limit,
                    after=first.after,
                )
                for key in group:
                    found[key] = pages[key.parent_id]
        return [found[k] for k in keys]

    async def _children_count(self, keys: Sequence[ChildrenCountKey]) -> list[int]:
        groups: dict[tuple[str, frozenset[RunStatus] | None], list[ChildrenCountKey]] = defaultdict(
            list
        )
        for key in keys:
            groups[(key.workspace_id, key.statuses)].append(key)
        found: dict[ChildrenCountKey, int] = {}
        async with self._connection(k.workspace_id for k in keys) as conn:
            for (workspace_id, statuses), group in groups.items():
                counts = await runs.count_children(
                    conn, workspace_id, [k.parent_id for k in group], statuses
                )
                for key in group:
                    found[key] = counts[key.parent_id]
        return [found[k] for k in keys]
