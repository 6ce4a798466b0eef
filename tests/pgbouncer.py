"""Debian's PgBouncer, in transaction mode, in front of a test PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

PGBOUNCER = shutil.which("pgbouncer")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _upstream(dsn: str) -> tuple[str, int]:
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    return host, port


@dataclass
class PgBouncer:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    def dsn(self, database: str) -> str:
        """A DSN for `database` through PgBouncer."""
        return urlunsplit(("postgresql", f"postgres@127.0.0.1:{self.port}", f"/{database}", "", ""))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_pgbouncer(upstream_dsn: str, *, pool_size: int = 20) -> PgBouncer:
    """Start PgBouncer (transaction pooling, trust auth) in front of `upstream_dsn`'s server."""
    assert PGBOUNCER is not None, "pgbouncer is not installed"
    host, upstream_port = _upstream(upstream_dsn)
    port = _free_port()
    directory = Path(tempfile.mkdtemp(prefix="wr-pgbouncer-"))
    directory.chmod(0o777)
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={host} port={upstream_port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
"""
    )
    for path in directory.iterdir():
        path.chmod(0o644)
    # -q: log to the logfile only. Its stderr would be a pipe nobody reads, and once that pipe
    # filled up, PgBouncer blocked on a log line and stopped serving mid-suite.
    command = [PGBOUNCER, "-q", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer will not run as root; the embedded server's user can reach its socket.
        user = "embedded_postgres" if _user_exists("embedded_postgres") else "nobody"
        command[1:1] = ["-u", user]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = directory / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer exited: {log.read_text() if log.exists() else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return PgBouncer(process, port, directory)
        time.sleep(0.05)  # polling a subprocess's port, with a deadline
    process.terminate()
    raise RuntimeError("pgbouncer did not start listening")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
