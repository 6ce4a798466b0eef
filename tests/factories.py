"""Seeding runs straight into PostgreSQL, fast, for tests that read them back through the API.

`seed_runs` writes a realistic spread of runs in one statement (INSERT ... SELECT FROM unnest)
and returns them as plain dicts: the reference that tests compute expected answers from.
Dicts use the storage spelling: snake_case keys, lowercase enum values ("timed_out"), aware
UTC datetimes with microseconds, `input`/`output` as Python JSON values. No events are written.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from db.ids import new_run_id

STATUSES = (
    "pending",
    "running",
    "waiting",
    "paused",
    "completed",
    "failed",
    "cancelled",
    "timed_out",
)
TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
MODES = ("sync", "async")
TRIGGERS = ("workflow", "agent", "swarm", "user", "event")
SUBJECTS = ("wf_ingest", "wf_report", "wf_backup", "agt_triage", "agt_writer", "swm_research")
USERS = ("user-alice", "user-bob", "user-carol", "user-dave")

# Common statuses dominate; `timed_out` and `paused` stay rare (a few percent).
STATUS_WEIGHTS = {
    "pending": 8,
    "running": 10,
    "waiting": 5,
    "paused": 3,
    "completed": 45,
    "failed": 15,
    "cancelled": 11,
    "timed_out": 3,
}
TRIGGER_WEIGHTS = {"workflow": 30, "agent": 25, "swarm": 10, "user": 25, "event": 10}

FIELDS = (
    "id",
    "workspace_id",
    "subject_id",
    "parent_run_id",
    "status",
    "mode",
    "input",
    "output",
    "error",
    "triggered_by",
    "cf_workflow_id",
    "duration_ms",
    "user_id",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
)

DEFAULT_START = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def duration_ms(started_at: datetime | None, completed_at: datetime | None) -> int | None:
    """What the contract says durationMs is: whole milliseconds between start and completion."""
    if started_at is None or completed_at is None:
        return None
    return (completed_at - started_at) // _MS


def make_run(workspace_id: str, **fields: Any) -> dict[str, Any]:
    """One run dict with sensible defaults (a PENDING root run); `fields` override them."""
    created = fields.pop("created_at", DEFAULT_START)
    run: dict[str, Any] = {
        "id": new_run_id(),
        "workspace_id": workspace_id,
        "subject_id": "wf_ingest",
        "parent_run_id": None,
        "status": "pending",
        "mode": "async",
        "input": None,
        "output": None,
        "error": None,
        "triggered_by": "user",
        "cf_workflow_id": None,
        "user_id": "user-alice",
        "started_at": None,
        "completed_at": None,
        "created_at": created,
        "updated_at": created,
    }
    run.update(fields)
    run["duration_ms"] = duration_ms(run["started_at"], run["completed_at"])
    return run


_INSERT = """
INSERT INTO workflow_runs (
    workspace_id, id, subject_id, parent_run_id, status, mode, input, output, error,
    triggered_by, cf_workflow_id, user_id, started_at, completed_at, created_at, updated_at)
SELECT workspace_id, id, subject_id, parent_run_id, status, mode, input::jsonb, output::jsonb,
       error, triggered_by, cf_workflow_id, user_id, started_at, completed_at, created_at,
       updated_at
  FROM unnest(
       $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[],
       $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::int[])
       AS t(workspace_id, id, subject_id, parent_run_id, status, mode, input, output, error,
            triggered_by, cf_workflow_id, user_id, started_at, completed_at, created_at,
            updated_at, position)
 ORDER BY position
