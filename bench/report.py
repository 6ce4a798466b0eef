"""Publishing a suite's results: a table on stdout, a dated section in docs/benchmarks.md,
and the raw numbers as JSON under bench/results/."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine

DOC = machine.REPO / "docs" / "benchmarks.md"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def text(self) -> str:
        """A plain, aligned table for the terminal."""
        cells = [self.headers, *[[str(c) for c in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.headers))]
        lines = [self.title]
        for n, row in enumerate(cells):
            lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def markdown(self) -> str:
        head = "| " + " | ".join(self.headers) + " |"
        rule = "|" + "|".join(" --- " for _ in self.headers) + "|"
        body = ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        return "\n".join([f"**{self.title}**", "", head, rule, *body])


@dataclass
class SuiteResult:
    suite: str
    title: str
    quick: bool
    machine: dict[str, Any]
    postgres: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


def command() -> str:
    """The command line that produced the results, as one would type it."""
    return "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _machine_lines(result: SuiteResult) -> list[str]:
    m, pg = result.machine, result.postgres
    settings = ", ".join(f"{k}={v}" for k, v in pg.get("settings", {}).items())
    return [
        f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}; load average at start {m['loadavg_at_start']}",
        f"- PostgreSQL: {pg.get('version', 'n/a')}" + (f" ({settings})" if settings else ""),
        f"- Code: commit {m['commit']}",
    ]


def markdown(result: SuiteResult) -> str:
    stamp = result.started.strftime("%Y-%m-%d %H:%M UTC")
    mode = " (quick)" if result.quick else ""
    parts = [
        f"## {result.title}{mode}: {stamp}",
        "",
        f"- Command: `{command()}`",
        *_machine_lines(result),
        "",
    ]
    for table in result.tables:
        parts += [table.markdown(), ""]
    if result.notes:
        parts += ["Notes:", "", *[f"- {n}" for n in result.notes], ""]
    return "\n".join(parts)


def publish(result: SuiteResult) -> Path:
    """Print, append to docs/benchmarks.md, write JSON; returns the JSON path."""
    print()
    print(f"== {result.title}{' (quick)' if result.quick else ''}")
    for line in _machine_lines(result):
        print(line)
    for table in result.tables:
        print()
        print(table.text())
    for note in result.notes:
        print(f"note: {note}")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    if not DOC.exists():
        DOC.write_text("# Benchmarks\n\nRun with `python -m bench --help`.\n\n", encoding="utf-8")
    with DOC.open("a", encoding="utf-8") as doc:
        doc.write("\n" + markdown(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = result.started.strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{result.suite}{'-quick' if result.quick else ''}-{stamp}.json"
    payload = {
        "suite": result.suite,
        "title": result.title,
        "quick": result.quick,
        "command": command(),
        "started": result.started.isoformat(),
        "machine": result.machine,
        "postgres": result.postgres,
        "tables": [{"title": t.title, "headers": t.headers, "rows": t.rows} for t in result.tables],
        "notes": result.notes,
        "raw": result.raw,
    }
    path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    print(f"\nappended to {DOC.relative_to(machine.REPO)}; raw results in {path}")
    return path
