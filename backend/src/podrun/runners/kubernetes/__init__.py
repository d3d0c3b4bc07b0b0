"""The Kubernetes runner: one hardened pod per execution (runner.py), built from typed objects (pod.py)."""

from podrun.runners.kubernetes.runner import KubernetesRunner

__all__ = ["KubernetesRunner"]
