"""The running local cluster (`./taskw kubernetes:up`): its administrator's API access, kubectl, its audit log.

`infra/kubernetes-local/cluster.py up` writes `cluster.json` in its state directory; everything
here starts from that file. The tests act as the administrator only to set the cluster up (apply
the local overlay, ask for the worker's token) and to observe it; Podrun's workers use the
ServiceAccount `podrun-worker` and nothing else.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from podrun.settings import REPO_ROOT
from tests.integration.kubernetes.kustomize import Object, render

SCRIPT = REPO_ROOT / "infra" / "kubernetes-local" / "cluster.py"
STATE = Path(os.environ.get("LOCAL_KUBERNETES_STATE", "/var/lib/podrun-kubernetes"))
CACHE = Path(os.environ.get("LOCAL_KUBERNETES_CACHE", "/var/cache/podrun-kubernetes"))
OVERLAY = REPO_ROOT / "infra" / "k8s" / "overlays" / "local"
EXECUTIONS = "podrun-exec"
WORKER = ("podrun", "podrun-worker")
WORKER_USER = "system:serviceaccount:podrun:podrun-worker"
# Long enough for any test session; TokenRequest tokens are bound to the ServiceAccount and expire.
TOKEN_SECONDS = 6 * 3600


@dataclass(frozen=True)
class LocalCluster:
    """A running local cluster, as its cluster.json describes it."""

    server: str
    certificate_authority: Path
    admin_kubeconfig: Path
    kubectl_path: Path
    version: str
    node: str
    audit_log: Path
    images: dict[str, str]

    @classmethod
    def load(cls, state: Path = STATE) -> LocalCluster:
        info = json.loads((state / "cluster.json").read_text())
        return cls(
            server=info["server"],
            certificate_authority=Path(info["certificate_authority"]),
            admin_kubeconfig=Path(info["admin_kubeconfig"]),
            kubectl_path=Path(info["kubectl"]),
            version=info["version"],
            node=info["node"],
            audit_log=Path(info["audit_log"]),
            images=info["images"],
        )

    def admin_token(self) -> str:
        token: str = json.loads(self.admin_kubeconfig.read_text())["users"][0]["user"]["token"]
        return token

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API server, as the administrator or as the holder of `token`."""
        return httpx.Client(
            base_url=self.server,
            verify=ssl.create_default_context(cafile=self.certificate_authority),
            headers={"Authorization": f"Bearer {token or self.admin_token()}"},
            timeout=30,
        )

    def responds(self) -> bool:
        try:
            with self.client() as api:
                return api.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl 1.20 (built with the cluster) as the administrator."""
        return subprocess.run(
            # Its discovery cache in the cluster's state directory (the default is ~/.kube/cache).
            [
                str(self.kubectl_path),
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--cache-dir={STATE / 'kubectl'}",
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def apply(self, objects: list[Object], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", *extra, "-f", "-", stdin=yaml.safe_dump_all(objects))

    def service_account_token(self, namespace: str, name: str) -> str:
        """A token for a ServiceAccount from the TokenRequest API, as a pod's projected token would be."""
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": TOKEN_SECONDS}}  # fmt: skip
        with self.client() as api:
            response = api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=request)
        response.raise_for_status()
        token: str = response.json()["status"]["token"]
        return token

    def write_kubeconfig(self, path: Path, user: str, token: str) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.server,
                                                       "certificate-authority": str(self.certificate_authority)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
            "current-context": "local",
        }  # fmt: skip
        path.write_text(json.dumps(config))
        path.chmod(0o600)
        return path

    def audit_events(self) -> list[dict[str, Any]]:
        """The API server's audit log so far (what its policy records: see infra/kubernetes-local/configs.py)."""
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]


def local_overlay() -> list[Object]:
    return render(OVERLAY)


def cannot_host() -> str | None:
    """Why this machine cannot host the local cluster (infra/kubernetes-local/cluster.py check), or None."""
    check = subprocess.run(["python3", str(SCRIPT), "check"], capture_output=True, text=True, check=False)
    return None if check.returncode == 0 else (check.stdout.strip() or check.stderr.strip())


def not_running() -> str | None:
    """Why the local cluster cannot be used now, on a machine that can host it (None: it is up and answers)."""
    if not (STATE / "cluster.json").exists():
        return "it is not running: start it with `./taskw kubernetes:up` (or run `./taskw test`)"
    if not LocalCluster.load().responds():
        return f"its API server does not answer (state in {STATE}); `./taskw kubernetes:down`, then `:up` again"
    return None
