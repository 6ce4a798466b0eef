"""The run lifecycle: the transition table, and the statements that create and move runs.

Each change is one statement (cancel: two, in one transaction): it locks the run, checks the
current status in the database, updates the run, bumps the workspace's stream head and
appends the event. A refused change writes nothing.

Lock order, everywhere: the workspace's stream head first, then runs by id. Creates take no
run lock but the foreign key's KEY SHARE on the parent, which conflicts with none of ours, and
bump the head last. So concurrent changes queue instead of deadlocking, and whoever holds the
head sees every change of the workspace committed before it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from db.errors import Conflict, InvalidTransition, NotFound, translated
from db.ids import new_run_id
from db.records import NON_TERMINAL, RUN_COLUMNS, TERMINAL, Run, RunMode, RunStatus, RunTrigger


class Transition(enum.Enum):
    START = "start"
    MARK_WAITING = "mark_waiting"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    TIME_OUT = "time_out"


@dataclass(frozen=True)
class Rule:
    """From which statuses a transition may leave, and where it goes."""

    sources: frozenset[RunStatus]
    target: RunStatus
    # Where the run goes instead when it never started (resume of a run paused while pending).
    target_if_never_started: RunStatus | None = None


S = RunStatus
TRANSITIONS: dict[Transition, Rule] = {
    Transition.START: Rule(frozenset({S.PENDING}), S.RUNNING),
    Transition.MARK_WAITING: Rule(frozenset({S.RUNNING}), S.WAITING),
    Transition.PAUSE: Rule(frozenset({S.PENDING, S.RUNNING, S.WAITING}), S.PAUSED),
    Transition.RESUME: Rule(frozenset({S.PAUSED, S.WAITING}), S.RUNNING, S.PENDING),
    Transition.COMPLETE: Rule(frozenset({S.RUNNING, S.WAITING}), S.COMPLETED),
    Transition.FAIL: Rule(NON_TERMINAL, S.FAILED),
    Transition.CANCEL: Rule(NON_TERMINAL, S.CANCELLED),
    Transition.TIME_OUT: Rule(NON_TERMINAL, S.TIMED_OUT),
}
# retryWorkflowRun leaves the original untouched and creates a new PENDING run from it.
RETRYABLE: frozenset[RunStatus] = frozenset({S.FAILED, S.CANCELLED, S.TIMED_OUT})


@dataclass(frozen=True, slots=True)
class Change:
    """A run right after a change, and the stream position of the last event it appended."""

    run: Run
    # None when nothing was written (an idempotent create that returned the first run).
    last_seq: int | None


@dataclass(frozen=True, slots=True)
class NewRun:
    """What a caller gives to create a run."""

    workspace_id: str
    subject_id: str
    triggered_by: RunTrigger
    mode: RunMode = RunMode.ASYNC
    parent_run_id: str | None = None
    input: Any = None
    cf_workflow_id: str | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """A digest of the payload, to tell a retried create from a different one."""
        payload = [
            self.subject_id,
            self.parent_run_id,
            self.mode.value,
            self.input,
            self.triggered_by.value,
            self.cf_workflow_id,
        ]
        return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _sql_list(values: frozenset[RunStatus]) -> str:
    return ", ".join(f"'{s.value}'" for s in sorted(values))


def _snapshot(alias: str) -> str:
    """The run as JSON, stored with its event."""
    return "jsonb_build_object(" + ", ".join(f"'{c}', {alias}.{c}" for c in RUN_COLUMNS) + ")"


def _columns(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in RUN_COLUMNS)


_TERMINAL = _sql_list(TERMINAL)

# Appends the creation event of the row in `inserted`, creating the stream on first use.
_APPEND_CREATION = f"""
head AS (
    INSERT INTO workflow_run_streams AS s (workspace_id, last_seq)
    SELECT workspace_id, 1 FROM inserted
    ON CONFLICT (workspace_id) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING s.workspace_id, s.last_seq
), event AS (
    INSERT INTO workflow_run_events
        (workspace_id, seq, run_id, previous_status, status, occurred_at, run)
    SELECT i.workspace_id, h.last_seq, i.id, NULL, i.status, i.created_at, {_snapshot("i")}
      FROM inserted i JOIN head h USING (workspace_id)
    RETURNING seq
)"""

_CREATE = f"""
WITH inserted AS (
    INSERT INTO workflow_runs AS r (
        workspace_id, id, subject_id, parent_run_id, status, mode, input, triggered_by,
        cf_workflow_id, user_id, idempotency_key, idempotency_fingerprint, created_at, updated_at)
    SELECT $1::text, $2::text, $3::text, $4::text, 'pending', $5::text, $6::jsonb, $7::text,
           $8::text, $9::text, $10::text, $11::text, now.at, now.at
      FROM (SELECT clock_timestamp() AS at) AS now
    ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING r.*
), {_APPEND_CREATION}
SELECT {_columns("i")}, (SELECT seq FROM event) AS last_seq FROM inserted i
"""

_FIND_IDEMPOTENT = f"""
SELECT {", ".join(RUN_COLUMNS)}, idempotency_fingerprint = $3 AS same_payload
  FROM workflow_runs
 WHERE workspace_id = $1 AND idempotency_key = $2
