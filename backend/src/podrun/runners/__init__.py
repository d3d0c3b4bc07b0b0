"""Sandbox runners: the contract (base.py), the local bubblewrap runner and the Kubernetes runner."""

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
