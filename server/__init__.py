"""The process: the Starlette app, authentication, configuration, the CLI, embedded PostgreSQL."""
