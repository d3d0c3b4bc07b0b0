"""What the runner's tests observe of the cluster it talks to: the stand-in's own records, or the real API server.

The same tests run against both (tests/integration/kubernetes/conftest.py). On the stand-in the
answers come from what it recorded; on the local Kubernetes 1.20 from the API (as the
administrator) and from the API server's audit log, which records every call of the worker's
identity and, in the executions namespace, every pod creation with the spec that was sent.
"""

from __future__ import annotations

from typing import Any, Protocol

from tests.kubernetes_local.cluster import EXECUTIONS, LocalCluster
from tests.kubernetes_standin.server import StandIn


class ClusterView(Protocol):
    """Questions about pods and ConfigMaps in the executions namespace, by name."""

    def pod_exists(self, name: str) -> bool: ...

    def pods_labelled(self, label: str, value: str) -> list[str]:
        """The names of the pods there are with this label."""

    def config_map_exists(self, name: str) -> bool: ...

    def creates(self, name: str) -> int:
        """How many times a pod of this name was asked for (including refused attempts: 409)."""

    def deletes(self, name: str) -> int:
        """How many times a pod of this name was deleted."""

    def attaches(self, name: str) -> int:
        """How many attach sessions were opened to the pod."""

    def created_spec(self, name: str) -> dict[str, Any]:
        """The pod spec in the first create request."""

    def annotations(self, name: str) -> dict[str, str]: ...

    def create_pod(self, body: dict[str, Any]) -> None:
        """Create a pod as the cluster's administrator (not as the worker)."""


class StandInView:
    """Answers from the stand-in's records."""

    def __init__(self, state: StandIn, create: Any) -> None:
        self.state = state
        self._create = create

    def pod_exists(self, name: str) -> bool:
        return name in self.state.pods

    def pods_labelled(self, label: str, value: str) -> list[str]:
        return [
            name
            for name, pod in self.state.pods.items()
            if pod.manifest["metadata"].get("labels", {}).get(label) == value
        ]

    def config_map_exists(self, name: str) -> bool:
        return name in self.state.config_maps

    def creates(self, name: str) -> int:
        return self.state.pod_creates.get(name, 0)

    def deletes(self, name: str) -> int:
        return self.state.deleted.count(name)

    def attaches(self, name: str) -> int:
        return self.state.attaches.get(name, 0)

    def created_spec(self, name: str) -> dict[str, Any]:
        return self.state.created_specs[name]

    def annotations(self, name: str) -> dict[str, str]:
        pod = self.state.pods.get(name)
        return (pod.manifest["metadata"].get("annotations") or {}) if pod is not None else {}

    def create_pod(self, body: dict[str, Any]) -> None:
        self._create(body)


class RealView:
    """Answers from the local cluster's API server and its audit log."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def _get(self, path: str) -> dict[str, Any] | None:
        with self.cluster.client() as api:
            response = api.get(f"/api/v1/namespaces/{EXECUTIONS}/{path}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def pod_exists(self, name: str) -> bool:
        return self._get(f"pods/{name}") is not None

    def pods_labelled(self, label: str, value: str) -> list[str]:
        with self.cluster.client() as api:
            response = api.get(f"/api/v1/namespaces/{EXECUTIONS}/pods", params={"labelSelector": f"{label}={value}"})
        response.raise_for_status()
        return [pod["metadata"]["name"] for pod in response.json()["items"]]

    def config_map_exists(self, name: str) -> bool:
        return self._get(f"configmaps/{name}") is not None

    def _events(self, name: str, verb: str, subresource: str | None = None) -> list[dict[str, Any]]:
        """Completed requests on the pod `name` (one event per request; long-running ones when they end)."""
        found = []
        for event in self.cluster.audit_events():
            ref = event.get("objectRef") or {}
            if (
                event["verb"] == verb
                and ref.get("resource") == "pods"
                and ref.get("name") == name
                and ref.get("namespace") == EXECUTIONS
                and ref.get("subresource") == subresource
                and event["stage"] in ("ResponseComplete", "Panic")
            ):
                found.append(event)
        return found

    def creates(self, name: str) -> int:
        return len(self._events(name, "create"))

    def deletes(self, name: str) -> int:
        return sum(1 for event in self._events(name, "delete") if event["responseStatus"]["code"] == 200)

    def attaches(self, name: str) -> int:
        # A WebSocket attach is an upgraded GET; it is recorded when it has started, so count those.
        return len(
            {
                event["auditID"]
                for event in self.cluster.audit_events()
                if (event.get("objectRef") or {}).get("subresource") == "attach"
                and event["objectRef"].get("name") == name
            }
        )

    def created_spec(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = self._events(name, "create")[0]["requestObject"]["spec"]
        return spec

    def annotations(self, name: str) -> dict[str, str]:
        pod = self._get(f"pods/{name}")
        return (pod["metadata"].get("annotations") or {}) if pod is not None else {}

    def create_pod(self, body: dict[str, Any]) -> None:
        with self.cluster.client() as api:
            response = api.post(f"/api/v1/namespaces/{EXECUTIONS}/pods", json=body)
        assert response.status_code == 201, response.text
