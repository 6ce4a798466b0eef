-- Workflow runs, their per-workspace event streams, and the indexes the list queries use.
--
-- Enum-like columns store the values exactly as the WorkflowRun entity spells them
-- ("pending", "timed_out", "sync", "agent"); GraphQL shows them UPPER_CASE.
-- Identifier columns use the "C" collation so that keyset comparisons are plain byte order,
-- the same order Python compares strings in.

CREATE TABLE workflow_runs (
    workspace_id           text COLLATE "C" NOT NULL,
    id                     text COLLATE "C" NOT NULL,
    subject_id             text NOT NULL,
    parent_run_id          text COLLATE "C",
    status                 text NOT NULL,
    mode                   text NOT NULL,
    input                  jsonb,
    output                 jsonb,
    error                  text,
    triggered_by           text NOT NULL,
    cf_workflow_id         text,
    -- Whole milliseconds, truncated; null until the run is terminal, and for a run that never started.
    duration_ms            bigint GENERATED ALWAYS AS (
                               floor(extract(epoch FROM (completed_at - started_at)) * 1000)::bigint
                           ) STORED,
    user_id                text NOT NULL,
    started_at             timestamptz,
    completed_at           timestamptz,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    idempotency_key        text,
    -- sha256 of the create payload, so a retried create can be told apart from a different one
    -- even after the run has moved on (startWorkflowRun may change cf_workflow_id).
    idempotency_fingerprint text,

    -- workspace_id leads every key: each tenant's rows cluster together, and the table can be
    -- distributed by workspace_id (Citus) without changing a constraint.
    PRIMARY KEY (workspace_id, id),
    -- A parent must be a run of the same workspace; the database enforces it.
    FOREIGN KEY (workspace_id, parent_run_id) REFERENCES workflow_runs (workspace_id, id),
    CONSTRAINT workflow_runs_status_check CHECK (status IN (
        'pending', 'running', 'waiting', 'paused', 'completed', 'failed', 'cancelled', 'timed_out')),
    CONSTRAINT workflow_runs_mode_check CHECK (mode IN ('sync', 'async')),
    CONSTRAINT workflow_runs_triggered_by_check CHECK (
        triggered_by IN ('workflow', 'agent', 'swarm', 'user', 'event')),
    CONSTRAINT workflow_runs_id_check CHECK (id LIKE 'run\_%'),
    CONSTRAINT workflow_runs_completed_at_check CHECK (
        (completed_at IS NOT NULL) = (status IN ('completed', 'failed', 'cancelled', 'timed_out'))),
    CONSTRAINT workflow_runs_idempotency_check CHECK (
        (idempotency_key IS NULL) = (idempotency_fingerprint IS NULL))
);

-- Keyset pagination: (sort key, id) per workspace. The status-led twins serve status filters
-- with one ordered scan per status, merged (see db/runs.py), so that a rare status set does not
-- scan and sort the whole workspace.
CREATE INDEX workflow_runs_created_idx ON workflow_runs (workspace_id, created_at, id);
CREATE INDEX workflow_runs_updated_idx ON workflow_runs (workspace_id, updated_at, id);
CREATE INDEX workflow_runs_status_created_idx
    ON workflow_runs (workspace_id, status, created_at, id);
CREATE INDEX workflow_runs_status_updated_idx
    ON workflow_runs (workspace_id, status, updated_at, id);
-- Children pages, cancel cascades, and the subjectId filter.
CREATE INDEX workflow_runs_parent_idx
    ON workflow_runs (workspace_id, parent_run_id, created_at, id)
    WHERE parent_run_id IS NOT NULL;
CREATE INDEX workflow_runs_subject_idx
    ON workflow_runs (workspace_id, subject_id, created_at, id);
CREATE UNIQUE INDEX workflow_runs_idempotency_idx
    ON workflow_runs (workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One row per workspace: the head of its event stream. Every transaction that appends events
-- bumps last_seq here, and the row lock it takes is held until commit, so within a workspace
-- sequence order is commit order and a reader never sees seq N+1 before seq N.
CREATE TABLE workflow_run_streams (
    workspace_id   text COLLATE "C" PRIMARY KEY,
    last_seq       bigint NOT NULL DEFAULT 0,
    -- Events with seq <= pruned_through were removed by retention.
    pruned_through bigint NOT NULL DEFAULT 0,
    CHECK (pruned_through <= last_seq)
);

CREATE TABLE workflow_run_events (
    workspace_id    text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL,
    run_id          text COLLATE "C" NOT NULL,
    previous_status text,
    status          text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    -- The run as it was right after this event, so old events answer `event.run` exactly.
    run             jsonb NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);

CREATE INDEX workflow_run_events_run_idx ON workflow_run_events (workspace_id, run_id, seq);
CREATE INDEX workflow_run_events_occurred_idx ON workflow_run_events USING brin (occurred_at);
