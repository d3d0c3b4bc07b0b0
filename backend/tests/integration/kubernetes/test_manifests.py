"""infra/k8s/: every overlay renders, validates against the Kubernetes schema, meets Pod Security
Standards "restricted", grants the runner exactly what it calls, passes checkov's Kubernetes checks,
and is accepted by a real API server (the local Kubernetes 1.20, `kubectl apply --dry-run=server`)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import podrun.runners.kubernetes.runner as runner_module
from podrun.runners.kubernetes.pod import labels
from podrun.runners.kubernetes.runner import KubernetesRunner
from podrun.settings import REPO_ROOT, Settings
from tests.integration.kubernetes.kustomize import Object, Unsupported, image_name, pod_spec, render
from tests.kubernetes_local.cluster import LocalCluster
from tests.pss import violations

K8S = REPO_ROOT / "infra" / "k8s"
OVERLAYS = ["dev", "production", "production-gvisor", "local"]
# The Deployments and the Job of Podrun; the local overlay has none (its API and workers run on the host).
WORKLOADS = {"podrun-api", "podrun-worker", "podrun-migrate"}
KUBERNETES_VERSION = "1.33"
CHECKOV = "checkov==3.3.30"
NAMESPACES = {"podrun", "podrun-exec"}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Object]]:
    name: str = request.param
    return name, render(K8S / "overlays" / name)


def find(objects: list[Object], kind: str, name: str) -> Object:
    (found,) = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


def test_every_object_validates_against_the_kubernetes_schema(overlay: tuple[str, list[Object]]) -> None:
    _, objects = overlay
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert {obj["metadata"].get("namespace") for obj in objects} <= {*NAMESPACES, None}
    cluster_wide = {obj["kind"] for obj in objects if obj["metadata"].get("namespace") is None}
    assert cluster_wide <= {"Namespace", "RuntimeClass"}


def test_every_pod_template_meets_the_restricted_standard(overlay: tuple[str, list[Object]]) -> None:
    name, objects = overlay
    workloads = [obj for obj in objects if pod_spec(obj) is not None]
    assert {obj["metadata"]["name"] for obj in workloads} >= (set() if name == "local" else WORKLOADS)
    for obj in workloads:
        spec = pod_spec(obj)
        assert spec is not None
        where = f"{obj['kind']} {obj['metadata']['name']}"
        assert violations(spec) == [], where
        assert spec["securityContext"]["runAsUser"] >= 10000, where
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert set(container["resources"]["limits"]) == {"cpu", "memory", "ephemeral-storage"}, where
            assert image_name(container["image"]) != container["image"], f"{where}: image without a tag"
        # Only the worker talks to the Kubernetes API.
        assert spec["automountServiceAccountToken"] is (obj["metadata"]["name"] == "podrun-worker"), where


def test_both_namespaces_enforce_restricted(overlay: tuple[str, list[Object]]) -> None:
    _, objects = overlay
    for name in NAMESPACES:
        namespace_labels = find(objects, "Namespace", name)["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert namespace_labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def runner_permissions() -> set[tuple[str, str]]:
    """(resource, verb) for every Kubernetes API call in the runner's source.

    That is every module of its package but pod.py, which only builds manifests (and whose label
    `podrun.dev/execution-id` would read as "/exec").
    """
    modules = sorted(Path(runner_module.__file__).parent.glob("*.py"))
    source = "".join(path.read_text() for path in modules if path.name != "pod.py")
    verbs = {"create": "create", "read": "get", "list": "list", "delete": "delete", "patch": "patch"}
    calls = re.findall(r"api\.(\w+?)_namespaced_(pod|config_map)(_log)?\b", source)
    assert calls
    found = set()
    for verb, resource, log in calls:
        found.add(({"pod": "pods", "config_map": "configmaps"}[resource] + ("/log" if log else ""), verbs[verb]))
    if "watch.stream(" in source:
        found.add(("pods", "watch"))
    if re.search(r"/pods/\{name\}/log", source):
        found.add(("pods/log", "get"))
    if "connect_get_namespaced_pod_attach(" in source:
        # A WebSocket upgrade is a GET ("get"); API servers >= 1.35 also check "create" on it.
        found |= {("pods/attach", "get"), ("pods/attach", "create")}
    for forbidden in ("namespaced_pod_exec", "/exec", "namespaced_pod_portforward", "_proxy"):
        assert forbidden not in source
    return found


def test_the_worker_role_grants_exactly_what_the_runner_calls(overlay: tuple[str, list[Object]]) -> None:
    name, objects = overlay
    assert not [obj for obj in objects if obj["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = find(objects, "Role", "podrun-runner")
    assert role["metadata"]["namespace"] == "podrun-exec"
    granted = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        granted |= {(resource, verb) for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == runner_permissions()
    binding = find(objects, "RoleBinding", "podrun-runner")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "podrun-runner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "podrun-worker", "namespace": "podrun"}]
    assert find(objects, "ServiceAccount", "podrun-worker")["metadata"]["namespace"] == "podrun"
    if name != "local":
        worker = pod_spec(find(objects, "Deployment", "podrun-worker"))
        assert worker is not None
        assert worker["serviceAccountName"] == "podrun-worker"


def test_execution_pods_are_cut_off_from_the_network(overlay: tuple[str, list[Object]]) -> None:
    _, objects = overlay
    policy = find(objects, "NetworkPolicy", "podrun-executions-isolated")
    assert policy["metadata"]["namespace"] == "podrun-exec"
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy["spec"]
    assert "egress" not in policy["spec"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels(uuid.uuid4()).items()
    assert {obj["kind"] for obj in objects if obj["metadata"].get("namespace") == "podrun-exec"} >= {
        "ResourceQuota", "LimitRange", "NetworkPolicy",
    }  # fmt: skip


def test_the_settings_parse_and_the_runtime_catalog_works(
    overlay: tuple[str, list[Object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, objects = overlay
    environment = dict(find(objects, "ConfigMap", "podrun-config")["data"])
    secrets = {
        key: base64.b64decode(value).decode()
        for obj in objects
        if obj["kind"] == "Secret"
        for key, value in obj["data"].items()
    }
    monkeypatch.delenv("PODRUN_MODE")
    if name == "dev":
        assert "dev-only" in secrets["PODRUN_JWT_SECRET"]
        assert "dev-only" in secrets["password"]
        environment |= {key: value for key, value in secrets.items() if key.startswith("PODRUN_")}
    else:
        # Production secrets are created out of band and only referenced, never rendered.
        assert secrets == {}
        environment |= {"PODRUN_DATABASE_URL": "postgresql+asyncpg://x@db/podrun", "PODRUN_JWT_SECRET": "s" * 48}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    # The local overlay's workers run on the host with the test suite's mode.
    assert (settings.mode, settings.runner, settings.kubernetes.namespace) == (
        "development" if name == "local" else "production",
        "kubernetes",
        "podrun-exec",
    )
    runtimes = {runtime.id: runtime for runtime in KubernetesRunner(settings).runtimes()}
    assert settings.kubernetes.default_runtime in runtimes
    if name == "local":
        # Built on the node (infra/kubernetes-local), never pulled.
        assert settings.kubernetes.image_pull_policy == "Never"
        assert all(image.startswith("podrun.local/") for image in settings.kubernetes.runtimes.values())
    if name.startswith("production"):
        assert settings.kubernetes.runtimes["python-3.12-scientific"].endswith("/runtime-scientific:0.1.0")
    assert settings.kubernetes.runtime_class == ("gvisor" if name == "production-gvisor" else None)


# autoscaling/v2 became GA in Kubernetes 1.23; it is the only API of the manifests that 1.20 does not serve.
NOT_SERVED_BY_1_20 = {("autoscaling/v2", "HorizontalPodAutoscaler")}


def test_a_real_api_server_accepts_every_overlay(
    overlay: tuple[str, list[Object]], local_kubernetes: LocalCluster
) -> None:
    _, objects = overlay
    listed = local_kubernetes.kubectl("api-versions")
    assert listed.returncode == 0, listed.stderr
    served = set(listed.stdout.split())
    assert {
        (obj["apiVersion"], obj["kind"]) for obj in objects if obj["apiVersion"] not in served
    } <= NOT_SERVED_BY_1_20
    accepted = [obj for obj in objects if obj["apiVersion"] in served]
    # kubectl validates every object against the server's own OpenAPI schema, then the server runs its
    # admission (quotas, limit ranges, RBAC's escalation checks) without storing anything.
    result = local_kubernetes.apply(accepted, "--dry-run=server")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(accepted)


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamespace: elsewhere\n")
    with pytest.raises(Unsupported):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("configMapGenerator:\n  - name: x\n    literals: [A=1]\n")
    with pytest.raises(Unsupported, match="disableNameSuffixHash"):
        render(tmp_path)


def uv() -> str:
    """The uv running these tests (`uv run` sets UV), else the one on PATH or the repo's own."""
    found = os.environ.get("UV") or shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed to run checkov"
    return found


