"""Which service code a run measures: the working tree, or a snapshot of a git ref.

`--ref REF` extracts `git archive REF` into a temp dir and puts it first on sys.path (for the
suites that call db/ directly) and on PYTHONPATH (for the server processes they start), so
that edits in progress in the working tree do not leak into the numbers. Only db/, schema/
and server/ come from the snapshot; bench/ itself and its outputs stay in the working tree.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVICE_PACKAGES = ("db", "schema", "server")

# What machine.describe() reports as the code under test; set by use_ref().
snapshot: dict[str, str] = {}


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def use_ref(ref: str) -> Path:
    """Extract the service packages of `ref` and import them from there from now on."""
    if any(name in sys.modules for name in SERVICE_PACKAGES):
        raise RuntimeError("--ref must be applied before the service packages are imported")
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    target = Path(tempfile.mkdtemp(prefix="wr-bench-src-"))
    atexit.register(shutil.rmtree, target, True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, *SERVICE_PACKAGES],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=60)
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    subject = _git("log", "-1", "--format=%s", commit)
    snapshot.update(ref=ref, commit=commit[:12], subject=subject, path=str(target))
    return target


def preparse_ref(argv: list[str]) -> str | None:
    """The value of --ref in argv (needed before the suites, which import db/, are loaded)."""
    for i, arg in enumerate(argv):
        if arg == "--ref" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--ref="):
            return arg.split("=", 1)[1]
    return None