"""


@translated
async def create_run(conn: asyncpg.Connection, new: NewRun, *, user_id: str) -> Change:
    """Create a PENDING run and its creation event; honour the idempotency key."""
    fingerprint = new.fingerprint() if new.idempotency_key is not None else None
    row = await conn.fetchrow(
        _CREATE,
        new.workspace_id,
        new_run_id(),
        new.subject_id,
        new.parent_run_id,
        new.mode.value,
        new.input,
        new.triggered_by.value,
        new.cf_workflow_id,
        user_id,
        new.idempotency_key,
        fingerprint,
    )
    if row is not None:
        return Change(Run.from_row(row), row["last_seq"])
    # The key was taken. ON CONFLICT waited for the first create to commit, so this new
    # statement (a new snapshot under READ COMMITTED) sees its row.
    first = await conn.fetchrow(
        _FIND_IDEMPOTENT, new.workspace_id, new.idempotency_key, fingerprint
    )
    if first is None:  # pragma: no cover - the conflicting row cannot vanish: runs are not deleted
        raise RuntimeError("idempotency key conflict without a stored run")
    if not first["same_payload"]:
        raise Conflict(
            "idempotencyKey was already used in this workspace with a different payload."
        )
    return Change(Run.from_row(first), None)


# The stream head of the run's workspace, locked: the first lock every transition takes.
_LOCK_HEAD = """
SELECT s.workspace_id
  FROM workflow_run_streams s
 WHERE s.workspace_id = (SELECT workspace_id FROM workflow_runs
                          WHERE workspace_id = ANY($1::text[]) AND id = $2)
   FOR UPDATE
"""

# One statement for every single-run transition. The head is locked first (`target` joins
# it), then the run; the time is read after both, so a run's timestamps never go backwards.
_TRANSITION = f"""
WITH head_lock AS ({_LOCK_HEAD}
), target AS (
    SELECT r.workspace_id, r.id, r.status AS previous_status, clock_timestamp() AS at,
           CASE WHEN r.started_at IS NULL AND $5::text IS NOT NULL THEN $5::text ELSE $4::text END
               AS next_status
      FROM workflow_runs r JOIN head_lock h ON h.workspace_id = r.workspace_id
     WHERE r.id = $2
       FOR NO KEY UPDATE OF r
), changed AS (
    UPDATE workflow_runs AS r
       SET status = t.next_status,
           updated_at = t.at,
           started_at = CASE WHEN t.next_status = 'running'
                             THEN coalesce(r.started_at, t.at) ELSE r.started_at END,
           completed_at = CASE WHEN t.next_status IN ({_TERMINAL}) THEN t.at END,
           output = coalesce($6::jsonb, r.output),
           error = coalesce($7::text, r.error),
           cf_workflow_id = coalesce($8::text, r.cf_workflow_id)
      FROM target t
     WHERE r.workspace_id = t.workspace_id AND r.id = t.id
       AND t.previous_status = ANY($3::text[])
    RETURNING r.*, t.previous_status
), head AS (
    UPDATE workflow_run_streams AS s
       SET last_seq = s.last_seq + 1
      FROM changed c
     WHERE s.workspace_id = c.workspace_id
    RETURNING s.last_seq
), event AS (
    INSERT INTO workflow_run_events
        (workspace_id, seq, run_id, previous_status, status, occurred_at, run)
    SELECT c.workspace_id, h.last_seq, c.id, c.previous_status, c.status, c.updated_at,
           {_snapshot("c")}
      FROM changed c CROSS JOIN head h
    RETURNING seq
)
SELECT t.previous_status AS current_status, {_columns("c")}, (SELECT seq FROM event) AS last_seq
  FROM target t LEFT JOIN changed c ON true
