"""Sandbox runners: the contract (base.py), the local bubblewrap runner (local/), the Kubernetes one (kubernetes/).

What both share: the harness protocol (protocol.py, shipped into every sandbox with the harness,
harness_child.py and harness_artifacts.py, as bundle.py lists them), the header and the one frame
reader of the host (frames.py, artifact_frames.py), and the one classifier of how a run ended (ending.py).
"""

from __future__ import annotations

from podrun.runners.base import Runner
from podrun.settings import Settings


def build_runner(settings: Settings) -> Runner:
    """The runner chosen by `settings.runner`."""
    if settings.runner == "kubernetes":
        from podrun.runners.kubernetes import KubernetesRunner  # noqa: PLC0415 - runners load only when chosen

        return KubernetesRunner(settings)
    from podrun.runners.local import LocalRunner  # noqa: PLC0415

    return LocalRunner(settings)
