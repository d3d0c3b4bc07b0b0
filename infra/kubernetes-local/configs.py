"""Certificates, tokens and configuration files of the local cluster, all written under STATE.

Identities: static bearer tokens (`--token-auth-file`) for the administrator, the controller
manager, the scheduler and the kubelet (as `system:node:<node>` in `system:nodes`, so the Node
authorizer and NodeRestriction apply to it); a client certificate for the API server's calls to
the kubelet, which accepts only certificates of the cluster's CA and asks the API server whether
a caller may do what it asks (webhook authorization). Service-account tokens are signed with the
cluster's own key, as on any cluster. Keys are P-256; certificates last 30 days.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    APISERVER_PORT,
    BRIDGE,
    CGROUP_ROOT,
    CONTAINERD_STREAM_PORT,
    KUBELET_PORT,
    NODE_IP,
    NODE_NAME,
    POD_SUBNET,
    SERVICE_RANGE,
    STATE,
    run,
)
from images import PAUSE_IMAGE

PKI = STATE / "pki"
CONFIG = STATE / "config"
SECCOMP = STATE / "kubelet" / "seccomp"
# Podrun's seccomp filter in OCI form, installed on the node as profiles/<name> (infra/k8s/README.md).
PROFILES = Path(__file__).resolve().parents[1] / "k8s" / "seccomp"
SERVER = f"https://127.0.0.1:{APISERVER_PORT}"
CERT_DAYS = "30"
# The first address of the service range is the `kubernetes` Service's (no kube-proxy here: unused).
KUBERNETES_SERVICE_IP = SERVICE_RANGE.rsplit(".", 1)[0] + ".1"


@dataclass(frozen=True)
class Identity:
    """A user the API server knows by a static token."""

    name: str
    groups: tuple[str, ...]
    kubeconfig: str


ADMIN = Identity("podrun-admin", ("system:masters",), "admin.kubeconfig")
CONTROLLER_MANAGER = Identity("system:kube-controller-manager", (), "controller-manager.kubeconfig")
SCHEDULER = Identity("system:kube-scheduler", (), "scheduler.kubeconfig")
KUBELET = Identity(f"system:node:{NODE_NAME}", ("system:nodes",), "kubelet.kubeconfig")
IDENTITIES = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KUBELET)


def write_all() -> None:
    """Every certificate, key, token and configuration file the components need."""
    PKI.mkdir(parents=True, mode=0o700)
    CONFIG.mkdir(parents=True, mode=0o700)
    write_pki()
    tokens = {identity.name: secrets.token_urlsafe(32) for identity in IDENTITIES}
    (PKI / "tokens.csv").write_text(
        "".join(
            f'{tokens[i.name]},{i.name},{i.name},"{",".join(i.groups)}"\n'
            if i.groups
            else f"{tokens[i.name]},{i.name},{i.name}\n"
            for i in IDENTITIES
        )
    )
    (PKI / "tokens.csv").chmod(0o600)
    for identity in IDENTITIES:
        write_kubeconfig(CONFIG / identity.kubeconfig, identity.name, tokens[identity.name])
    (CONFIG / "audit-policy.yaml").write_text(json.dumps(AUDIT_POLICY, indent=2))
    (CONFIG / "containerd.toml").write_text(containerd_config())
    (CONFIG / "kubelet.yaml").write_text(json.dumps(kubelet_config(), indent=2))
    (SECCOMP / "profiles").mkdir(parents=True)
    for profile in PROFILES.glob("*.json"):
        shutil.copyfile(profile, SECCOMP / "profiles" / profile.name)
    cni = STATE / "cni" / "net.d"
    cni.mkdir(parents=True)
    (cni / "10-podrun.conflist").write_text(json.dumps(cni_config(), indent=2))


def write_pki() -> None:
    """A CA; serving certificates for the API server and the kubelet; the API server's kubelet client
    certificate; the service-account signing key."""
    _key(PKI / "ca.key")
    run([
        "openssl", "req", "-x509", "-new", "-key", PKI / "ca.key", "-out", PKI / "ca.crt", "-days", CERT_DAYS,
        "-subj", "/CN=podrun-local-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ])  # fmt: skip
    _certificate(
        "apiserver",
        "/CN=kube-apiserver",
        "serverAuth",
        f"IP:127.0.0.1,IP:{NODE_IP},IP:{KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc",
    )
    _certificate("kubelet", f"/CN={NODE_NAME}", "serverAuth", f"IP:{NODE_IP},DNS:{NODE_NAME}")
    # The API server's identity towards the kubelet, which then asks the API server (webhook) what it may do.
    _certificate("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", "clientAuth", None)
    _key(PKI / "service-account.key")
    run(["openssl", "pkey", "-in", PKI / "service-account.key", "-pubout", "-out", PKI / "service-account.pub"])


def _key(path: Path) -> None:
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    path.chmod(0o600)


def _certificate(name: str, subject: str, usage: str, alt_names: str | None) -> None:
    key, request, certificate = PKI / f"{name}.key", PKI / f"{name}.csr", PKI / f"{name}.crt"
    _key(key)
    run(["openssl", "req", "-new", "-key", key, "-out", request, "-subj", subject])
    extensions = PKI / f"{name}.ext"
    lines = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature", f"extendedKeyUsage={usage}"]
    if alt_names:
        lines.append(f"subjectAltName={alt_names}")
    extensions.write_text("\n".join(lines) + "\n")
    run([
        "openssl", "x509", "-req", "-in", request, "-CA", PKI / "ca.crt", "-CAkey", PKI / "ca.key",
        "-CAcreateserial", "-days", CERT_DAYS, "-extfile", extensions, "-out", certificate,
    ])  # fmt: skip
    request.unlink()
    extensions.unlink()


def write_kubeconfig(path: Path, user: str, token: str) -> None:
    """A kubeconfig for `user` with a bearer token, trusting the cluster's CA."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "podrun-local", "cluster": {"server": SERVER, "certificate-authority": str(PKI / "ca.crt")}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "podrun-local", "context": {"cluster": "podrun-local", "user": user}}],
        "current-context": "podrun-local",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# What the tests read back: every request of the worker's identity (a refusal is a test failure), and in
