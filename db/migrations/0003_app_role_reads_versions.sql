-- The app role reads which migrations are applied (for /readyz), and nothing else of it.
GRANT SELECT ON workflow_runs_migrations TO workflow_runs_app;
