"""`kubernetes:up` then `kubernetes:down` leave the host as it was (infra/kubernetes-local/cluster.py).

Starts and stops its own cluster, so none may be running (`./taskw test` runs it after the suite's
cluster is down). Binaries, images and Debian packages are built or installed before the first
snapshot: they are meant to stay.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.kubernetes_local.cluster import CACHE, SCRIPT, STATE, LocalCluster, cannot_host
from tests.kubernetes_local.fixtures import NOT_TESTED
from tests.kubernetes_local.host import differences, snapshot

pytestmark = pytest.mark.kubernetes_lifecycle
# What the kubelet sets (Kubernetes 1.20, setupKernelTunables), where the host had something else.
KUBELET_SYSCTLS = ("vm.overcommit_memory=1", "vm.panic_on_oom=0", "kernel.panic=10", "kernel.panic_on_oops=1")


def cluster(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), command], capture_output=True, text=True, timeout=1800, check=False
    )


@pytest.mark.timeout(1800)
def test_up_and_down_leave_the_host_as_it_was() -> None:
    reason = cannot_host()
    if reason is not None:
        pytest.skip(f"{NOT_TESTED}: this machine cannot host it: {reason}")
    assert not (STATE / "cluster.json").exists(), "a local cluster is running: `./taskw kubernetes:down` first"
    built = cluster("build")
    assert built.returncode == 0, built.stderr
    before = snapshot(ignore=(CACHE,))

    up = cluster("up")
    try:
        assert up.returncode == 0, up.stderr
        local = LocalCluster.load()
        # A pod that reads stdin over attach and writes its log: the kubelet, containerd and the pod network
        # at work, so that whatever they change on the host is there to be found.
        image = local.images["python-3.11"]
        probe = local.kubectl(
            "run", "probe", "--stdin", "--restart=Never", f"--image={image}", "--image-pull-policy=Never",
            "--command", "--", "python3", "-c", "import sys; print(sys.stdin.read().upper())",
            stdin="hello from the host\n",
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        assert "HELLO FROM THE HOST" in probe.stdout
        during = differences(before, snapshot(ignore=(CACHE,)))
    finally:
        down = cluster("down")
    after = differences(before, snapshot(ignore=(CACHE,)))

    # The snapshot sees what the cluster changes: the kubelet's kernel settings (where they differed), the
    # node address, the bridge, mounts, cgroups, the state directory and the programs themselves.
    for setting in KUBELET_SYSCTLS:
        if setting not in before["sysctl"]:
            assert f"+ sysctl {setting}" in during
    assert "+ link podrun0" in during
    assert [item for item in during if item.startswith("+ address lo inet 10.254.254.1/32")]
    assert [item for item in during if item.startswith(f"+ mount {STATE}/")]
    assert [item for item in during if item.startswith("+ cgroup ") and item.endswith("/podrun-kubernetes")]
    assert f"+ path {STATE}" in during
    assert [item for item in during if item.startswith("+ process kubelet")]
    assert after == []
    assert down.returncode == 0, down.stderr
