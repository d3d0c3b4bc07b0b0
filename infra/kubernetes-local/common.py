"""Paths, addresses and small helpers shared by the local cluster's scripts (stdlib only).

Everything the cluster writes while it runs lives under STATE; what is built once (Kubernetes
binaries, images) lives under CACHE and is reused by every `up`. Both can be moved with
environment variables, for example to run the scripts' own checks somewhere else.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("LOCAL_KUBERNETES_CACHE", "/var/cache/podrun-kubernetes"))
STATE = Path(os.environ.get("LOCAL_KUBERNETES_STATE", "/var/lib/podrun-kubernetes"))

# Debian bookworm's source package `kubernetes` is upstream 1.20.2 (versioned 1.20.5+really1.20.2).
KUBERNETES_VERSION = "1.20.2"
BIN = CACHE / f"kubernetes-{KUBERNETES_VERSION}" / "bin"
IMAGES = CACHE / "images"
KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl")

# Addresses: the control plane on 127.0.0.1; the kubelet on its own address on `lo` (a node IP may
# not be a loopback address); pods on a bridge that has no address of its own (no way to the host).
NODE_NAME = "podrun-node"
NODE_IP = "10.254.254.1"
POD_SUBNET = "10.254.1.0/24"
SERVICE_RANGE = "10.254.2.0/24"
BRIDGE = "podrun0"
# Below the kernel's ephemeral range (32768-60999): a port in it may be taken at random by an outgoing connection
# at the moment the cluster starts (seen once in CI: `up` refused 36010).
ETCD_CLIENT_PORT = 12379
ETCD_PEER_PORT = 12380
APISERVER_PORT = 16443
CONTAINERD_STREAM_PORT = 10010
KUBELET_PORT = 10250

# The cgroup under which the kubelet puts every pod (in each hierarchy).
CGROUP_ROOT = "podrun-kubernetes"
CGROUP_MOUNT = Path("/sys/fs/cgroup")


def log(message: str, **fields: object) -> None:
    """One line to stderr: a timestamp, the message, then key=value pairs."""
    details = "".join(f" {key}={value}" for key, value in fields.items())
    print(f"[kubernetes-local {time.strftime('%H:%M:%S')}] {message}{details}", file=sys.stderr, flush=True)


def run(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command (never through a shell) and return its stdout; fail with its stderr."""
    result = subprocess.run(
        [os.fspath(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise CommandFailed(argv, result.returncode, result.stderr or result.stdout)
    return result.stdout


class CommandFailed(RuntimeError):
    """A command exited with a non-zero status."""

    def __init__(self, argv: Sequence[str | os.PathLike[str]], status: int, output: str) -> None:
        self.status = status
        super().__init__(f"{' '.join(os.fspath(a) for a in argv)} exited with {status}: {output.strip()[-2000:]}")


@contextmanager
def locked(path: Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed); say what we wait for if it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(waiting, lock=path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def wait_until(what: str, ready: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    """Poll `ready()` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)


MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, the latest mounted first (from /proc/self/mountinfo)."""
    root = os.path.realpath(path)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == root or point.startswith(root + "/"):
            points.append(point)
    return points[::-1]


def unmount_under(path: Path) -> None:
    """Detach every mount at or below `path` (stacked mounts too)."""
    for _ in range(10):
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            if _libc.umount2(os.fsencode(point), MNT_DETACH) != 0:
                error = ctypes.get_errno()
                if error not in (22, 2):  # EINVAL, ENOENT: already gone
                    raise OSError(error, os.strerror(error), point)
    raise RuntimeError(f"mounts under {path} keep coming back: {mounts_under(path)}")


def remove_tree(path: Path) -> None:
    """Remove `path` and everything below it, unmounting what is mounted there first."""
    if path.exists() or path.is_symlink():
        unmount_under(path)
        shutil.rmtree(path)
