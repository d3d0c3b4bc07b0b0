"""The worker's identity on a real API server: the Role of infra/k8s allows the runner's calls and nothing else.

Every run of the suite on the local cluster is made as the ServiceAccount podrun-worker, so a call
the Role does not allow fails the run; calls whose failure a run survives (recording stdin progress)
are caught by the API server's audit log, which tests/kubernetes_local/fixtures.py reads at the end.
"""

from __future__ import annotations

import pytest

from tests.kubernetes_local.cluster import EXECUTIONS, WORKER, WORKER_USER, LocalCluster

REFUSED = [
    pytest.param("GET", f"/api/v1/namespaces/{EXECUTIONS}/secrets", id="secrets"),
    pytest.param("GET", f"/api/v1/namespaces/{EXECUTIONS}/configmaps/podrun-x", id="read-configmap"),
    pytest.param("GET", "/api/v1/pods", id="pods-everywhere"),
    pytest.param("POST", "/api/v1/namespaces/podrun/pods", id="pods-in-podrun"),
    pytest.param("POST", f"/api/v1/namespaces/{EXECUTIONS}/pods/podrun-x/exec", id="exec"),
    pytest.param("POST", f"/api/v1/namespaces/{EXECUTIONS}/pods/podrun-x/portforward", id="portforward"),
    pytest.param("GET", f"/api/v1/namespaces/{EXECUTIONS}/pods/podrun-x/proxy", id="proxy"),
    pytest.param("PUT", f"/api/v1/namespaces/{EXECUTIONS}/pods/podrun-x", id="replace-pod"),
    pytest.param("POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{EXECUTIONS}/roles", id="roles"),
    pytest.param("DELETE", f"/api/v1/namespaces/{EXECUTIONS}", id="delete-namespace"),
    pytest.param("GET", "/api/v1/nodes", id="nodes"),
]


@pytest.fixture(scope="module")
def worker_token(local_kubernetes: LocalCluster) -> str:
    return local_kubernetes.service_account_token(*WORKER)


@pytest.mark.parametrize(("method", "path"), REFUSED)
def test_the_worker_may_do_nothing_else(
    local_kubernetes: LocalCluster, worker_token: str, method: str, path: str
) -> None:
    with local_kubernetes.client(worker_token) as api:
        response = api.request(method, path, json={})
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == "Forbidden"
    assert f'"{WORKER_USER}"' in response.json()["message"]


def test_the_worker_may_do_what_the_runner_does(local_kubernetes: LocalCluster, worker_token: str) -> None:
    with local_kubernetes.client(worker_token) as api:
        assert api.get(f"/api/v1/namespaces/{EXECUTIONS}/pods").status_code == 200
        # Allowed, so the answer is about the object: it is not there.
        assert api.get(f"/api/v1/namespaces/{EXECUTIONS}/pods/podrun-x/log").status_code == 404
        assert api.delete(f"/api/v1/namespaces/{EXECUTIONS}/configmaps/podrun-x").status_code == 404
        assert (
            api.patch(
                f"/api/v1/namespaces/{EXECUTIONS}/pods/podrun-x",
                json={"metadata": {"annotations": {"a": "b"}}},
                headers={"Content-Type": "application/merge-patch+json"},
            ).status_code
            == 404
        )