# Proves the run reads failures: checkov must flag this pod, which is outside the manifests.
CANARY = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "canary", "namespace": "podrun"},
    "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
}


@pytest.fixture(scope="session")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over every rendered overlay (uv installs checkov once and caches it)."""
    root = tmp_path_factory.mktemp("rendered")
    for name in OVERLAYS:
        (root / name).mkdir()
        (root / name / "all.yaml").write_text(yaml.safe_dump_all(render(K8S / "overlays" / name)))
    (root / "canary").mkdir()
    (root / "canary" / "pod.yaml").write_text(yaml.safe_dump(CANARY))
    command = [uv(), "tool", "run", "--from", CHECKOV, "checkov", "-d", str(root), "--framework", "kubernetes"]
    # --skip-download: no calls to Prisma Cloud for guidelines (and no waiting on them offline).
    result = subprocess.run(
        [*command, "--compact", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    found: dict[str, Any] = report[0] if isinstance(report, list) else report
    return found


def test_checkov_passes_every_overlay(checkov_report: dict[str, Any]) -> None:
    results = checkov_report["results"]
    skipped = sorted(
        {
            (check["check_id"], check["resource"], check["check_result"].get("suppress_comment", ""))
            for check in results["skipped_checks"]
        }
    )
    print("\ncheckov 3.3.30: checks skipped in the manifests, with their reasons:")
    for check_id, resource, reason in skipped:
        print(f"  {check_id} {resource}: {reason}")
    failed = {(check["check_id"], check["file_path"], check["resource"]) for check in results["failed_checks"]}
    canary = {failure for failure in failed if failure[1].startswith("/canary/")}
    assert ("CKV_K8S_16", "/canary/pod.yaml", "Pod.podrun.canary") in canary
    assert failed - canary == set()
    assert {check["file_path"] for check in results["passed_checks"]} >= {f"/{name}/all.yaml" for name in OVERLAYS}
    assert all(reason.strip() for _, _, reason in skipped)
    assert {check_id for check_id, _, _ in skipped} == {"CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_38", "CKV_K8S_43"}
