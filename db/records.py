"""The values the storage layer reads and writes: runs, events and their enumerations."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson


class RunStatus(enum.StrEnum):
    """Lifecycle status, stored exactly as the WorkflowRun entity spells it."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


TERMINAL: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
)
NON_TERMINAL: frozenset[RunStatus] = frozenset(RunStatus) - TERMINAL


class RunMode(enum.StrEnum):
    SYNC = "sync"
    ASYNC = "async"


class RunTrigger(enum.StrEnum):
    WORKFLOW = "workflow"
    AGENT = "agent"
    SWARM = "swarm"
    USER = "user"
    EVENT = "event"


class RunOrder(enum.Enum):
    """Sort orders of run lists; each is a keyset on (sort key, id)."""

    CREATED_AT_DESC = ("created_at", True)
    CREATED_AT_ASC = ("created_at", False)
    UPDATED_AT_DESC = ("updated_at", True)

    @property
    def column(self) -> str:
        return self.value[0]

    @property
    def descending(self) -> bool:
        return self.value[1]


# The 17 entity fields, in the order the SQL selects them.
RUN_COLUMNS = (
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


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a workflow, agent or swarm, in one workspace."""

    id: str
    workspace_id: str
    subject_id: str
    parent_run_id: str | None
    status: RunStatus
    mode: RunMode
    input: Any
    output: Any
    error: str | None
    triggered_by: RunTrigger
    cf_workflow_id: str | None
    duration_ms: int | None
    user_id: str
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Run:
        """Build a run from a record (or mapping) holding the 17 columns."""
        return cls(
            id=row["id"],
            workspace_id=row["workspace_id"],
            subject_id=row["subject_id"],
            parent_run_id=row["parent_run_id"],
            status=RunStatus(row["status"]),
            mode=RunMode(row["mode"]),
            input=row["input"],
            output=row["output"],
            error=row["error"],
            triggered_by=RunTrigger(row["triggered_by"]),
            cf_workflow_id=row["cf_workflow_id"],
            duration_ms=row["duration_ms"],
            user_id=row["user_id"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any], input: Any, output: Any) -> Run:
        """Build a run from the JSON snapshot stored with an event; its input and output
        come separately, as their own JSON text (see `db.events`)."""
        return cls.from_row(
            {
                **snapshot,
                "input": _json_or_none(input),
                "output": _json_or_none(output),
                "started_at": _timestamp(snapshot["started_at"]),
                "completed_at": _timestamp(snapshot["completed_at"]),
                "created_at": _timestamp(snapshot["created_at"]),
                "updated_at": _timestamp(snapshot["updated_at"]),
            }
        )


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _json_or_none(value: Any) -> Any:
    # A JSON null inside the snapshot means the column was NULL.
    return None if value is None or value == "null" else value


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One status change in a workspace's event stream; `seq` is gap-free in commit order."""

    workspace_id: str
    seq: int
    run_id: str
    previous_status: RunStatus | None
    status: RunStatus
    occurred_at: datetime
    run: Run

    @classmethod
    def from_row(cls, row: Any) -> RunEvent:
        previous = row["previous_status"]
        return cls(
            workspace_id=row["workspace_id"],
            seq=row["seq"],
            run_id=row["run_id"],
            previous_status=None if previous is None else RunStatus(previous),
            status=RunStatus(row["status"]),
            occurred_at=row["occurred_at"],
            run=Run.from_snapshot(
                orjson.loads(str(row["run"])), row["run_input"], row["run_output"]
            ),
        )
