"""podrun-client installs on its own, as the README says (`uv tool install ./backend/client`), without the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BACKEND = Path(__file__).resolve().parents[3]
UV = shutil.which("uv") or str(BACKEND.parent / ".tools" / "bin" / "uv")


def server_dependencies() -> set[str]:
    project = tomllib.loads((BACKEND / "pyproject.toml").read_text())["project"]
    return {"podrun"} | {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}


def test_uv_tool_install_brings_prun_and_nothing_of_the_server(tmp_path: Path) -> None:
    env = {
        **{name: value for name, value in os.environ.items() if name not in ("UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV")},
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
    }
    subprocess.run([UV, "tool", "install", "--quiet", str(BACKEND / "client")], env=env, check=True, cwd=tmp_path)

    shown = subprocess.run([tmp_path / "bin" / "prun", "--help"], capture_output=True, text=True, check=True)
    assert "login" in shown.stdout
    assert "watch" in shown.stdout
    listed = subprocess.run(
        [UV, "pip", "list", "--format", "json", "--python", tmp_path / "tools" / "podrun-client" / "bin" / "python"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {canonicalize_name(package["name"]) for package in json.loads(listed.stdout)}
    assert "podrun-client" in installed
    assert installed & server_dependencies() == set()
    assert installed <= {
        "podrun-client",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "idna",
        "certifi",
        "sniffio",
        "pydantic",
        "pydantic-core",
        "annotated-types",
        "typing-extensions",
        "typing-inspection",
        "websockets",
    }
