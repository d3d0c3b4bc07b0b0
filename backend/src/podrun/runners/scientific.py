"""The scientific runtime: numpy, pandas, matplotlib and scipy beside each interpreter, installed by the setup.

`podrun stage-runtimes` installs the pinned, hash-checked packages of REQUIREMENTS (one file, with
markers, for every Python >= 3.10) from PyPI with uv, once per interpreter, into
`<runtimes dir>/scientific-<version>/site-packages` (with matplotlib's font list beside it), readable
by every sandbox uid; it installs again only when the requirements file changes. A sandbox of the
runtime `python-3.X-scientific` binds that directory read-only at `protocol.PACKAGES_DIR`; the harness
puts its site-packages on `sys.path` before it forks the script process (so a warm sandbox could
import them ahead of its run). Nothing is installed at run
time: a sandbox has no network, and no pip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

import structlog

from podrun.runners import protocol
from podrun.runners.interpreters import Interpreter, interpreter_env
from podrun.settings import REPO_ROOT

log = structlog.get_logger(__name__)

REQUIREMENTS = REPO_ROOT / "infra" / "docker" / "runtime-scientific.requirements.txt"
RUNTIME_SUFFIX = "-scientific"
MANIFEST = "podrun-packages.json"
INSTALL_TIMEOUT_S = 1800
# Changed whenever `install` lays the directory out differently, so that the setup installs again.
INSTALL_LAYOUT = b"bytecode, font list\n"


@dataclass(frozen=True, slots=True)
class Package:
    """A distribution installed in a runtime."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class PackageSet:
    """The packages installed for one interpreter: their directory (site-packages and caches), and which."""

    directory: Path
    packages: tuple[Package, ...]


def runtime_id(interpreter: Interpreter) -> str:
    """ "python-3.12-scientific"."""
    return interpreter.runtime_id + RUNTIME_SUFFIX


def packages_dir(interpreter: Interpreter, runtimes_dir: Path) -> Path:
    """Where the packages for `interpreter` are installed."""
    return runtimes_dir / f"scientific-{interpreter.version_text}"


def installed(interpreter: Interpreter, runtimes_dir: Path) -> PackageSet | None:
    """The packages installed for `interpreter`, if the setup installed them."""
    target = packages_dir(interpreter, runtimes_dir)
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        packages = tuple(Package(name, version) for name, version in manifest["packages"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return PackageSet(target, packages)


def requirements_digest() -> str:
    """A digest of the requirements and of how they are installed, which a manifest records to tell if it is current."""
    return hashlib.sha256(INSTALL_LAYOUT + REQUIREMENTS.read_bytes()).hexdigest()


def install(interpreter: Interpreter, runtimes_dir: Path, uv: str) -> Path | None:
    """Install the requirements for `interpreter` with uv (hashes checked, wheels only); None if current already."""
    target = packages_dir(interpreter, runtimes_dir)
    digest = requirements_digest()
    try:
        if json.loads((target / MANIFEST).read_text()).get("requirements_sha256") == digest:
            return None
    except (OSError, ValueError):
        pass
    building = target.with_name(target.name + ".installing")
    shutil.rmtree(building, ignore_errors=True)
    site_packages = building / "site-packages"
    command = [
        uv, "pip", "install", "--quiet", "--no-config",
        "--python", str(interpreter.executable),
        "--target", str(site_packages),
        "--require-hashes", "--only-binary", ":all:",
        # Sandboxes cannot write bytecode: without it every import would compile the sources again.
        "--compile-bytecode",
        "--requirement", str(REQUIREMENTS),
    ]  # fmt: skip
    env = {**os.environ, **interpreter_env(interpreter.executable)}
    subprocess.run(command, check=True, timeout=INSTALL_TIMEOUT_S, env=env)  # noqa: S603 - argv list, our own uv
    # Console scripts name the host's interpreter and are of no use in a sandbox.
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    _build_font_cache(interpreter, site_packages, building / protocol.MATPLOTLIB_CACHE)
    packages = sorted(
        {(dist.metadata["Name"], dist.version) for dist in distributions(path=[str(site_packages)])},
        key=lambda package: package[0].lower(),
    )
    manifest = {"requirements_sha256": digest, "python": interpreter.version_text, "packages": packages}
    (building / MANIFEST).write_text(json.dumps(manifest, indent=1))
    for directory, _, files in os.walk(building):
        os.chmod(directory, 0o755)  # noqa: S103 - every sandbox uid must be able to read the packages
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444)
    runtimes_dir.chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    return target


def _build_font_cache(interpreter: Interpreter, site_packages: Path, cache: Path) -> None:
    """Matplotlib's font list, made once here: each run would otherwise scan the fonts on its first plot.

    The harness copies it into the run's matplotlib directory. Matplotlib keeps its own fonts' paths
    relative to its data directory, and system fonts are at the same paths in a sandbox.
    """
    cache.mkdir(parents=True)
    env = {
        **interpreter_env(interpreter.executable),
        "PYTHONPATH": str(site_packages),
        "MPLCONFIGDIR": str(cache),
        "MPLBACKEND": "Agg",
    }
    probe = [str(interpreter.executable), "-c", "import matplotlib.font_manager"]
    subprocess.run(probe, check=True, timeout=INSTALL_TIMEOUT_S, env=env, capture_output=True)  # noqa: S603
