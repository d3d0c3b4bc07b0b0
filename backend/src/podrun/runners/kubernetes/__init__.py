"""The Kubernetes runner: one hardened pod per execution.

runner.py starts runs (cold, warm, resumed); pod.py builds the pod and its ConfigMap; sandbox.py is one
run's pod; logs.py, attach.py, watch.py and status.py its log, stdin, state and end; reaper.py removes
what nobody will come back for; client.py is the API client's life.
"""

from podrun.runners.kubernetes.runner import KubernetesRunner

__all__ = ["KubernetesRunner"]
