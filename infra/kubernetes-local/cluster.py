#!/usr/bin/env python3
"""A real Kubernetes 1.20 on this machine, for Podrun's tests: `cluster.py check|build|up|down|status`.

    check         say whether this machine can host the cluster (exit 1 and why, if not)
    build         build the binaries and images into the cache unless they are there (--background: detached)
    up            start etcd, the control plane, containerd and a kubelet; wait until the node is Ready
    down          stop all of it, remove what it created, restore the host; fail if anything is left
    status        say which components run
    exclusive -- COMMAND...  run COMMAND (a test run on the cluster) when no other one runs on this machine

build, up and down with --if-possible only say why on a machine that cannot host the cluster.

Everything runs as root on loopback addresses, every file under STATE (common.py). `down` also
works after a failed or interrupted `up`. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import build
import configs
import host
import images
from common import (
    APISERVER_PORT,
    BIN,
    BRIDGE,
    CACHE,
    CGROUP_MOUNT,
    CGROUP_ROOT,
    CONTAINERD_STREAM_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    KUBELET_PORT,
    KUBERNETES_VERSION,
    NODE_IP,
    NODE_NAME,
    SERVICE_RANGE,
    STATE,
    CommandFailed,
    locked,
    log,
    remove_tree,
    run,
    unmount_under,
    wait_until,
)

LOCK = CACHE / "cluster.lock"
TESTS_LOCK = CACHE / "tests.lock"
PIDS = STATE / "pids"
LOGS = STATE / "logs"
INFO = STATE / "cluster.json"
CONTAINERD_SOCKET = STATE / "containerd" / "containerd.sock"
ETCD_URL = f"http://127.0.0.1:{ETCD_CLIENT_PORT}"
# Stopped in this order by `down`: the kubelet first (it would restart what is killed under it).
COMPONENTS = ("kubelet", "containerd", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
PORTS = {
    "etcd": [("127.0.0.1", ETCD_CLIENT_PORT), ("127.0.0.1", ETCD_PEER_PORT)],
    "kube-apiserver": [("127.0.0.1", APISERVER_PORT)],
    "containerd": [("127.0.0.1", CONTAINERD_STREAM_PORT)],
    "kubelet": [(NODE_IP, KUBELET_PORT)],
}


def cannot_host() -> str | None:
    """Why this machine cannot host the cluster, or None if it can."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"the local cluster needs Linux on x86_64 (this is {sys.platform} on {platform.machine()})"
    if os.geteuid() != 0:
        return "the local cluster needs root (containerd, the kubelet, network and cgroup set-up)"
    missing = [name for name in ("memory", "cpu", "cpuacct", "cpuset", "pids") if not (CGROUP_MOUNT / name).is_dir()]
    if missing:
        return (
            "Kubernetes 1.20's kubelet is run here on cgroup v1 only; this host lacks the v1 hierarchies "
            + ", ".join(missing)
        )
    if "\toverlay\n" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlay file system (containerd's snapshotter needs it)"
    if not build.ready() and "VERSION_CODENAME=bookworm" not in Path("/etc/os-release").read_text():
        return "building Kubernetes 1.20 needs Debian bookworm's archive (its `kubernetes` source package)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check")
    commands.add_parser("status")
    for name in ("build", "up", "down"):
        command = commands.add_parser(name)
        command.add_argument(
            "--if-possible", action="store_true", help="on a machine that cannot host the cluster, say why and exit 0"
        )
        if name == "build":
            command.add_argument("--background", action="store_true", help="build in a detached process and return")
    exclusive = commands.add_parser("exclusive")
    exclusive.add_argument("argv", nargs="+", help="the command to run, after --")
    arguments = parser.parse_args()
    reason = cannot_host()
    if arguments.command == "exclusive":
        return run_exclusively(arguments.argv, shared=reason is None)
    if arguments.command == "check":
        print(reason or "this machine can host the local Kubernetes cluster")
        return 1 if reason else 0
    if arguments.command == "status":
        return status()
    if reason is not None:
        log(f"CANNOT HOST THE LOCAL KUBERNETES CLUSTER: {reason}")
        return 0 if arguments.if_possible else 1
    try:
        if arguments.command == "build":
            if arguments.background:
                return build_in_background()
            build.build()
            return 0
    except CommandFailed as error:
        log(f"the build failed: {error}")
        return 1
    if arguments.command == "up":
        return up()
    return down()


