"""The execution pod: schema-valid, Pod Security Standards "restricted", and untouchable by user data."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client import models as k8s

from podrun.core.limits import Limits
from podrun.kernels.session import kernel_sandbox_name
from podrun.runners import protocol
from podrun.runners.base import SandboxSpec, sandbox_name
from podrun.runners.bundle import harness_files
from podrun.runners.kubernetes.pod import (
    HARNESS_KEY,
    HEADER_KEY,
    LABEL_EXECUTION,
    LABEL_KERNEL,
    LABEL_OWNER,
    LABEL_RUNTIME,
    LABEL_WARM,
    WARM_COMMAND,
    build_config_map,
    build_pod,
    build_warm_config_map,
    build_warm_pod,
    claim_patch,
    execution_id_of,
    header,
    id_from_name,
    kernel_deadline_s,
    serves_kernels,
    warm_deadline_s,
)
from podrun.runners.kubernetes.runner import KubernetesRunner
from podrun.settings import REPO_ROOT, KernelSettings, KubernetesSettings, Settings
from tests.pss import violations

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
        kubernetes=KubernetesSettings(
            user_namespaces=True,
            runtime_class="gvisor",
            node_selector={"podrun.dev/pool": "executions"},
            tolerations=[
                {"key": "podrun.dev/pool", "operator": "Equal", "value": "executions", "effect": "NoSchedule"}
            ],
            seccomp_profile="profiles/podrun-v1.json",
        )
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
    assert spec["securityContext"]["runAsUser"] == settings.kubernetes.run_as_uid != 0
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] <= 2
    assert spec["activeDeadlineSeconds"] == 10 + settings.kubernetes.startup_allowance_s
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi", "ephemeral-storage": "80Mi"}
    assert container["resources"]["requests"]["memory"] == "256Mi"
    empty_dirs = {volume["name"]: volume.get("emptyDir") for volume in spec["volumes"]}
    assert (empty_dirs["tmp"], empty_dirs["shm"]) == ({"sizeLimit": "64Mi"}, {"medium": "Memory", "sizeLimit": "40Mi"})
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert (mounts["/tmp"]["name"], mounts["/dev/shm"]["name"]) == ("tmp", "shm")
    assert [variable["name"] for variable in container["env"]] == [
        "HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
    ]  # fmt: skip
    assert spec.get("hostUsers") is (False if settings.kubernetes.user_namespaces else None)
    assert spec.get("runtimeClassName") == settings.kubernetes.runtime_class
    profile = (
        {"type": "RuntimeDefault"}
        if settings.kubernetes.seccomp_profile is None
        else {"type": "Localhost", "localhostProfile": settings.kubernetes.seccomp_profile}
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
    assert [mount["mountPath"] for mount in container["volumeMounts"]] == ["/podrun", "/tmp", "/dev/shm"]


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
    tag, payload = protocol.parse_frame(header_line.encode())
    header = protocol.Header.from_json(protocol.parse_json_payload(payload))
    assert (tag, header.script, header.stdin) == ("H", text, hostile.stdin)


@pytest.mark.parametrize("runtime_id", ["python:3.12-slim", "../../etc", "python-3.12\nimage: evil", "python-9.9"])
async def test_runtime_ids_outside_the_catalog_never_become_images(runtime_id: str) -> None:
    runner = KubernetesRunner(Settings())
    assert runtime_id not in {runtime.id for runtime in runner.runtimes()}
    with pytest.raises(LookupError):
        await runner.start(replace(SPEC, runtime_id=runtime_id))


@pytest.mark.parametrize("settings", VARIANTS.values(), ids=VARIANTS.keys())
async def test_a_warm_pod_is_the_same_hardened_pod_at_the_largest_limits(settings: Settings) -> None:
    warm = serialize(build_warm_pod("podrun-warm-1", "python-3.12", "python:3.12-slim", "worker-1", settings))
    kubernetes_validate.validate(warm, "1.33", strict=True)
    cold = serialize(build_pod(SPEC, EXECUTION, "python:3.12-slim", settings))
    assert violations(warm["spec"]) == []
    # What differs from a run's own pod: name and labels, the largest limits, the deadline, the header's source.
    container, cold_container = warm["spec"]["containers"][0], cold["spec"]["containers"][0]
    assert container["command"] == WARM_COMMAND
    assert container["resources"]["limits"]["memory"] == f"{settings.limits.maximum.memory_mib}Mi"
    assert warm["spec"]["activeDeadlineSeconds"] == warm_deadline_s(settings)
    unchanged = {"name": None, "command": None, "resources": None}
    assert {**container, **unchanged} == {**cold_container, **unchanged}
    elsewhere = {"containers": None, "activeDeadlineSeconds": None, "volumes": None}
    assert {**warm["spec"], **elsewhere} == {**cold["spec"], **elsewhere}
    assert warm["spec"]["volumes"][0]["configMap"]["name"] == "podrun-warm-1"
    assert warm["spec"]["volumes"][1:] == cold["spec"]["volumes"][1:]
    assert warm["metadata"]["labels"] == {
        "app.kubernetes.io/name": "podrun-execution",
        "app.kubernetes.io/managed-by": "podrun",
        LABEL_WARM: "true",
        LABEL_RUNTIME: "python-3.12",
        LABEL_OWNER: "worker-1",
    }
    owner = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="podrun-warm-1", uid="u", labels=warm["metadata"]["labels"]))
    config_map = serialize(build_warm_config_map(settings, owner))
    kubernetes_validate.validate(config_map, "1.33", strict=True)
    # The harness and the modules it imports, nothing of any run.
    assert set(config_map["data"]) == set(harness_files())
    assert HARNESS_KEY in config_map["data"]


async def test_a_claim_changes_the_execution_label_and_lowers_the_deadline_only() -> None:
    settings = Settings()
    patch = claim_patch(EXECUTION, LIMITS, settings, waited_s=12.3)
    assert patch == {
        "metadata": {"labels": {LABEL_EXECUTION: EXECUTION.hex}},
        "spec": {"activeDeadlineSeconds": 13 + 10 + settings.kubernetes.startup_allowance_s},
    }
    longest = claim_patch(
        EXECUTION, settings.limits.maximum, settings, waited_s=settings.kubernetes.warm_pool_max_wait_s - 0.5
    )
    assert longest["spec"]["activeDeadlineSeconds"] <= warm_deadline_s(settings)


@pytest.mark.parametrize(
    ("memory_mib", "pod_memory_mib", "rlimit"),
    [(256, None, None), (256, 1024, 256 * 1024 * 1024), (1024, 1024, None)],
    ids=["own-pod", "warm-pod-smaller-limit", "warm-pod-largest-limit"],
)
def test_the_header_carries_a_memory_rlimit_only_below_the_pods_own_limit(
    memory_mib: int, pod_memory_mib: int | None, rlimit: int | None
) -> None:
    spec = replace(SPEC, limits=LIMITS.model_copy(update={"memory_mib": memory_mib}))
    run_header = header(spec, Settings(), pod_memory_mib=pod_memory_mib)
    assert (run_header.memory_bytes, run_header.processes, run_header.cpu_time_ms) == (rlimit, 16, 5_000)


async def test_a_kernels_pod_is_labelled_by_its_kernel_and_outlives_it_by_a_margin_only() -> None:
    settings = Settings()
    kernel_spec = replace(SPEC, name=kernel_sandbox_name(EXECUTION), script="", stdin=None, kernel=True)
    assert id_from_name(kernel_spec.name) == id_from_name(SPEC.name) == EXECUTION
    built = build_pod(kernel_spec, EXECUTION, "python:3.12-slim", settings)
    pod = serialize(built)
    kubernetes_validate.validate(pod, "1.33", strict=True)
    assert violations(pod["spec"]) == []
    assert pod["metadata"]["name"] == "podrun-kernel-" + EXECUTION.hex
    assert (execution_id_of(built), execution_id_of(built, LABEL_KERNEL)) == (None, EXECUTION)
    # No wall limit of its own (its cells' are the harness's): the kernel's longest life and a margin.
    deadline = pod["spec"]["activeDeadlineSeconds"]
    assert deadline == kernel_deadline_s(settings)
    assert settings.kernels.max_lifetime_s < deadline <= settings.kernels.max_lifetime_s + 3600
    owner = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=kernel_spec.name, uid=str(uuid.uuid4())))
    config_map = build_config_map(kernel_spec, EXECUTION, settings, owner)
    assert config_map.metadata.labels[LABEL_KERNEL] == EXECUTION.hex
    assert set(config_map.data) == {f"{module}.py" for module in protocol.HARNESS_MODULES} | {HEADER_KEY}
    sent = protocol.Header.from_json(
        protocol.parse_json_payload(protocol.parse_frame(config_map.data[HEADER_KEY].encode())[1])
    )
    assert (sent.kernel, sent.script) == (True, "")


@pytest.mark.parametrize(("lifetime_s", "serves"), [(8 * 3600, False), (60, True)], ids=["default", "short-kernels"])
def test_warm_pods_serve_kernels_only_when_a_claim_may_give_them_a_kernels_deadline(
    lifetime_s: int, serves: bool
) -> None:
    settings = Settings(kernels=KernelSettings(max_lifetime_s=lifetime_s))
    assert serves_kernels(settings) is serves
    patch = claim_patch(EXECUTION, LIMITS, settings, waited_s=5, kernel=True)
    assert patch == {
        "metadata": {"labels": {LABEL_KERNEL: EXECUTION.hex}},
        "spec": {"activeDeadlineSeconds": kernel_deadline_s(settings)},
    }
    assert (patch["spec"]["activeDeadlineSeconds"] <= warm_deadline_s(settings)) is serves
