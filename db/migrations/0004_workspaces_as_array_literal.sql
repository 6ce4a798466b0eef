-- The setting workflow_runs.workspaces now holds a PostgreSQL array literal ({"ws-a","ws-b"}),
-- which the policies read with a cast: workflow_runs_visible_workspaces() becomes an
-- expression the planner inlines, instead of a SQL function with a subquery that every
-- statement ran through the function executor (about 70 us of PostgreSQL time per statement
-- here, most of a lookup by id; 7 us now, tests and docs/benchmarks.md).
--
-- A process of an earlier version (a rolling deploy) still writes a JSON array: it is read as
-- before, by a function of its own, called only for such values.

CREATE FUNCTION workflow_runs_workspaces_from_json(setting text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array(SELECT jsonb_array_elements_text(setting::jsonb)) $$;

-- STABLE as its cast to text[] is: a function declared more immutable than its body is not
-- inlined.
CREATE FUNCTION workflow_runs_workspaces_of(setting text) RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(
            CASE WHEN left(setting, 1) = '['
                 THEN workflow_runs_workspaces_from_json(setting)
                 ELSE nullif(setting, '')::text[]
            END,
            '{}')
    $$;

CREATE OR REPLACE FUNCTION workflow_runs_visible_workspaces() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT workflow_runs_workspaces_of(current_setting('workflow_runs.workspaces', true)) $$;
