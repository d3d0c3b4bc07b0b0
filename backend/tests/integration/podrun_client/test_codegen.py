"""podrun_client.generated is exactly what ariadne-codegen makes of the schema and the operations now.

Like the web client's `codegen:check`: regenerate (into a temporary directory) and compare. After
changing schema/schema.graphql or backend/client/operations, run `./taskw client:codegen`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[3] / "client"
GENERATED = CLIENT / "src" / "podrun_client" / "generated"
UV = shutil.which("uv") or str(CLIENT.parents[1] / ".tools" / "bin" / "uv")


def generate(target: Path) -> Path:
    """Run the generator with the committed configuration, writing the package under `target`."""
    pyproject = (CLIENT / "pyproject.toml").read_text()
    configured = 'target_package_path = "src/podrun_client"'
    assert configured in pyproject
    config = target / "pyproject.toml"
    config.write_text(pyproject.replace(configured, f"target_package_path = {json.dumps(str(target))}"))
    subprocess.run(
        [
            UV,
            "run",
            "--frozen",
            "--quiet",
            "--project",
            "codegen",
            "ariadne-codegen",
            "client",
            "--config",
            str(config),
        ],
        cwd=CLIENT,  # the configured paths are relative to the client's directory, and so are the files' headers
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(CLIENT / "codegen" / ".venv")},
        check=True,
        capture_output=True,
    )
    return target / "generated"


def differences(expected: Path, actual: Path) -> list[str]:
    """Files missing, extra or different in `actual` compared with `expected` (caches ignored)."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }

    want, have = files(expected), files(actual)
    return sorted(
        [f"missing {name}" for name in want.keys() - have.keys()]
        + [f"extra {name}" for name in have.keys() - want.keys()]
        + [f"differs {name}" for name in want.keys() & have.keys() if want[name] != have[name]]
    )


def test_generated_client_is_up_to_date(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert differences(fresh, GENERATED) == [], "stale generated client: run ./taskw client:codegen"


def test_the_check_sees_a_stale_file_a_missing_one_and_an_extra_one(tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(GENERATED, stale, ignore=shutil.ignore_patterns("__pycache__"))
    (stale / "enums.py").write_text((stale / "enums.py").read_text().replace("TIMED_OUT", "TIMEOUT"))
    (stale / "me.py").unlink()
    (stale / "removed_operation.py").write_text("")
    assert differences(GENERATED, stale) == ["differs enums.py", "extra removed_operation.py", "missing me.py"]
