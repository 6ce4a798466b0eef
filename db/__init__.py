"""Storage for workflow runs: migrations, SQL, the pool and the event stream.

Imports nothing of ours: `schema/` and `server/` build on it, never the other way round.
"""
