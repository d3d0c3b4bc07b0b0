"""Podrun installed where an unprivileged account can run it, for tests of a worker that is not root.

The checkout's virtual environment points at an interpreter that may live under root's home, so
the tests install Podrun (with the locked dependencies, from uv's cache) into a fresh environment
on the system's own Python, as a container image or a package would, and run it with `setpriv`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

BACKEND_DIR = Path(__file__).resolve().parents[1]
# The account the setup creates (scripts/ensure-system-packages); a worker running as it is unprivileged.
ACCOUNT = "podrun"


def uv() -> str:
    """The uv binary that runs these tests (uv run sets UV)."""
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found: run the tests with ./taskw test")
    return found


def install_for_account(root: Path) -> list[str]:
    """Install Podrun under `root` for `ACCOUNT`; returns the command prefix that runs its Python as that account.

    Fails loudly (never skips) when this machine cannot run an unprivileged worker: the tests must run
    as root, the setup must have created the account, and the system must have this Python version.
    """
    if os.geteuid() != 0:
        raise RuntimeError("the unprivileged-worker tests start a worker as another account: run them as root")
    try:
        account = pwd.getpwnam(ACCOUNT)
    except KeyError as exc:
        raise RuntimeError(f"no {ACCOUNT!r} account: run ./taskw setup as root") from exc
    system_python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system_python.exists():
        raise RuntimeError(f"{system_python} is missing: the unprivileged worker runs on the system's Python")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    venv = root / "venv"
    requirements = root / "requirements.txt"
    run = [uv(), "--quiet"]
    subprocess.run([*run, "venv", "--python", str(system_python), str(venv)], check=True)
    subprocess.run(
        [*run, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "-o", str(requirements)],
        cwd=BACKEND_DIR,
        check=True,
    )
    python = str(venv / "bin" / "python")
    subprocess.run([*run, "pip", "install", "--python", python, "-r", str(requirements)], check=True)
    subprocess.run([*run, "pip", "install", "--python", python, "--no-deps", str(BACKEND_DIR)], check=True)
    # A home of its own: libraries look for configuration there (asyncpg for ~/.postgresql).
    switch_user = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups", "--"]
    return [*switch_user, "/usr/bin/env", f"HOME={root}", python]