"""


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def insert_runs(pool: asyncpg.Pool, runs: Sequence[dict[str, Any]]) -> None:
    """Insert run dicts in the given order (parents must come before their children)."""
    if not runs:
        return
    columns: list[list[Any]] = [
        [r["workspace_id"] for r in runs],
        [r["id"] for r in runs],
        [r["subject_id"] for r in runs],
        [r["parent_run_id"] for r in runs],
        [r["status"] for r in runs],
        [r["mode"] for r in runs],
        [_json_text(r["input"]) for r in runs],
        [_json_text(r["output"]) for r in runs],
        [r["error"] for r in runs],
        [r["triggered_by"] for r in runs],
        [r["cf_workflow_id"] for r in runs],
        [r["user_id"] for r in runs],
        [r["started_at"] for r in runs],
        [r["completed_at"] for r in runs],
        [r["created_at"] for r in runs],
        [r["updated_at"] for r in runs],
        list(range(len(runs))),
    ]
    async with pool.acquire() as conn:
        await conn.execute(_INSERT, *columns)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _next_minute(value: datetime) -> datetime:
    floor = value.replace(second=0, microsecond=0)
    return floor if floor == value else floor + timedelta(minutes=1)


def _random_input(rng: random.Random, n: int) -> Any:
    kind = rng.random()
    if kind < 0.15:
        return None
    if kind < 0.25:
        return [n, "ünïcødé ✓", 1.5, None, True]
    return {
        "n": n,
        "prompt": rng.choice(["summarise", "triage", "écrire", "数据"]),
        "options": {"retries": rng.randint(0, 5), "dry_run": rng.random() < 0.5},
        "tags": rng.sample(["a", "b", "c", "d"], k=rng.randint(0, 3)),
    }


def build_runs(
    workspace_id: str,
    count: int,
    *,
    rng: random.Random,
    start: datetime = DEFAULT_START,
    child_ratio: float = 0.3,
) -> list[dict[str, Any]]:
    """`count` run dicts in creation order, consistent with the lifecycle and constraints.

    - created_at grows by random microsecond gaps, and about one run in eight shares its
      created_at with the previous one (ties, broken by id).
    - ids come from `new_run_id()` but are shuffled, so id order is not creation order.
    - updated_at >= every other timestamp; about one run in four snaps its last change to the
      next whole minute, so many runs share an updated_at.
    - completed_at is set exactly for terminal statuses; startedAt only for runs that started.
    - about `child_ratio` of the runs have a parent among the runs created before them; the
      first run is a hub that collects many children, and trees go several levels deep.
    """
    ids = [new_run_id() for _ in range(count)]
    rng.shuffle(ids)
    runs: list[dict[str, Any]] = []
    created = start
    hubs: list[str] = []
    for n in range(count):
        if n > 0 and rng.random() >= 0.125:
            created = created + timedelta(microseconds=rng.randint(1, 4_000_000))
        status = _pick(rng, STATUS_WEIGHTS)
        started: datetime | None = None
        if status in ("running", "waiting", "completed") or (
            status in ("paused", "failed", "cancelled", "timed_out") and rng.random() < 0.7
        ):
            started = created + timedelta(microseconds=rng.randint(0, 3_000_000))
        last_change = started or created
        if status != "pending":
            last_change = last_change + timedelta(microseconds=rng.randint(1, 90_000_000))
        if status != "pending" and rng.random() < 0.25:
            last_change = _next_minute(last_change)
        completed = last_change if status in TERMINAL else None

        parent: str | None = None
        if runs and rng.random() < child_ratio:
            roll = rng.random()
            if roll < 0.3:
                parent = runs[0]["id"]
            elif roll < 0.5 and hubs:
                parent = rng.choice(hubs)
            else:
                parent = rng.choice(runs)["id"]
        run_id = ids[n]
        if 0 < n <= 3:
            hubs.append(run_id)

        runs.append(
            make_run(
                workspace_id,
                id=run_id,
                subject_id=rng.choice(SUBJECTS),
                parent_run_id=parent,
                status=status,
                mode="sync" if rng.random() < 0.3 else "async",
                input=_random_input(rng, n),
                output={"ok": True, "n": n} if status == "completed" else None,
                error=(
                    f"step {n} failed: boom"
                    if status == "failed"
                    else ("cancelled by operator" if status == "cancelled" else None)
                ),
                triggered_by=_pick(rng, TRIGGER_WEIGHTS),
                cf_workflow_id=f"cf-{n}" if started is not None and rng.random() < 0.5 else None,
                user_id=rng.choice(USERS),
                started_at=started,
                completed_at=completed,
                created_at=created,
                updated_at=last_change,
            )
        )
    return runs


async def seed_runs(
    pool: asyncpg.Pool,
    workspace_id: str,
    count: int,
    *,
    rng: random.Random,
    start: datetime = DEFAULT_START,
    child_ratio: float = 0.3,
) -> list[dict[str, Any]]:
    """Insert `count` realistic runs into `workspace_id`; returns their dicts (see build_runs)."""
    runs = build_runs(workspace_id, count, rng=rng, start=start, child_ratio=child_ratio)
    await insert_runs(pool, runs)
    return runs


def by_id(runs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in runs}
