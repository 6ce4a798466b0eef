"""Benchmarks of workflow-runs: `python -m bench <suite> [--quick] [--dsn DSN]`.

Each suite prints a table, appends a dated section to docs/benchmarks.md and writes its raw
numbers as JSON under bench/results/ (gitignored). See docs/benchmarks.md for what each measures.
"""
