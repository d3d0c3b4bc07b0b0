"""The bubblewrap sandbox as a command: its options, the interpreter's place in it, and files placed by content.

Nothing of the worker reaches the sandbox: bubblewrap starts with an environment built here (it
becomes the sandbox's PID 1, whose environment a script can read), its options come from a memory
file instead of its command line, and the harness is placed by content, so no host path, secret or
URL shows in any process or mount a script can see.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from podrun.runners import protocol
from podrun.runners.bundle import HARNESS
from podrun.runners.interpreters import Interpreter
from podrun.runners.scientific import PackageSet
from podrun.settings import SandboxSettings

log = structlog.get_logger(__name__)


BWRAP = "/usr/bin/bwrap"
# The harness and the modules it imports are bound here by content (bundle.py).
HARNESS_SANDBOX_DIR = "/opt/podrun"
HARNESS_SANDBOX_PATH = f"{HARNESS_SANDBOX_DIR}/{HARNESS}"
PYTHON_SANDBOX_ROOT = "/opt/python"
SANDBOX_SHM = "/dev/shm"  # noqa: S108 - the sandbox's own tmpfs
SANDBOX_UID = "65534"
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc/fonts: fontconfig's configuration, which matplotlib's text rendering reads.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts")


@dataclass(frozen=True, slots=True)
class SandboxLayout:
    """How one interpreter is laid out in a sandbox: its path there, its bind mount, the sandbox's environment."""

    executable: str
    interpreter_bind: tuple[Path, str] | None
    env: dict[str, str]
    packages_bind: tuple[Path, str] | None = None


def layout(interpreter: Interpreter, packages: PackageSet | None = None) -> SandboxLayout:
    """Where the interpreter (and the runtime's packages) appear in the sandbox, and the sandbox's environment."""
    env = dict(protocol.SANDBOX_ENV)
    packages_bind = (packages.directory, protocol.PACKAGES_DIR) if packages is not None else None
    if interpreter.base_prefix.is_relative_to("/usr"):
        return SandboxLayout(str(interpreter.executable), None, env, packages_bind)
    # An interpreter outside /usr (a staged copy) appears at a neutral path.
    prefix = f"{PYTHON_SANDBOX_ROOT}/{interpreter.version_text}"
    env["PATH"] = f"{prefix}/bin:{env['PATH']}"
    # Shared-library builds find libpythonX.Y.so through an absolute RUNPATH of where they were built.
    if any((interpreter.base_prefix / "lib").glob("libpython*.so*")):
        env["LD_LIBRARY_PATH"] = f"{prefix}/lib"
    executable = f"{prefix}/{interpreter.executable.relative_to(interpreter.base_prefix)}"
    return SandboxLayout(executable, (interpreter.base_prefix, prefix), env, packages_bind)


def options(sandbox: SandboxSettings, layout: SandboxLayout, files: Sequence[str]) -> list[str]:
    """bubblewrap's options: nothing of the host but system files, the interpreter and `files`.

    `files` are options that place more files (the harness, by content), before the root turns read-only.
    """
    options = [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        # The harness is the sandbox's PID 1: the kernel delivers a script's signals to it only when
        # it handles them, so a script cannot kill the harness that reports on it.
        "--as-pid-1",
        "--uid", SANDBOX_UID,
        "--gid", SANDBOX_UID,
        "--hostname", "podrun",
        "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            options += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            options += ["--ro-bind", directory, directory]
    for path in ETC_FILES:
        options += ["--ro-bind-try", path, path]
    options += ["--proc", "/proc", "--dev", "/dev"]
    options += ["--size", str(sandbox.tmp_mib * 1024 * 1024), "--tmpfs", protocol.SANDBOX_TMP]
    # POSIX shared memory and multiprocessing's semaphores and arenas live here; its pages, like /tmp's,
    # count against the run's memory cgroup.
    options += ["--size", str(sandbox.shm_mib * 1024 * 1024), "--tmpfs", SANDBOX_SHM]
    for bind in (layout.interpreter_bind, layout.packages_bind):
        if bind is not None:
            options += ["--ro-bind", str(bind[0]), bind[1]]
    options += files
    # bwrap's root and its /dev are tmpfs: make them read-only, so only the size-capped /tmp and /dev/shm
    # are writable (device nodes such as /dev/null stay writable on a read-only mount).
    return [*options, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", protocol.SANDBOX_TMP]


def memory_file(name: str, data: bytes) -> int:
    """An anonymous in-memory file holding `data`, positioned at its start, for a child to read."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
