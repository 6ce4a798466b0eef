"""`python -m bench <suite> [--quick] [--dsn DSN]`: run one benchmark suite (or `all`).

Suites are registered in SUITES below: a module with `add_arguments(parser)` and
`main(args) -> int`. DEFAULT_SUITE is what a bare `python -m bench` runs (None: print help).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from bench import source


@dataclass(frozen=True)
class Suite:
    name: str
    module: str
    help: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            "listquery",
            "bench.listquery",
            "list page database time from page 1 to 2,000 (400k runs, EXPLAIN ANALYZE)",
        ),
        Suite(
            "notify",
            "bench.notify",
            "write throughput: no NOTIFY vs the fan-out's NOTIFY after commit vs NOTIFY in the "
            "transaction, at 8 and 32 clients",
        ),
        Suite(
            "livecounts",
            "bench.livecounts",
            "server CPU per status change with 0, 100 and 1,000 workflowRunStatusCountsChanged "
            "subscribers; message rate, final equality and latency",
        ),
        Suite(
            "compare",
            "bench.compare",
            "side by side with PostGraphile 5 and 4 and the SQL ceiling: pages, by id, parents, "
            "mutations (wrk), p99 at half load, scaling to 10M runs",
        ),
        Suite(
            "subscribers",
            "bench.subscribers",
            "subscription delivery latency and memory per connection, 1 to 10,000 subscribers",
        ),
    )
}
# What `python -m bench` runs with no suite named; None prints the help.
DEFAULT_SUITE: str | None = None
ALL = "all"


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Defined on the top level and on each suite, so that both `python -m bench --quick S` and
    # `python -m bench S --quick` work; SUPPRESS keeps a suite from resetting the top level's.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--quick",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="small sizes and short runs: a smoke test (all suites together under 2 minutes)",
    )
    parser.add_argument(
        "--ref",
        default=default,
        help="measure the service code (db/, schema/, server/) of this git ref, extracted to a "
        "temp dir, instead of the working tree (e.g. HEAD: ignores uncommitted edits)",
    )
    parser.add_argument(
        "--dsn",
        default=default,
        help="admin DSN of an existing PostgreSQL to use (a scratch database is created and "
        "dropped there); default: a fresh embedded PostgreSQL in a temp dir",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of workflow-runs. Each suite prints a table, appends a dated "
        "section to docs/benchmarks.md and writes JSON under bench/results/.",
    )
    _common(top, suppress=False)
    sub = top.add_subparsers(dest="suite", metavar="SUITE")
    for suite in SUITES.values():
        p = sub.add_parser(suite.name, help=suite.help, description=suite.help)
        _common(p, suppress=True)
        suite.load().add_arguments(p)
    p = sub.add_parser(ALL, help="every suite above, one after the other (with their defaults)")
    _common(p, suppress=True)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    argv = list(sys.argv[1:] if argv is None else argv)
    ref = source.preparse_ref(argv)
    if ref is not None:
        source.use_ref(ref)
    top = parser()
    args = top.parse_args(argv)
    name = args.suite or DEFAULT_SUITE
    if name is None:
        top.print_help()
        return 2
    if name != ALL:
        return int(SUITES[name].load().main(args))
    failed = []
    for suite in SUITES.values():
        # Each suite gets its own defaults, with the shared options of this command line.
        suite_args = top.parse_args(
            [
                suite.name,
                *(["--quick"] if args.quick else []),
                *(["--dsn", args.dsn] if args.dsn else []),
            ]
        )
        print(f"\n##### suite {suite.name}", flush=True)
        if suite.load().main(suite_args) != 0:
            failed.append(suite.name)
    if failed:
        print(f"failed suites: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
