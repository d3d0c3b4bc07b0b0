"""The Python interpreters sandboxes run, and staging them where a sandbox's uid can read them.

A sandbox runs as a uid that owns nothing (runners/sandbox_users.py), so it can only start an
interpreter every user may read: one under /usr, or a copy staged by the setup (`podrun
stage-runtimes`) into the runtimes directory. Staging takes the interpreter and its standard library
only — no site-packages, test suite or scripts of the host's installation — and hard-links the files
where it can, so it costs next to no space.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

# The harness and the sandbox layout need at least this version.
MIN_VERSION = (3, 10)
SEARCH_DIRS = ("/usr/bin", "/usr/local/bin")
PROBE = "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.base_prefix, sys.executable]))"
MANIFEST = "podrun-runtime.json"
# Parts of an installation a script never needs: tests, GUI toolkits, installers, the host's own packages.
STDLIB_LEFT_OUT = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "site-packages", "__phello__"}


@dataclass(frozen=True, slots=True)
class Interpreter:
    """One interpreter on the host: its exact version and where its installation lives."""

    executable: Path
    version: tuple[int, int, int]
    base_prefix: Path

    @property
    def minor(self) -> str:
        """ "3.12" for 3.12.1."""
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def version_text(self) -> str:
        """ "3.12.1"."""
        return ".".join(str(part) for part in self.version)

    @property
    def runtime_id(self) -> str:
        """The runtime id clients choose it by, "python-3.12"."""
        return f"python-{self.minor}"


def candidate_paths(runtimes_dir: Path) -> list[Path]:
    """python3.X executables in the system directories, the runtimes directory and pyenv's versions."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    patterns = [f"{directory}/python3.*" for directory in SEARCH_DIRS]
    patterns.append(f"{runtimes_dir}/*/bin/python3.*")
    patterns.append(f"{pyenv_root}/versions/*/bin/python3.*")
    paths = {Path(path) for pattern in patterns for path in glob.glob(pattern)}
    # Only "python3.N" itself, not python3.N-config, python3.Nm and friends.
    return sorted(path for path in paths if path.name.removeprefix("python3.").isdigit())


def interpreter_env(executable: Path) -> dict[str, str]:
    """The environment the interpreter needs to start on the host (empty for most)."""
    # A staged shared-library build finds its libpython beside it, not under its (maybe unreadable) build prefix.
    libraries = executable.parent.parent / "lib"
    return {"LD_LIBRARY_PATH": str(libraries)} if any(libraries.glob("libpython3*.so*")) else {}


def probe(executable: Path) -> Interpreter | None:
    """Run the interpreter once to learn its exact version and prefix; None if it is unusable."""
    env = interpreter_env(executable)
    try:
        completed = subprocess.run(  # noqa: S603 - argv list of a discovered interpreter
            [str(executable), "-I", "-c", PROBE], capture_output=True, timeout=10, check=True, env=env
        )
        (major, minor, micro), base_prefix, real_executable = json.loads(completed.stdout)
    except (OSError, subprocess.SubprocessError, ValueError, TypeError) as exc:
        log.warning("python interpreter unusable", executable=str(executable), error=type(exc).__name__)
        return None
    return Interpreter(
        executable=Path(os.path.realpath(real_executable)),
        version=(int(major), int(minor), int(micro)),
        base_prefix=Path(os.path.realpath(base_prefix)),
    )


def discover_installed(configured: list[str], runtimes_dir: Path) -> list[Interpreter]:
    """One interpreter per minor version (the newest patch release wins), oldest first, wherever it lives."""
    paths = [Path(path) for path in configured] if configured else candidate_paths(runtimes_dir)
    by_minor: dict[str, Interpreter] = {}
    for path in paths:
        interpreter = probe(path)
        if interpreter is None or interpreter.version[:2] < MIN_VERSION:
            continue
        current = by_minor.get(interpreter.minor)
        if current is None or interpreter.version > current.version:
            by_minor[interpreter.minor] = interpreter
    return sorted(by_minor.values(), key=lambda interpreter: interpreter.version)


