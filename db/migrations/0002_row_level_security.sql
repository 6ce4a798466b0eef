-- Row-level security: defence in depth for tenancy. Every query the service sends for a
-- request runs as the role workflow_runs_app, in a transaction whose setting
-- workflow_runs.workspaces (a JSON array) names the workspaces the request may touch; the
-- policies below hide every other row, so a query that forgot its `WHERE workspace_id` would
-- still leak nothing. The table owner (migrations, event retention) is not subject to them.

DO $$
BEGIN
    CREATE ROLE workflow_runs_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- roles are cluster-wide: another database of this cluster created it already
END
$$;

-- Whoever migrates is who runs the service: it must be able to take the role.
DO $$
BEGIN
    EXECUTE format('GRANT workflow_runs_app TO %I', current_user);
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO workflow_runs_app', current_schema());
END
$$;

-- No DELETE: runs are never deleted, events only by retention, which runs as the owner.
GRANT SELECT, INSERT, UPDATE ON workflow_runs, workflow_run_events, workflow_run_streams
    TO workflow_runs_app;

CREATE FUNCTION workflow_runs_visible_workspaces() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(
            array(SELECT jsonb_array_elements_text(
                nullif(current_setting('workflow_runs.workspaces', true), '')::jsonb)),
            '{}')
    $$;

ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_run_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_run_streams ENABLE ROW LEVEL SECURITY;

CREATE POLICY workflow_runs_tenant ON workflow_runs TO workflow_runs_app
    USING (workspace_id = ANY (workflow_runs_visible_workspaces()))
    WITH CHECK (workspace_id = ANY (workflow_runs_visible_workspaces()));

CREATE POLICY workflow_run_events_tenant ON workflow_run_events TO workflow_runs_app
    USING (workspace_id = ANY (workflow_runs_visible_workspaces()))
    WITH CHECK (workspace_id = ANY (workflow_runs_visible_workspaces()));

CREATE POLICY workflow_run_streams_tenant ON workflow_run_streams TO workflow_runs_app
    USING (workspace_id = ANY (workflow_runs_visible_workspaces()))
    WITH CHECK (workspace_id = ANY (workflow_runs_visible_workspaces()));
