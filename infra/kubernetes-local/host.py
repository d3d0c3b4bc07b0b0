"""What the local cluster changes on the host outside its state directory: recorded before `up`, put back by `down`.

The kubelet sets kernel tunables (`setupKernelTunables` in Kubernetes 1.20; `protectKernelDefaults:
false` makes it change them instead of refusing to start), and a few paths are constants in the
programs, whatever directories they are given: the kubelet's pod logs and device-plugin socket,
containerd 1.6's shim sockets, libcni's result cache. Everything else is under STATE or is a
named object `down` deletes (the node address on `lo`, the pod bridge, the cgroups).
"""

from __future__ import annotations

import json
from pathlib import Path

from common import BRIDGE, CGROUP_MOUNT, CGROUP_ROOT, NODE_IP, STATE, log, remove_tree, run

RECORD = STATE / "host.json"
PROC_SYS = Path("/proc/sys")
SYSCTLS = (
    # The kubelet's: it wants overcommit, no panic on OOM, a reboot 10 s after a panic, a panic on oops,
    # and larger key quotas for root.
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    # CNI plugins may turn on forwarding (the bridge plugin does for a gateway; ours has none).
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv6/conf/all/forwarding",
)
PATHS = (
    "/var/log/pods",  # kubelet: pod log directory (a constant)
    "/var/log/containers",  # kubelet: symlinks to the pod logs (a constant)
    "/var/lib/kubelet",  # kubelet: device-plugin socket directory (a constant)
    "/run/containerd",  # containerd 1.6: shim sockets in /run/containerd/s, whatever its state directory
    "/var/lib/cni",  # libcni: cached results of network set-ups
    "/run/netns",  # network namespaces, if containerd were to put them there
    "/etc/cni",
    "/opt/cni",
    "/opt/containerd",
    "/var/run/kubernetes",
    "/usr/libexec/kubernetes",
)


def sysctl(name: str) -> str | None:
    """The value of a kernel setting (None where this kernel has no such setting)."""
    try:
        return (PROC_SYS / name).read_text().strip()
    except FileNotFoundError:
        return None


def record() -> None:
    """Save the kernel settings and which of PATHS exist, before anything changes them."""
    state = {
        "sysctls": {name: value for name in SYSCTLS if (value := sysctl(name)) is not None},
        "absent": [path for path in PATHS if not Path(path).exists()],
    }
    RECORD.write_text(json.dumps(state, indent=2))


def recorded() -> dict[str, object] | None:
    """What `record` saved, if anything."""
    try:
        value: dict[str, object] = json.loads(RECORD.read_text())
    except FileNotFoundError:
        return None
    return value


def restore(state: dict[str, object] | None) -> None:
    """Put the recorded kernel settings back and remove the recorded-absent paths the cluster created."""
    if state is None:
        return
    for name, value in _sysctls(state).items():
        if sysctl(name) != value:
            log("restoring kernel setting", name=name.replace("/", "."), value=value)
            (PROC_SYS / name).write_text(value)
    for path in _absent(state):
        if Path(path).exists():
            log("removing what the cluster created", path=path)
            remove_tree(Path(path))


def differences(state: dict[str, object] | None) -> list[str]:
    """How the host differs from the recorded state and from a host without the cluster (empty: as it was)."""
    found = []
    if state is not None:
        sysctls = _sysctls(state)
        found += [f"{name} is {sysctl(name)}, was {value}" for name, value in sysctls.items() if sysctl(name) != value]
        found += [f"{path} exists" for path in _absent(state) if Path(path).exists()]
    if Path("/sys/class/net", BRIDGE).exists():
        found.append(f"the bridge {BRIDGE} exists")
    if f"inet {NODE_IP}/32" in run(["ip", "-o", "-4", "addr", "show", "dev", "lo"]):
        found.append(f"{NODE_IP} is on lo")
    found += [f"cgroup {path} exists" for path in CGROUP_MOUNT.glob(f"*/{CGROUP_ROOT}")]
    return found


def _sysctls(state: dict[str, object]) -> dict[str, str]:
    value = state["sysctls"]
    assert isinstance(value, dict)
    return value


def _absent(state: dict[str, object]) -> list[str]:
    value = state["absent"]
    assert isinstance(value, list)
    return value
