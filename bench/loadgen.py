"""Load generators: `wrk` for maximum throughput, and an open-loop client for latency at a set rate.

wrk is closed-loop: each connection sends its next request when the last one is answered, so
it finds the maximum throughput but hides queueing (a slow answer delays the requests behind
it instead of showing in their latency). Latency at a given load is measured open-loop here:
requests leave on a fixed schedule whatever the server does, and each is timed from when it
was due to leave.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.pinning import LOAD_CPU
from bench.stats import percentile

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Request:
    """One HTTP POST: its headers and body."""

    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_s: float
    p99_s: float
    requests: int
    bad: int  # non-2xx answers and socket errors


def _lua_string(data: bytes) -> str:
    # Three-digit decimal escapes keep any byte safe inside a Lua string literal.
    escaped = (f"\\{b:03d}" if b < 32 or b in (34, 92) or b > 126 else chr(b) for b in data)
    return '"' + "".join(escaped) + '"'


def lua_script(
    requests: list[Request],
    *,
    template_counter: tuple[int, int] | None = None,
    counter_format: str = "%d",
) -> str:
    """A wrk script that cycles through `requests`.

    With `template_counter` = (first, last), every body's `@N@` is replaced by a counter that
    runs from `first` to `last` (one value per request, never repeated; past `last` it stays
    at `last`, and those requests fail), so that each request can name a run of its own;
    `counter_format` is its Lua format (e.g. "%010d").
    """
    lines = ["local requests = {"]
    for request in requests:
        headers = ", ".join(
            f"[{_lua_string(k.encode())}] = {_lua_string(v.encode())}"
            for k, v in request.headers.items()
        )
        lines.append(f"  {{ headers = {{ {headers} }}, body = {_lua_string(request.body)} }},")
    lines.append("}")
    lines.append("local i = 0")
    if template_counter is None:
        lines += [
            "request = function()",
            "  i = i % #requests + 1",
            "  local r = requests[i]",
            '  return wrk.format("POST", nil, r.headers, r.body)',
            "end",
        ]
    else:
        first, last = template_counter
        lines += [
            f"local n = {first - 1}",
            "request = function()",
            "  i = i % #requests + 1",
            f"  n = math.min(n + 1, {last})",
            "  local r = requests[i]",
            f'  local body = string.gsub(r.body, "@N@", string.format("{counter_format}", n))',
            '  return wrk.format("POST", nil, r.headers, body)',
            "end",
        ]
    return "\n".join(lines) + "\n"


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The numbers of one `wrk --latency` run."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and total and p50 and p99):
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    bad = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        bad += int(non2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        bad += sum(int(g) for g in errors.groups())
    return WrkResult(
        float(rps.group(1)),
        _seconds(p50.group(1)),
        _seconds(p99.group(1)),
        int(total.group(1)),
        bad,
    )


def wrk(
    url: str,
    script: str,
    *,
    duration_s: float,
    connections: int,
) -> WrkResult:
    """Run wrk (one thread, pinned to the load core) against `url` with `script`."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = Path(f.name)
    try:
        cmd = [
            "taskset", "-c", str(LOAD_CPU), binary, "-t1", f"-c{connections}",
            f"-d{max(1, round(duration_s))}s", "--latency", "-s", str(path), url,
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return parse_wrk(done.stdout)
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class OpenLoopResult:
    rate: float
    sent: int
    answered: int
    bad: int
    p50_s: float
    p99_s: float
    achieved_per_s: float


class _Connection:
    """A keep-alive HTTP/1.1 connection that sends one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


def _raw(url: str, request: Request) -> bytes:
    parts = urlsplit(url)
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


async def open_loop(
    url: str, requests: list[Request], *, rate: float, duration_s: float, max_connections: int = 256
) -> OpenLoopResult:
    """Send `rate` requests a second for `duration_s`, each timed from when it was due."""
    parts = urlsplit(url)
    raws = [_raw(url, r) for r in requests]
    idle: list[_Connection] = []
    opened = 0  # connections opened (for debugging a run)
    latencies: list[float] = []
    bad = 0
    count = int(rate * duration_s)
    tasks: set[asyncio.Task[None]] = set()

    async def connect() -> _Connection:
        nonlocal opened
        opened += 1
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return _Connection(reader, writer)

    async def one(due: float, raw: bytes) -> None:
        nonlocal bad
        reused = bool(idle)
        try:
            conn = idle.pop() if idle else await connect()
            try:
                status = await conn.exchange(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                if not reused:
                    raise
                # The server closes keep-alive connections idle for a while (uvicorn: 5 s):
                # a fresh one, the request still timed from when it was due.
                conn.writer.close()
                conn = await connect()
                status = await conn.exchange(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            bad += 1
            return
        latencies.append(time.monotonic() - due)
        if status != 200:
            bad += 1
        idle.append(conn)

    start = time.monotonic() + 0.05
    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_connections:
            bad += 1  # the server is that far behind: count it and move on
            continue
        task = asyncio.create_task(one(due, raws[i % len(raws)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    elapsed = time.monotonic() - start
    for conn in idle:
        conn.writer.close()
    return OpenLoopResult(
        rate=rate,
        sent=count,
        answered=len(latencies),
        bad=bad,
        p50_s=percentile(latencies, 50) if latencies else float("nan"),
        p99_s=percentile(latencies, 99) if latencies else float("nan"),
        achieved_per_s=len(latencies) / elapsed,
    )