"""

# Cancel walks the run's whole subtree: the root and every non-terminal descendant are
# cancelled in one statement, one event each (root first, then by depth). It runs after
# _LOCK_HEAD, in the same transaction, so that its snapshot holds every child whose creation
# committed before the cancel (creations bump the head). Rows are locked in id order.
_CANCEL = f"""
WITH RECURSIVE tree AS (
    SELECT workspace_id, id, 0 AS depth
      FROM workflow_runs
     WHERE workspace_id = ANY($1::text[]) AND id = $2
    UNION ALL
    SELECT c.workspace_id, c.id, tree.depth + 1
      FROM workflow_runs c
      JOIN tree ON c.workspace_id = tree.workspace_id AND c.parent_run_id = tree.id
), target AS (
    SELECT r.workspace_id, r.id, r.status AS previous_status, clock_timestamp() AS at, tree.depth
      FROM workflow_runs r
      JOIN tree ON r.workspace_id = tree.workspace_id AND r.id = tree.id
     ORDER BY r.id
       FOR NO KEY UPDATE OF r
), root AS (
    SELECT * FROM target WHERE depth = 0
), changed AS (
    UPDATE workflow_runs AS r
       SET status = 'cancelled',
           updated_at = t.at,
           completed_at = t.at,
           error = coalesce($3::text, r.error)
      FROM target t
     WHERE r.workspace_id = t.workspace_id AND r.id = t.id
       AND t.previous_status NOT IN ({_TERMINAL})
       AND (SELECT previous_status FROM root) NOT IN ({_TERMINAL})
    RETURNING r.*, t.previous_status, t.depth
), head AS (
    UPDATE workflow_run_streams AS s
       SET last_seq = s.last_seq + (SELECT count(*) FROM changed)
     WHERE s.workspace_id = (SELECT workspace_id FROM root)
       AND EXISTS (SELECT 1 FROM changed)
    RETURNING s.last_seq
), numbered AS (
    SELECT c.*, h.last_seq - count(*) OVER () + row_number() OVER (ORDER BY c.depth, c.id) AS seq
      FROM changed c CROSS JOIN head h
), event AS (
    INSERT INTO workflow_run_events
        (workspace_id, seq, run_id, previous_status, status, occurred_at, run)
    SELECT n.workspace_id, n.seq, n.id, n.previous_status, n.status, n.updated_at, {_snapshot("n")}
      FROM numbered n
    RETURNING seq
)
SELECT root.previous_status AS current_status, {_columns("c")},
       (SELECT max(seq) FROM event) AS last_seq
  FROM root LEFT JOIN changed c ON c.id = root.id
"""


@translated
async def transition_run(
    conn: asyncpg.Connection,
    workspaces: list[str],
    run_id: str,
    transition: Transition,
    *,
    output: Any = None,
    error: str | None = None,
    cf_workflow_id: str | None = None,
) -> Change:
    """Move a run of one of `workspaces` as `transition` says, or raise why not."""
    rule = TRANSITIONS[transition]
    if transition is Transition.CANCEL:
        async with conn.transaction():
            await conn.execute(_LOCK_HEAD, workspaces, run_id)
            row = await conn.fetchrow(_CANCEL, workspaces, run_id, error)
    else:
        row = await conn.fetchrow(
            _TRANSITION,
            workspaces,
            run_id,
            sorted(s.value for s in rule.sources),
            rule.target.value,
            rule.target_if_never_started and rule.target_if_never_started.value,
            output,
            error,
            cf_workflow_id,
        )
    if row is None:
        raise NotFound("No such run.")
    if row["id"] is None:
        raise InvalidTransition(RunStatus(row["current_status"]), rule.target)
    return Change(Run.from_row(row), row["last_seq"])


_RETRY = f"""
WITH original AS (
    SELECT * FROM workflow_runs WHERE workspace_id = ANY($1::text[]) AND id = $2
), inserted AS (
    INSERT INTO workflow_runs AS r (
        workspace_id, id, subject_id, parent_run_id, status, mode, input, triggered_by,
        user_id, created_at, updated_at)
    SELECT o.workspace_id, $3::text, o.subject_id, o.parent_run_id, 'pending', o.mode, o.input,
           o.triggered_by, $4::text, now.at, now.at
      FROM original o CROSS JOIN (SELECT clock_timestamp() AS at) AS now
     WHERE o.status IN ({_sql_list(RETRYABLE)})
    RETURNING r.*
), {_APPEND_CREATION}
SELECT o.status AS current_status, {_columns("i")}, (SELECT seq FROM event) AS last_seq
  FROM original o LEFT JOIN inserted i ON true
"""


@translated
async def retry_run(
    conn: asyncpg.Connection, workspaces: list[str], run_id: str, *, user_id: str
) -> Change:
    """Create a new PENDING run from a FAILED, CANCELLED or TIMED_OUT one."""
    # A terminal run never changes again, so reading it without a lock is safe: if it is
    # retryable in this snapshot it stays so.
    row = await conn.fetchrow(_RETRY, workspaces, run_id, new_run_id(), user_id)
    if row is None:
        raise NotFound("No such run.")
    if row["id"] is None:
        raise InvalidTransition(RunStatus(row["current_status"]), RunStatus.PENDING)
    return Change(Run.from_row(row), row["last_seq"])
