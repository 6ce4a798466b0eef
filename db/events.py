"""Reading the event streams: a workspace's events after a position, a run's history, pruning.

A workspace's events carry `seq` 1, 2, 3, ... with no gap, in commit order (see
`db/lifecycle.py` and docs/architecture.md), so "every event after N" is a plain range read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from db.errors import CursorExpired, translated
from db.records import RunEvent

log = logging.getLogger(__name__)

# The snapshot without its input and output, which come as their own JSON text, so that an
# event's run serves them byte for byte like the run itself does.
_EVENT_COLUMNS = (
    "workspace_id, seq, run_id, previous_status, status, occurred_at, "
    "run - 'input' - 'output' AS run, run -> 'input' AS run_input, run -> 'output' AS run_output"
)


@dataclass(frozen=True, slots=True)
class StreamBounds:
    """What a workspace's stream holds: events (pruned_through, last_seq]."""

    pruned_through: int
    last_seq: int


_BOUNDS = """
SELECT pruned_through, last_seq FROM workflow_run_streams WHERE workspace_id = $1
"""


@translated
async def stream_bounds(conn: asyncpg.Connection, workspace_id: str) -> StreamBounds:
    """The stream's bounds; a workspace that never had an event has (0, 0)."""
    row = await conn.fetchrow(_BOUNDS, workspace_id)
    return StreamBounds(0, 0) if row is None else StreamBounds(row[0], row[1])


async def check_resumable(conn: asyncpg.Connection, workspace_id: str, after: int) -> StreamBounds:
    """The bounds, after checking that every event after `after` is still stored."""
    bounds = await stream_bounds(conn, workspace_id)
    if after < bounds.pruned_through:
        raise CursorExpired(
            "Events after this cursor are past the retention window; refetch the current state."
        )
    return bounds


_AFTER = f"""
SELECT {_EVENT_COLUMNS}
  FROM workflow_run_events
 WHERE workspace_id = $1 AND seq > $2
 ORDER BY seq
 LIMIT $3
"""


@translated
async def events_after(
    conn: asyncpg.Connection, workspace_id: str, after: int, limit: int
) -> list[RunEvent]:
    """Up to `limit` events of the workspace after position `after`, in order."""
    return [RunEvent.from_row(r) for r in await conn.fetch(_AFTER, workspace_id, after, limit)]


_NEW_EVENTS = f"""
SELECT e.*
  FROM unnest($1::text[], $2::bigint[]) AS w(ws, after)
 CROSS JOIN LATERAL (
    SELECT {_EVENT_COLUMNS}
      FROM workflow_run_events
     WHERE workspace_id = w.ws AND seq > w.after
     ORDER BY seq
     LIMIT $3
 ) AS e
"""


@translated
async def new_events(
    conn: asyncpg.Connection, positions: Mapping[str, int], limit: int
) -> dict[str, list[RunEvent]]:
    """For each workspace, up to `limit` events after its position: one statement for all."""
    if not positions:
        return {}
    workspaces = list(positions)
    rows = await conn.fetch(_NEW_EVENTS, workspaces, [positions[w] for w in workspaces], limit)
    found: dict[str, list[RunEvent]] = {w: [] for w in workspaces}
    for row in rows:
        found[row["workspace_id"]].append(RunEvent.from_row(row))
    return found


_RUN_HISTORY = f"""
SELECT {_EVENT_COLUMNS}
  FROM workflow_run_events
 WHERE workspace_id = $1 AND run_id = ANY($2::text[])
 ORDER BY run_id, seq
"""


@translated
async def run_histories(
    conn: asyncpg.Connection, workspace_id: str, run_ids: Sequence[str]
) -> dict[str, list[RunEvent]]:
    """Each run's stored events, oldest first."""
    found: dict[str, list[RunEvent]] = {r: [] for r in run_ids}
    for row in await conn.fetch(_RUN_HISTORY, workspace_id, list(run_ids)):
        found[row["run_id"]].append(RunEvent.from_row(row))
    return found


_PRUNE = """
WITH cut AS (
    -- Per workspace, the newest event older than the window: everything up to it goes, so
    -- what remains of a stream is always one unbroken range.
    SELECT workspace_id, max(seq) AS through
      FROM workflow_run_events
     WHERE occurred_at < now() - $1::interval
     GROUP BY workspace_id
), gone AS (
    DELETE FROM workflow_run_events e
     USING cut
     WHERE e.workspace_id = cut.workspace_id AND e.seq <= cut.through
    RETURNING e.workspace_id
), marked AS (
    UPDATE workflow_run_streams s
       SET pruned_through = greatest(s.pruned_through, cut.through)
      FROM cut
     WHERE s.workspace_id = cut.workspace_id
)
SELECT count(*) FROM gone
"""


@translated
async def prune_events(conn: asyncpg.Connection, retention: timedelta) -> int:
    """Delete events older than `retention`; returns how many went."""
    count: int = await conn.fetchval(_PRUNE, retention)
    return count


# Several processes may prune; one at a time is enough.
_PRUNE_LOCK = 0x7766_7275_6E74


async def prune_periodically(
    connect: Callable[[], Awaitable[asyncpg.Connection]], retention: timedelta, interval: float
) -> None:
    """Prune old events every `interval` seconds, forever (run it as a task).

    The one unit of work that is not scoped to workspaces: retention spans them all, and it
    deletes, which the service's role may not. It runs as the tables' owner, on a connection
    of its own (`connect`).
    """
    while True:
        try:
            conn = await connect()
            try:
                async with conn.transaction():
                    if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _PRUNE_LOCK):
                        pruned = await prune_events(conn, retention)
                        if pruned:
                            log.info("pruned %d events older than %s", pruned, retention)
            finally:
                await conn.close()
        except Exception as exc:  # this loop must outlive any failure
            log.warning("event pruning failed: %r", exc)
        await asyncio.sleep(interval)
