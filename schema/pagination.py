"""Relay pagination: the first/after/last/before rules, and the page a connection shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from db import runs
from db.records import Run, RunOrder
from db.runs import Keyset, RunFilter
from schema.compiled import Compiled
from schema.context import Context, Limits
from schema.cursors import decode_cursor, encode_cursor
from schema.errors import BadUserInput


@dataclass(frozen=True, slots=True)
class PageRequest:
    """first/after/last/before, checked and decoded."""

    limit: int
    after: Keyset | None
    before: Keyset | None
    backward: bool


def page_request(
    limits: Limits,
    scope: str,
    order: RunOrder,
    *,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> PageRequest:
    """Apply Relay's rules: `first` reads forwards from `after`, `last` backwards from `before`."""
    if first is not None and last is not None:
        raise BadUserInput("Pass either first or last, not both.")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 1 <= value <= limits.max_page_size:
            raise BadUserInput(f"{name} must be between 1 and {limits.max_page_size}.")
    return PageRequest(
        limit=last if last is not None else (first or limits.default_page_size),
        after=None if after is None else decode_cursor(after, scope, order),
        before=None if before is None else decode_cursor(before, scope, order),
        backward=last is not None,
    )


@dataclass
class Page:
    """One page of a run list, with what its connection may compute on demand."""

    runs: list[Run]
    cursor: Callable[[Run], str]
    has_next: Callable[[], Awaitable[bool]]
    has_previous: Callable[[], Awaitable[bool]]
    total: Callable[[], Awaitable[int]]

    def start_cursor(self) -> str | None:
        return self.cursor(self.runs[0]) if self.runs else None

    def end_cursor(self) -> str | None:
        return self.cursor(self.runs[-1]) if self.runs else None


def _keyset(order: RunOrder, run: Run) -> Keyset:
    return Keyset(getattr(run, order.column), run.id)


def _including(bound: Keyset | None) -> Keyset | None:
    return None if bound is None else Keyset(bound.value, bound.id, inclusive=True)


async def run_list_page(
    ctx: Context,
    workspace_id: str,
    flt: RunFilter,
    order: RunOrder,
    request: PageRequest,
    *,
    scope: str,
    first_page: tuple[list[Run], bool] | None = None,
    compiled: Compiled | None = None,
) -> Page:
    """One page of a workspace's runs, with its neighbours and count computed on demand.

    `first_page` is the page when a loader already fetched it (children lists); `compiled`,
    the selections to fetch as JSON instead of as runs (see schema/compiled.py).
    """
    if first_page is None:
        async with ctx.connection([workspace_id]) as conn:
            if compiled is not None:
                first_page = await runs.list_runs_json(  # type: ignore[assignment]
                    conn,
                    workspace_id,
                    flt,
                    order,
                    compiled,
                    limit=request.limit,
                    after=request.after,
                    before=request.before,
                    backward=request.backward,
                )
            else:
                first_page = await runs.list_runs(
                    conn,
                    workspace_id,
                    flt,
                    order,
                    limit=request.limit,
                    after=request.after,
                    before=request.before,
                    backward=request.backward,
                )
    assert first_page is not None
    page_runs, more = first_page

    async def exists_beyond(reference: Keyset | None, *, backward: bool) -> bool:
        # Whether a matching run lies before (backward) or after the reference in list order.
        if reference is None:
            return False
        async with ctx.connection([workspace_id]) as conn:
            found, _ = await runs.list_runs(
                conn,
                workspace_id,
                flt,
                order,
                limit=1,
                after=None if backward else reference,
                before=reference if backward else None,
                backward=backward,
            )
        return bool(found)

    # Neighbours of the page: beyond its first and last runs; for an empty page, at or beyond
    # the cursor (whose own run, if it still matches, lies on that side).
    first_key = _keyset(order, page_runs[0]) if page_runs else _including(request.after)
    last_key = _keyset(order, page_runs[-1]) if page_runs else _including(request.before)

    async def has_next() -> bool:
        if not request.backward:
            return more
        return await exists_beyond(last_key if request.before else None, backward=False)

    async def has_previous() -> bool:
        if request.backward:
            return more
        return await exists_beyond(first_key if request.after else None, backward=True)

    async def total() -> int:
        async with ctx.connection([workspace_id]) as conn:
            return await runs.count_runs(conn, workspace_id, flt)

    return Page(
        runs=page_runs,
        cursor=lambda run: encode_cursor(scope, order, run),
        has_next=has_next,
        has_previous=has_previous,
        total=total,
    )
