"""What a local cluster could leave behind on the host, read independently of infra/kubernetes-local.

A snapshot is everything the cluster's programs might change outside their state directory, read
from the kernel and the file system directly: kernel settings (every writable /proc/sys entry),
mounts, network links, addresses and namespaces, top-level cgroups, packet-filter tables, the
entries of the system's directories, and the cluster's programs still running. Two snapshots are
compared as sets, so the test says exactly what differs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from podrun.runners.cgroups import PARENT

# Changes on their own (the last pid handed out).
SYSCTL_NOISE = {"kernel/ns_last_pid"}
# Podrun's local sandboxes (runners/cgroups.py), which other test runs on this machine create and remove.
CGROUP_NOISE = {PARENT}
# Directories whose entries programs of a cluster might create (listed one level deep).
DIRECTORIES = ["/etc", "/opt", "/run", "/var/lib", "/var/log", "/var/cache", "/usr/libexec", "/usr/local", "/root"]
PROGRAMS = {
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl",
    "containerd", "containerd-shim-runc-v2", "runc", "pause",
}  # fmt: skip

Snapshot = dict[str, set[str]]


def snapshot(ignore: tuple[Path, ...] = ()) -> Snapshot:
    """The host as the cluster could change it; paths under `ignore` (the build cache) are left out."""
    return {
        "sysctl": _sysctls(),
        "mount": _mounts(),
        "link": set(os.listdir("/sys/class/net")),
        "address": _addresses(),
        "netns": set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set(),
        "cgroup": _cgroups(),
        "packet filter": _packet_filter(),
        "path": _entries(ignore),
        "process": _programs(),
    }


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What `after` has that `before` has not ("+ ...") and the other way round ("- ...")."""
    found = []
    for kind in before:
        found += [f"+ {kind} {item}" for item in sorted(after[kind] - before[kind])]
        found += [f"- {kind} {item}" for item in sorted(before[kind] - after[kind])]
    return found


def _sysctls() -> set[str]:
    found = set()
    for directory, _, files in os.walk("/proc/sys"):
        for name in files:
            path = os.path.join(directory, name)
            key = path.removeprefix("/proc/sys/")
            if key in SYSCTL_NOISE:
                continue
            # A pod's veth link may go while the walk is under way: its entries are then skipped, not an error.
            try:
                if not os.stat(path).st_mode & 0o200:
                    continue
                value = Path(path).read_text().strip()
            except OSError:  # write-only entries, and entries of links that just went
                continue
            found.add(f"{key.replace('/', '.')}={value}")
    return found


def _mounts() -> set[str]:
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        found.add(f"{fields[4]} ({fields[separator + 1]})")
    return found


def _addresses() -> set[str]:
    result = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    return {" ".join(line.split()[1:4]) for line in result.stdout.splitlines()}


def _cgroups() -> set[str]:
    root = Path("/sys/fs/cgroup")
    return {
        f"{hierarchy.name}/{child.name}"
        for hierarchy in root.iterdir()
        if hierarchy.is_dir()
        for child in hierarchy.iterdir()
        if child.is_dir() and child.name not in CGROUP_NOISE
    }


def _packet_filter() -> set[str]:
    found = set()
    for table in ("ip_tables_names", "ip6_tables_names"):
        path = Path("/proc/net") / table
        if path.exists():
            found |= {f"{table}: {name}" for name in path.read_text().split()}
    for save in ("iptables-save", "ip6tables-save"):
        if shutil.which(save):
            result = subprocess.run([save], capture_output=True, text=True, check=False)
            found |= {
                f"{save}: {line.split('[')[0].strip()}"
                for line in result.stdout.splitlines()
                if line and not line.startswith("#")
            }
    return found


def _entries(ignore: tuple[Path, ...]) -> set[str]:
    found = set()
    for directory in DIRECTORIES:
        if os.path.isdir(directory):
            found |= {
                os.path.join(directory, name)
                for name in os.listdir(directory)
                if not any(Path(directory, name).is_relative_to(path) for path in ignore)
            }
    return found


def _programs() -> set[str]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = os.path.basename(os.readlink(entry / "exe"))
            except OSError:
                continue
            if name in PROGRAMS:
                found.add(f"{name} ({entry.name})")
    return found
