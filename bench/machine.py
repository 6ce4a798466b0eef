"""What the numbers were measured on: CPUs, memory, CPU model, PostgreSQL, load, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parent.parent

# The server settings that move the numbers; reported with every suite.
PG_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "max_connections",
    "plan_cache_mode",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews the numbers)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def describe() -> dict[str, Any]:
    """The machine, independent of any database."""
    from bench import source

    if source.snapshot:
        snap = source.snapshot
        code = f"{snap['commit']} ({snap['subject']}), git archive of --ref {snap['ref']}"
    else:
        dirty = _git("status", "--porcelain", "--", "db", "schema", "server")
        code = _git("rev-parse", "--short", "HEAD") + (
            " plus uncommitted changes to db/, schema/ or server/ in the working tree"
            if dirty not in ("", "unknown")
            else " (working tree)"
        )
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(_mem_total_gib(), 1),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": code,
        "loadavg_at_start": loadavg(),
    }


async def postgres(conn: asyncpg.Connection) -> dict[str, Any]:
    """The PostgreSQL server behind `conn`: version and the settings that matter here."""
    version = await conn.fetchval("SELECT version()")
    rows = await conn.fetch(
        "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])",
        list(PG_SETTINGS),
    )
    settings = {}
    for row in rows:
        value, unit = row["setting"], row["unit"]
        if unit == "8kB":
            value = f"{int(value) * 8 // 1024} MB"
        elif unit:
            value = f"{value} {unit}"
        settings[row["name"]] = value
    return {"version": version.split(" on ")[0], "settings": settings}


def cpu_ticks() -> tuple[int, int, int]:
    """Whole-machine CPU ticks since boot: (busy, iowait, total), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return (0, 0, 0)
    idle, iowait = fields[3], fields[4]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle - iowait, iowait, total)


def cpu_busy_since(before: tuple[int, int, int]) -> tuple[float, float]:
    """Share of all CPUs busy, and in iowait, since `before` (a cpu_ticks() value)."""
    after = cpu_ticks()
    total = after[2] - before[2]
    if total <= 0:
        return (float("nan"), float("nan"))
    return ((after[0] - before[0]) / total, (after[1] - before[1]) / total)
