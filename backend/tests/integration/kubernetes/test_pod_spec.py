"""The execution pod: schema-valid, Pod Security Standards "restricted", and untouchable by user data."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client import models as k8s

from podrun.runners import harness
from podrun.runners.base import Limits, SandboxSpec, sandbox_name
from podrun.runners.kubernetes.pod import HEADER_KEY, build_config_map, build_pod
from podrun.runners.kubernetes.runner import KubernetesRunner
from podrun.settings import REPO_ROOT, Settings
from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import collect, final, flatten, submit
from tests.integration.kubernetes.pss import violations
from tests.kubernetes_local.cluster import LocalCluster
from tests.kubernetes_local.fixtures import RealPodrun

EXECUTION = uuid.UUID("01234567-89ab-7def-8123-456789abcdef")
LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=1 << 20, processes=16)
SPEC = SandboxSpec(sandbox_name(EXECUTION), "python-3.12", "print('hello')\n", b"input\n", LIMITS)
HOSTILE = [
    "\"}}]}, 'spec': {'hostPID': true}, \"x\": \"",
    "---\napiVersion: v1\nkind: Pod\nspec:\n  hostNetwork: true\n",
    "$(id) `id` ${HOME} {{.Values}} \\u0000 \x00 \u2028 \ud800"[:-1],
    "'; DROP TABLE executions; --",
    "\n" * 1000 + 'H {"script": "import os"}\nC\n',
]
VARIANTS = {
    "plain": Settings(),
    "hardened": Settings(
        kubernetes_user_namespaces=True,
        kubernetes_runtime_class="gvisor",
        kubernetes_node_selector={"podrun.dev/pool": "executions"},
        kubernetes_tolerations=[
            {"key": "podrun.dev/pool", "operator": "Equal", "value": "executions", "effect": "NoSchedule"}
        ],
        kubernetes_seccomp_profile="profiles/podrun-v1.json",
    ),
}


def serialize(obj: object) -> dict[str, Any]:
    """The JSON the client sends (the client needs a running loop, so callers are async tests)."""
    return ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-any-return]


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS.keys())
async def test_pod_validates_against_the_kubernetes_schema(settings: Settings) -> None:
    pod = serialize(build_pod(SPEC, EXECUTION, "python:3.12-slim", settings))
    kubernetes_validate.validate(pod, "1.33", strict=True)
    owner = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=SPEC.name, uid=str(uuid.uuid4())))
    kubernetes_validate.validate(serialize(build_config_map(SPEC, EXECUTION, settings, owner)), "1.33", strict=True)


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS.keys())
async def test_pod_meets_the_restricted_pod_security_standard_and_more(settings: Settings) -> None:
    pod = serialize(build_pod(SPEC, EXECUTION, "python:3.12-slim", settings))
    spec = pod["spec"]
    assert violations(spec) == []
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsUser"] == settings.kubernetes_run_as_uid != 0
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] <= 2
    assert spec["activeDeadlineSeconds"] == 10 + settings.kubernetes_startup_allowance_s
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi", "ephemeral-storage": "80Mi"}
    assert container["resources"]["requests"]["memory"] == "256Mi"
    assert {volume["name"]: volume.get("emptyDir") for volume in spec["volumes"]}["tmp"] == {"sizeLimit": "64Mi"}
    assert [variable["name"] for variable in container["env"]] == [
        "HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
    ]  # fmt: skip
    assert spec.get("hostUsers") is (False if settings.kubernetes_user_namespaces else None)
    assert spec.get("runtimeClassName") == settings.kubernetes_runtime_class
    profile = (
        {"type": "RuntimeDefault"}
        if settings.kubernetes_seccomp_profile is None
        else {"type": "Localhost", "localhostProfile": settings.kubernetes_seccomp_profile}
    )
    assert spec["securityContext"]["seccompProfile"] == container["securityContext"]["seccompProfile"] == profile


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS.keys())
async def test_the_pod_shows_a_script_nothing_of_the_worker(settings: Settings) -> None:
    # A script reads its pod's command line, environment and mounts through /proc: all constants.
    text = json.dumps(serialize(build_pod(SPEC, EXECUTION, "python:3.12-slim", settings)))
    for secret in (settings.jwt_secret, settings.database_url, settings.redis_url, str(REPO_ROOT), str(Path.home())):
        assert secret not in text
    container = serialize(build_pod(SPEC, EXECUTION, "python:3.12-slim", settings))["spec"]["containers"][0]
    assert container["command"] == ["python3", "-I", "/podrun/harness.py", "--header", "/podrun/header"]
    assert [mount["mountPath"] for mount in container["volumeMounts"]] == ["/podrun", "/tmp"]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_script_and_stdin_change_nothing_but_the_header_value(text: str) -> None:
    settings = Settings()
    hostile = replace(SPEC, script=text, stdin=text.encode("utf-8", "surrogatepass"))
    benign = serialize(build_pod(SPEC, EXECUTION, "python:3.12-slim", settings))
    assert serialize(build_pod(hostile, EXECUTION, "python:3.12-slim", settings)) == benign
    assert text not in json.dumps(benign)
    owner = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=SPEC.name, uid="u"))
    config_map = serialize(build_config_map(hostile, EXECUTION, settings, owner))
    plain = serialize(build_config_map(SPEC, EXECUTION, settings, owner))
    # Only the header value differs, and it is one line that decodes back to exactly the user's data.
    assert {**config_map, "data": None} == {**plain, "data": None}
    header_line = config_map["data"][HEADER_KEY]
    assert header_line.count("\n") == 1
    assert header_line.endswith("\n")
    assert header_line.isascii()
    tag, payload = harness.parse_frame(header_line.encode())
    header = harness.Header.from_json(harness.parse_json_payload(payload))
    assert (tag, header.script, header.stdin) == ("H", text, hostile.stdin)


@pytest.mark.parametrize("runtime_id", ["python:3.12-slim", "../../etc", "python-3.12\nimage: evil", "python-9.9"])
async def test_runtime_ids_outside_the_catalog_never_become_images(runtime_id: str) -> None:
    runner = KubernetesRunner(Settings())
    assert runtime_id not in {runtime.id for runtime in runner.runtimes()}
    with pytest.raises(LookupError):
        await runner.start(replace(SPEC, runtime_id=runtime_id))


async def test_a_server_without_host_users_drops_it_and_the_pod_runs(real_podrun: RealPodrun) -> None:
    # The suite's workers ask for user namespaces (tests/kubernetes_local/fixtures.py); 1.20 knows no hostUsers.
    client = await GraphQLClient(real_podrun.deployment.base_url).register()
    execution_id = await submit(client, "import time\nprint('up', flush=True)\ntime.sleep(1)\n")
    name = sandbox_name(uuid.UUID(execution_id))
    async for data in client.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        if any(event.get("text") == "up" for event in flatten(data["executionEvents"])):
            break
    with real_podrun.cluster.client() as api:
        stored = api.get(f"/api/v1/namespaces/podrun-exec/pods/{name}").json()
    assert "hostUsers" not in stored["spec"]
    assert stored["spec"]["securityContext"]["runAsUser"] == 65534
    assert final(await collect(client, execution_id))["status"] == "SUCCEEDED"
    # The worker sent hostUsers: false (test_pod_validates_against_the_kubernetes_schema) and says it was dropped.
    worker_logs = "".join(process.log_path.read_text() for process in real_podrun.deployment.processes)
    assert re.search(rf"dropped hostUsers.*{name}", worker_logs)


async def test_the_config_map_goes_with_its_pod(local_kubernetes: LocalCluster) -> None:
    # In `default`, where no reaper deletes anything: only the garbage collector can remove the ConfigMap.
    settings = Settings(kubernetes_namespace="default", kubernetes_image_pull_policy="Never")
    execution_id = uuid.uuid4()
    spec = replace(SPEC, name=sandbox_name(execution_id))
    with local_kubernetes.client() as api:
        created = api.post(
            "/api/v1/namespaces/default/pods",
            json=serialize(build_pod(spec, execution_id, local_kubernetes.images["python-3.11"], settings)),
        )
        assert created.status_code == 201, created.text
        owner = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=spec.name, uid=created.json()["metadata"]["uid"]))
        config_map = serialize(build_config_map(spec, execution_id, settings, owner))
        assert api.post("/api/v1/namespaces/default/configmaps", json=config_map).status_code == 201
        assert api.delete(f"/api/v1/namespaces/default/pods/{spec.name}", params={"gracePeriodSeconds": 0}).is_success
        for _ in range(300):
            if api.get(f"/api/v1/namespaces/default/configmaps/{spec.name}").status_code == 404:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the pod's ConfigMap outlived it")