# the executions namespace, pod creations with their body (the spec the runner sent) and the rest by name.
WORKER_USER = "system:serviceaccount:podrun:podrun-worker"
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Request",
            "verbs": ["create"],
            "namespaces": ["podrun-exec"],
            "resources": [{"group": "", "resources": ["pods"]}],
        },
        {"level": "Metadata", "users": [WORKER_USER]},
        {
            "level": "Metadata",
            "namespaces": ["podrun-exec"],
            "resources": [{"group": "", "resources": ["pods", "pods/attach", "configmaps"]}],
        },
        {"level": "None"},
    ],
}


def containerd_config() -> str:
    """containerd with everything under STATE, runc as the runtime and the cluster's CNI configuration."""
    containerd = STATE / "containerd"
    return f"""\
version = 2
root = "{containerd / "root"}"
state = "{containerd / "state"}"
# Nothing outside STATE: no /opt/containerd, no snapshotters that are not used.
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{containerd / "containerd.sock"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{CONTAINERD_STREAM_PORT}"
  # Root here may not lower oom_score_adj (no CAP_SYS_RESOURCE); without this runc cannot start containers.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{containerd / "runc"}"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{STATE / "cni" / "net.d"}"
"""


def kubelet_config() -> dict[str, Any]:
    """The kubelet: on the node address only, no anonymous or read-only access, pods under CGROUP_ROOT."""
    kubelet = STATE / "kubelet"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "tlsCertFile": str(PKI / "kubelet.crt"),
        "tlsPrivateKeyFile": str(PKI / "kubelet.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(PKI / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "protectKernelDefaults": False,
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        "volumePluginDir": str(kubelet / "volume-plugins"),
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "enforceNodeAllocatable": ["pods"],
    }


def kubelet_args() -> list[str]:
    """The kubelet's command-line flags (those without a config-file field in 1.20)."""
    kubelet = STATE / "kubelet"
    return [
        f"--config={CONFIG / 'kubelet.yaml'}",
        f"--kubeconfig={CONFIG / KUBELET.kubeconfig}",
        "--container-runtime=remote",
        f"--container-runtime-endpoint=unix://{STATE / 'containerd' / 'containerd.sock'}",
        f"--root-dir={kubelet / 'root'}",
        f"--cert-dir={kubelet / 'pki'}",
        f"--node-ip={NODE_IP}",
        f"--hostname-override={NODE_NAME}",
        f"--pod-infra-container-image={PAUSE_IMAGE}",
        # Localhost seccomp profiles (1.20's default is /var/lib/kubelet/seccomp, whatever --root-dir says).
        f"--seccomp-profile-root={SECCOMP}",
        "--v=1",
    ]


def cni_config() -> dict[str, Any]:
    """A bridge without an address of its own and no routes: pods get addresses but no way to the host
    or beyond (the plugin does not enforce NetworkPolicy; this is the local cluster's own isolation)."""
    return {
        "cniVersion": "0.4.0",
        "name": "podrun",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET}]],
                    "dataDir": str(STATE / "cni" / "ipam"),
                },
            },
        ],
    }
