"""The Pod Security Standards "restricted" profile (Kubernetes 1.30+), checked on a pod spec as a dict.

Mirrors the upstream checks (k8s.io/pod-security-admission/policy): baseline's host namespaces,
privileged, capabilities, hostPath, hostPorts, AppArmor/SELinux/procMount/sysctls, plus restricted's
volume types, allowPrivilegeEscalation, runAsNonRoot, runAsUser != 0, seccomp and capabilities.
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def violations(pod_spec: dict[str, Any]) -> list[str]:
    """Every way `pod_spec` breaks the restricted profile; empty when it complies."""
    found: list[str] = []
    pod_sc = pod_spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            found.append(field)
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds)}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']}")
    if (pod_sc.get("seLinuxOptions") or {}).get("type") not in (None, "", "container_t", "container_init_t"):
        found.append("seLinuxOptions.type")
    if pod_sc.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    containers = [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]
    for container in containers:
        sc = container.get("securityContext") or {}
        where = f"container {container['name']}"
        if sc.get("privileged"):
            found.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation must be false")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}: capabilities must drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}: capabilities added")
        if sc.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser 0")
        if not (
            sc.get("runAsNonRoot") is True
            or (pod_sc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)
        ):
            found.append(f"{where}: runAsNonRoot")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile")
        if sc.get("procMount") not in (None, "Default"):
            found.append(f"{where}: procMount")
        if any(port.get("hostPort") for port in container.get("ports") or []):
            found.append(f"{where}: hostPort")
    return found