def discover(configured: list[str], runtimes_dir: Path) -> list[Interpreter]:
    """The interpreters sandboxes can run: each found one, or its staged copy when only that is readable to all."""
    usable: list[Interpreter] = []
    for interpreter in discover_installed(configured, runtimes_dir):
        staged = staged_copy(interpreter, runtimes_dir)
        if staged is not None:
            usable.append(staged)
        elif readable_by_everyone(interpreter.base_prefix) and readable_by_everyone(interpreter.executable):
            usable.append(interpreter)
        else:
            log.warning(
                "python interpreter not offered: a sandbox cannot read it; run `podrun stage-runtimes` as root",
                executable=str(interpreter.executable),
            )
    return usable


def readable_by_everyone(path: Path) -> bool:
    """Whether any uid can reach `path` (every directory above it searchable by others, the file readable)."""
    try:
        for directory in reversed(path.parents):
            if not directory.stat().st_mode & stat.S_IXOTH:
                return False
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def staged_dir(interpreter: Interpreter, runtimes_dir: Path) -> Path:
    """Where the staged copy of `interpreter` lives."""
    return runtimes_dir / f"python-{interpreter.version_text}"


def staged_copy(interpreter: Interpreter, runtimes_dir: Path) -> Interpreter | None:
    """The staged copy of `interpreter`, if one was staged from this very installation."""
    target = staged_dir(interpreter, runtimes_dir)
    if interpreter.base_prefix == target:
        return interpreter
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("source") != str(interpreter.base_prefix) or manifest.get("version") != interpreter.version_text:
        return None
    return Interpreter(
        executable=target / interpreter.executable.relative_to(interpreter.base_prefix),
        version=interpreter.version,
        base_prefix=target,
    )


def stage(interpreter: Interpreter, runtimes_dir: Path) -> Path | None:
    """Copy (hard-link where possible) the interpreter and its standard library into the runtimes directory.

    Returns the staged directory, or None when the interpreter needs no staging (everyone can read it)
    or was staged already.
    """
    if readable_by_everyone(interpreter.base_prefix) and readable_by_everyone(interpreter.executable):
        return None
    if staged_copy(interpreter, runtimes_dir) is not None:
        return None
    target = staged_dir(interpreter, runtimes_dir)
    building = target.with_name(target.name + ".staging")
    shutil.rmtree(building, ignore_errors=True)
    source = interpreter.base_prefix
    stdlib = f"python{interpreter.minor}"
    (building / "bin").mkdir(parents=True)
    executable = interpreter.executable.relative_to(source)
    _link_or_copy(interpreter.executable, building / executable)
    for alias in ("python3", "python"):
        (building / "bin" / alias).symlink_to(executable.name)
    (building / "lib").mkdir()
    for library in (source / "lib").glob("libpython3*.so*"):
        if library.is_symlink():
            (building / "lib" / library.name).symlink_to(os.readlink(library))
        else:
            _link_or_copy(library, building / "lib" / library.name)
    shutil.copytree(
        source / "lib" / stdlib,
        building / "lib" / stdlib,
        symlinks=True,
        ignore=_left_out,
        copy_function=_link_or_copy,
    )
    (building / "lib" / stdlib / "site-packages").mkdir()
    (building / MANIFEST).write_text(json.dumps({"source": str(source), "version": interpreter.version_text}))
    for directory, _, _ in os.walk(building):
        os.chmod(directory, 0o755)  # noqa: S103 - every sandbox uid must be able to read the runtime
    runtimes_dir.chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return target


def _left_out(directory: str, names: list[str]) -> set[str]:
    left_out = {name for name in names if name in STDLIB_LEFT_OUT or name.startswith("config-")}
    if Path(directory).name == "lib2to3":
        left_out.add("tests")
    return left_out


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    """A hard link to a file everyone may read (when both share a file system), else a copy everyone may read."""
    if not os.path.islink(source) and os.stat(source).st_mode & stat.S_IROTH:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copy2(source, target, follow_symlinks=False)
    if not os.path.islink(target):
        os.chmod(target, os.stat(target).st_mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