def run_exclusively(argv: list[str], *, shared: bool) -> int:
    """Run a command (a test run on the cluster) while no other such command runs on this machine.

    There is one local cluster per machine: two test runs at once would stop it under each other.
    Where it cannot be hosted there is nothing to share and the command runs at once.
    """
    if not shared:
        return subprocess.call(argv)
    with locked(TESTS_LOCK, "waiting for another test run on the local cluster to end"):
        return subprocess.call(argv)


def build_in_background() -> int:
    """Start the build (nice, idle I/O) in a detached process, unless everything is built already."""
    if build.ready():
        log("binaries and images are in the cache", cache=CACHE)
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    with build.BUILD_LOG.open("w") as output:
        subprocess.Popen(
            ["ionice", "-c", "3", "nice", "-n", "19", sys.executable, __file__, "build"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    log("building the local cluster in the background", log=build.BUILD_LOG)
    return 0


def up() -> int:
    """Start the cluster (building first if needed); on failure, undo everything and say which part failed."""
    try:
        build.build()
    except CommandFailed as error:
        log(f"the build failed: {error}")
        return 1
    with locked(LOCK, "waiting for another start or stop of the local cluster"):
        if running():
            log("the local cluster is up already", kubeconfig=configs.CONFIG / configs.ADMIN.kubeconfig)
            return 0
        if STATE.exists():
            log("removing what an earlier cluster left behind")
            _down()
        started = time.monotonic()
        try:
            _up()
        except (CommandFailed, TimeoutError, OSError, RuntimeError) as error:
            log(f"the local cluster did not start: {error}")
            _show_logs()
            _down()
            return 1
    log("the local cluster is up", seconds=round(time.monotonic() - started, 1), info=INFO)
    return 0


def _up() -> None:
    busy = [f"{address}:{port}" for ports in PORTS.values() for address, port in ports if _port_taken(port)]
    if busy or Path("/sys/class/net", BRIDGE).exists():
        raise RuntimeError(f"addresses or the bridge {BRIDGE} are in use already: {busy or BRIDGE}")
    STATE.mkdir(parents=True, mode=0o700)
    PIDS.mkdir()
    LOGS.mkdir()
    host.record()
    configs.write_all()
    run(["ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo"])

    start("etcd", [
        "/usr/bin/etcd", "--name=podrun", f"--data-dir={STATE / 'etcd'}",
        f"--listen-client-urls={ETCD_URL}", f"--advertise-client-urls={ETCD_URL}",
        f"--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
        f"--initial-cluster=podrun=http://127.0.0.1:{ETCD_PEER_PORT}",
        "--listen-metrics-urls=", "--log-level=warn",
    ])  # fmt: skip
    wait_until("etcd", lambda: _get(f"{ETCD_URL}/health").get("health") == "true", 60)

    pki = configs.PKI
    start("kube-apiserver", [
        BIN / "kube-apiserver", f"--etcd-servers={ETCD_URL}",
        "--bind-address=127.0.0.1", f"--secure-port={APISERVER_PORT}", "--insecure-port=0",
        f"--advertise-address={NODE_IP}", f"--cert-dir={STATE / 'apiserver'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={pki / 'tokens.csv'}", "--anonymous-auth=false",
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        f"--service-account-key-file={pki / 'service-account.pub'}",
        f"--service-account-signing-key-file={pki / 'service-account.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-cluster-ip-range={SERVICE_RANGE}",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}", "--kubelet-preferred-address-types=InternalIP",
        f"--audit-policy-file={configs.CONFIG / 'audit-policy.yaml'}", f"--audit-log-path={STATE / 'audit.log'}",
        "--profiling=false", "--v=1",
    ])  # fmt: skip
    wait_until("kube-apiserver", lambda: _api_ok("/readyz"), 120)

    kubeconfig = configs.CONFIG
    start("kube-controller-manager", [
        BIN / "kube-controller-manager", f"--kubeconfig={kubeconfig / configs.CONTROLLER_MANAGER.kubeconfig}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--port=0",
        "--use-service-account-credentials=true", f"--flex-volume-plugin-dir={STATE / 'flex-volume-plugins'}",
        f"--service-account-private-key-file={pki / 'service-account.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--profiling=false", "--v=1",
    ])  # fmt: skip
    start("kube-scheduler", [
        BIN / "kube-scheduler", f"--kubeconfig={kubeconfig / configs.SCHEDULER.kubeconfig}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--port=0",
        "--profiling=false", "--v=1",
    ])  # fmt: skip

    start("containerd", ["/usr/bin/containerd", f"--config={kubeconfig / 'containerd.toml'}"])
    wait_until("containerd", lambda: CONTAINERD_SOCKET.exists() and _ctr_ok(), 60)
    for name, archive in images.ARCHIVES.items():
        run(["ctr", "--address", CONTAINERD_SOCKET, "-n", "k8s.io", "images", "import", archive])
        log("image imported", image=name)

    for path in CGROUP_MOUNT.iterdir():  # the kubelet wants its cgroup root to exist in every hierarchy
        if path.is_dir() and not path.is_symlink() and path.name != "unified":
            (path / CGROUP_ROOT).mkdir(exist_ok=True)
    start("kubelet", [BIN / "kubelet", *configs.kubelet_args()])
    wait_until("the node", _node_ready, 120)
    wait_until("the default service account", lambda: _api_ok("/api/v1/namespaces/default/serviceaccounts/default"), 60)
    INFO.write_text(
        json.dumps(
            {
                "version": f"v{KUBERNETES_VERSION}",
                "server": configs.SERVER,
                "certificate_authority": str(configs.PKI / "ca.crt"),
                "admin_kubeconfig": str(configs.CONFIG / configs.ADMIN.kubeconfig),
                "kubectl": str(BIN / "kubectl"),
                "node": NODE_NAME,
                "audit_log": str(STATE / "audit.log"),
                "images": images.RUNTIMES,
            },
            indent=2,
        )
    )


def down() -> int:
    """Stop the cluster and remove all of it; exit 1 (listing what) if the host is not as it was."""
    with locked(LOCK, "waiting for another start or stop of the local cluster"):
        left = _down()
    if left:
        log("THE HOST IS NOT AS IT WAS: " + "; ".join(left))
        return 1
    log("the local cluster is down and the host is as it was before `up`")
    return 0


def _down() -> list[str]:
    """Undo `up`, as far as it got; what is still different afterwards."""
    record = host.recorded()
    stop("kubelet")
    _kill_cgroup_processes()
    stop("containerd")
    _kill_shims()
    for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        stop(name)
    if STATE.exists():
        unmount_under(STATE)
    _remove_cgroups()
    if Path("/sys/class/net", BRIDGE).exists():
        run(["ip", "link", "delete", BRIDGE])
    if f"inet {NODE_IP}/32" in run(["ip", "-o", "-4", "addr", "show", "dev", "lo"]):
        run(["ip", "addr", "delete", f"{NODE_IP}/32", "dev", "lo"])
    host.restore(record)
    remove_tree(STATE)
    return host.differences(record) + [f"{name} is still running" for name in _leftover_processes()]


def running() -> bool:
    """Whether every component recorded under STATE runs and the API server answers."""
    return all(_alive(name) for name in COMPONENTS) and _api_ok("/readyz")


def status() -> int:
    """Print which components run; exit 0 only if the whole cluster does."""
    for name in reversed(COMPONENTS):
        print(f"{name:25} {'running' if _alive(name) else 'not running'}")
    up_now = running()
    print(f"cluster: {'up, ' + str(INFO) if up_now else 'down'}")
    return 0 if up_now else 1


def start(name: str, argv: list[str | Path]) -> None:
    """Start a component detached from this process, output in LOGS/<name>.log, its pid under PIDS."""
    with (LOGS / f"{name}.log").open("ab") as output:
        process = subprocess.Popen(
            [os.fspath(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=STATE,
        )
    (PIDS / f"{name}.json").write_text(json.dumps({"pid": process.pid, "started": _start_time(process.pid)}))
    log("started", component=name, pid=process.pid)


def stop(name: str, timeout: float = 10) -> None:
    """SIGTERM a recorded component, SIGKILL it if it is still there after `timeout` seconds."""
    pid = _recorded_pid(name)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(name, lambda: not _same_process(name, pid), timeout)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        wait_until(name, lambda: not _same_process(name, pid), timeout)
    (PIDS / f"{name}.json").unlink()
    log("stopped", component=name)


def _recorded_pid(name: str) -> int | None:
    try:
        recorded = json.loads((PIDS / f"{name}.json").read_text())
    except FileNotFoundError:
        return None
    pid = int(recorded["pid"])
    return pid if _start_time(pid) == recorded["started"] else None


def _same_process(name: str, pid: int) -> bool:
    return _recorded_pid(name) == pid and _state(pid) not in (None, "Z")


def _alive(name: str) -> bool:
    pid = _recorded_pid(name)
    return pid is not None and _state(pid) not in (None, "Z")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None


def _state(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[0] if fields else None


def _cgroup_dirs() -> list[Path]:
    """Every cgroup directory under CGROUP_ROOT, in every hierarchy, deepest first."""
    found: list[Path] = []
    for hierarchy in CGROUP_MOUNT.iterdir():
        root = hierarchy / CGROUP_ROOT
        if root.is_dir():
            found += [Path(d) for d, _, _ in os.walk(root)]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _kill_cgroup_processes() -> None:
    """SIGKILL every process in the pods' cgroups (containers and their sandboxes)."""
    for _ in range(50):
        pids = {
            int(pid)
            for directory in _cgroup_dirs()
            if (directory / "cgroup.procs").exists()
            for pid in (directory / "cgroup.procs").read_text().split()
        }
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    raise RuntimeError("processes in the pods' cgroups do not die")


def _remove_cgroups() -> None:
    for directory in _cgroup_dirs():
        with contextlib.suppress(FileNotFoundError):
            directory.rmdir()


def _shim_pids() -> list[int]:
    """containerd shims started by this cluster's containerd (their -address is its socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if argv[0].endswith(b"containerd-shim-runc-v2") and os.fsencode(CONTAINERD_SOCKET) in argv:
            found.append(int(entry.name))
    return found


def _kill_shims() -> None:
    for pid in _shim_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until("containerd shims", lambda: not _shim_pids(), 10)


def _leftover_processes() -> list[str]:
    """Programs of the cluster still running with STATE on their command line."""
    found = []
    needle = os.fsencode(STATE)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                argv = (entry / "cmdline").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if needle in argv and _state(int(entry.name)) not in (None, "Z"):
                found.append(argv.split(b"\0")[0].decode(errors="replace"))
    return found


def _port_taken(port: int) -> bool:
    """Whether something listens on `port` on any address (binding the wildcard address fails then)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 (a probe, closed at once)
        except OSError:
            return True
    return False


def _ctr_ok() -> bool:
    try:
        run(["ctr", "--address", CONTAINERD_SOCKET, "version"])
    except CommandFailed:
        return False
    return True


def _get(url: str, token: str | None = None) -> dict[str, Any]:
    """GET a JSON document; an empty dict when the server is not there (yet) or says no."""
    # Only the fixed http(s) URLs of this cluster's own components.
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    context = ssl.create_default_context(cafile=configs.PKI / "ca.crt") if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
            body = response.read()
    except (urllib.error.URLError, OSError):
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {"text": body.decode(errors="replace")}
    return value if isinstance(value, dict) else {}


def _admin_token() -> str:
    config = json.loads((configs.CONFIG / configs.ADMIN.kubeconfig).read_text())
    token: str = config["users"][0]["user"]["token"]
    return token


def _api_ok(path: str) -> bool:
    if not (configs.CONFIG / configs.ADMIN.kubeconfig).exists():
        return False
    return bool(_get(configs.SERVER + path, _admin_token()))


def _node_ready() -> bool:
    node = _get(f"{configs.SERVER}/api/v1/nodes/{NODE_NAME}", _admin_token())
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _show_logs() -> None:
    """The end of every component's log, for a start that failed."""
    for path in sorted(LOGS.glob("*.log")) if LOGS.exists() else []:
        lines = path.read_text(errors="replace").splitlines()[-15:]
        print(f"--- {path.name} (last lines) ---", *lines, sep="\n", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
