"""Finding the Python interpreters on this host that sandboxes can run."""

from __future__ import annotations

import glob
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

# The harness and the sandbox layout need at least this version.
MIN_VERSION = (3, 10)
SEARCH_DIRS = ("/usr/bin", "/usr/local/bin")
PROBE = "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.base_prefix, sys.executable]))"


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


def candidate_paths() -> list[Path]:
    """python3.X executables in the system directories and in pyenv's versions."""
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    patterns = [f"{directory}/python3.*" for directory in SEARCH_DIRS]
    patterns.append(f"{pyenv_root}/versions/*/bin/python3.*")
    paths = {Path(path) for pattern in patterns for path in glob.glob(pattern)}
    # Only "python3.N" itself, not python3.N-config, python3.Nm and friends.
    return sorted(path for path in paths if path.name.removeprefix("python3.").isdigit())


def probe(executable: Path) -> Interpreter | None:
    """Run the interpreter once to learn its exact version and prefix; None if it is unusable."""
    try:
        completed = subprocess.run(  # noqa: S603 - argv list of a discovered interpreter
            [str(executable), "-I", "-c", PROBE], capture_output=True, timeout=10, check=True
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


def discover(configured: list[str]) -> list[Interpreter]:
    """One interpreter per minor version (the newest patch release wins), oldest first."""
    paths = [Path(path) for path in configured] if configured else candidate_paths()
    by_minor: dict[str, Interpreter] = {}
    for path in paths:
        interpreter = probe(path)
        if interpreter is None or interpreter.version[:2] < MIN_VERSION:
            continue
        current = by_minor.get(interpreter.minor)
        if current is None or interpreter.version > current.version:
            by_minor[interpreter.minor] = interpreter
    return sorted(by_minor.values(), key=lambda interpreter: interpreter.version)
