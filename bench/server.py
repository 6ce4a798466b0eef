"""`workflow-runs serve` as a separate process, pinned to its own core, for load tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.pinning import server_prefix

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command() -> list[str]:
    script = Path(sys.executable).with_name("workflow-runs")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "server.cli"]


class Server:
    """One `workflow-runs serve` on 127.0.0.1, on `dsn`, pinned to the server core."""

    def __init__(self, dsn: str, secret: str, log_path: Path, env: dict[str, str] | None = None):
        self.dsn = dsn
        self.secret = secret
        self.log_path = log_path
        self.extra_env = env or {}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._data_dir: str | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        self._data_dir = tempfile.mkdtemp(prefix="wr-bench-server-")
        env = {
            **os.environ,
            "DATABASE_URL": self.dsn,
            "WORKFLOW_RUNS_JWT_SECRET": self.secret,
            "WORKFLOW_RUNS_DATA_DIR": self._data_dir,
            "XDG_RUNTIME_DIR": self._data_dir,
            **self.extra_env,
        }
        env.pop("DATABASE_LISTEN_URL", None)
        cmd = [
            *server_prefix(),
            *_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited during startup:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not get ready:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def rss_kib(self) -> int:
        """Resident set size now (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (graceful), then SIGKILL if it lingers; by PID only."""
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._data_dir is not None:
            with contextlib.suppress(OSError):
                for child in Path(self._data_dir).iterdir():
                    child.unlink()
                os.rmdir(self._data_dir)
            self._data_dir = None
