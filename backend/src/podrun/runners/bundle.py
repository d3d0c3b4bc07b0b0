"""The files every sandbox gets beside the script: the harness and the stdlib-only modules it imports.

Both runners ship exactly these, by content, into one directory of the sandbox (bound read-only by
the local runner, keys of the pod's ConfigMap on Kubernetes); the harness is run from there.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from podrun.runners import protocol

HARNESS = "harness.py"


@cache
def harness_files() -> dict[str, bytes]:
    """Each shipped file's name and content, the harness first, read once."""
    directory = Path(__file__).parent
    return {f"{module}.py": (directory / f"{module}.py").read_bytes() for module in protocol.HARNESS_MODULES}
