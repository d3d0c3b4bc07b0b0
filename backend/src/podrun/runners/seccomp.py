"""The seccomp filter every sandboxed script runs under: the host kernel, spoken to through fewer doors.

Namespaces hide the host; they do not shrink the kernel a script can call. This filter refuses the
system calls a Python script has no business making and that sandbox escapes have been built on,
modelled on Docker's default profile and on nsjail/snekbox policies. Everything else is allowed
(a deny list: an allow list would break with every new interpreter and library). A refused call
fails with EPERM (ENOSYS for clone3, so the C library falls back to clone, whose flags can be
checked); a system call of another architecture (32-bit or x32 entry points) kills the process.

The harness is PID 1 of the sandbox's PID namespace on both runners, and the script can make no PID
namespace of its own (clone and unshare with CLONE_NEWPID are refused), so PID 1 is the one process a
script can see that is not its own: the calls that change another process's limits, priority or
scheduling are refused when aimed at PID 1 (or its process group, or every process of the uid), and
allowed on the script's own processes. One static filter thus protects the harness, with no second
filter to build per run and nothing for the stdlib-only harness to load.

The same rules are compiled two ways: to BPF with libseccomp for bubblewrap's `--seccomp`, and to
an OCI/Docker JSON profile for a Kubernetes `Localhost` seccomp profile (`podrun seccomp-profile`).
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

NAME = "podrun-v1"

CLONE_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
# The personalities Docker allows: Linux, 32-bit Linux and their UNAME26 variants, and the query.
ALLOWED_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
PERSONALITY_QUERY = 0xFFFFFFFF
AF_VSOCK = 40
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
LOW_32_BITS = 0xFFFFFFFF
# The harness, in every sandbox (see the module's docstring), and its process group (it leads its session).
HARNESS_PID = 1
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
# System calls that change another process's limits or scheduling, by the argument that names the process.
PID_TARGETED = {
    "prlimit64": 0,
    "sched_setaffinity": 0,
    "sched_setscheduler": 0,
    "sched_setparam": 0,
    "sched_setattr": 0,
}

# Refused outright: (system calls, why). Names the running kernel's architecture does not have are skipped.
REFUSED: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp"),
        "reading or changing another process: the harness beside the script, or its descriptors",
    ),
    (
        ("mount", "umount2", "pivot_root", "chroot", "mount_setattr"),
        "changing the mount table the sandbox was built from",
    ),
    (("move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick"), "the new mount API: the same"),
    (("unshare", "setns"), "entering or creating namespaces, the largest kernel attack surface open to users"),
    (("keyctl", "add_key", "request_key"), "the kernel keyrings, which are not namespaced"),
    (("bpf",), "loading eBPF programs into the kernel"),
    (("userfaultfd",), "stalling kernel page faults, the classic way to win races in kernel exploits"),
    (("perf_event_open",), "performance counters: kernel address leaks and a long CVE history"),
    (("io_uring_setup", "io_uring_enter", "io_uring_register"), "io_uring: a second system call interface"),
    (("kexec_load", "kexec_file_load", "reboot"), "replacing or rebooting the kernel"),
    (("init_module", "finit_module", "delete_module", "create_module"), "loading or unloading kernel modules"),
    (("open_by_handle_at", "name_to_handle_at"), "opening files by handle past the mount table (the Shocker escape)"),
    (("acct", "swapon", "swapoff", "quotactl", "quotactl_fd", "syslog", "vhangup"), "host administration"),
    (("settimeofday", "clock_settime", "clock_adjtime", "adjtimex"), "setting the host's clocks"),
    (("sethostname", "setdomainname"), "renaming the host"),
    (("iopl", "ioperm", "modify_ldt"), "raw I/O ports and the x86 local descriptor table"),
    (("uselib", "ustat", "sysfs", "_sysctl", "get_kernel_syms", "query_module", "nfsservctl"), "obsolete"),
    (("lookup_dcookie",), "obsolete"),
    (("mbind", "set_mempolicy", "migrate_pages", "move_pages"), "NUMA placement of memory (Docker needs CAP_SYS_NICE)"),
    (("fanotify_init",), "watching the host's file systems"),
)


@dataclass(frozen=True, slots=True)
class Condition:
    """Argument `arg` of a system call, masked with `mask`, equals `value`."""

    arg: int
    mask: int
    value: int

    def holds(self, args: tuple[int, ...]) -> bool:
        """Whether the condition holds for these arguments (as the kernel's filter would decide)."""
        return (args[self.arg] & self.mask) == self.value


@dataclass(frozen=True, slots=True)
class Rule:
    """Refuse `syscall` with `error` when every one of `conditions` holds (always, if there are none)."""

    syscall: str
    error: int
    reason: str
    conditions: tuple[Condition, ...] = ()

    def refuses(self, syscall: str, args: tuple[int, ...]) -> bool:
        """Whether this rule refuses `syscall(*args)`."""
        return syscall == self.syscall and all(condition.holds(args) for condition in self.conditions)


def _low_32(arg: int, value: int) -> Condition:
    # pid_t and int arguments: the kernel reads only the low 32 bits, so the filter must too.
    return Condition(arg, LOW_32_BITS, value)


def rules() -> list[Rule]:
    """Every rule of the filter, in a stable order."""
    found = [Rule(name, errno.EPERM, reason) for names, reason in REFUSED for name in names]
    found.append(Rule("clone3", errno.ENOSYS, "flags in memory a filter cannot read; libc falls back to clone"))
    found += [
        Rule("clone", errno.EPERM, f"new namespaces through clone ({flag_name})", (Condition(0, flag, flag),))
        for flag_name, flag in CLONE_NAMESPACE_FLAGS.items()
    ]
    found += _personality_rules()
    vsock = "vsock reaches the hypervisor, past the network namespace"
    found.append(Rule("socket", errno.EPERM, vsock, (_low_32(0, AF_VSOCK),)))
    found += [
        Rule("ioctl", errno.EPERM, "pushing input into a terminal", (_low_32(1, request),))
        for request in (TIOCSTI, TIOCLINUX)
    ]
    found += _harness_rules()
    return found


def _harness_rules() -> list[Rule]:
    """Changing the harness's limits, priority or scheduling: by its pid, its process group, or the shared uid."""
    reason = "changing the harness's limits or scheduling (it is PID 1 and leads process group 1)"
    found = [Rule(name, errno.EPERM, reason, (_low_32(arg, HARNESS_PID),)) for name, arg in PID_TARGETED.items()]
    for syscall, by_process, by_group, by_user in (
        ("setpriority", PRIO_PROCESS, PRIO_PGRP, PRIO_USER),
        ("ioprio_set", IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER),
    ):
        found += [
            Rule(syscall, errno.EPERM, reason, (_low_32(0, which), _low_32(1, HARNESS_PID)))
            for which in (by_process, by_group)
        ]
        # Every process of the uid the script shares with the harness.
        found.append(Rule(syscall, errno.EPERM, reason, (_low_32(0, by_user),)))
    return found


def _personality_rules() -> list[Rule]:
    """personality(2) refused for every value but ALLOWED_PERSONALITIES (ADDR_NO_RANDOMIZE turns ASLR off).

    libseccomp compares an argument once per rule, so "none of these values" is spelled as a union of
    masked comparisons on the 32 bits the kernel reads: with bit 31 clear (every persona but the query),
    any bit outside the allowed flags is refused; with bit 31 set, anything but all ones is refused.
    """
    allowed_bits = 0
    for persona in ALLOWED_PERSONALITIES:
        if persona != PERSONALITY_QUERY:
            allowed_bits |= persona
    top = 1 << 31
    reason = "personality flags that weaken ASLR or make data executable"
    found = [
        Rule("personality", errno.EPERM, reason, (Condition(0, top | (1 << bit), 1 << bit),))
        for bit in range(31)
        if not allowed_bits & (1 << bit)
    ]
    found += [Rule("personality", errno.EPERM, reason, (Condition(0, top | (1 << bit), top),)) for bit in range(31)]
    return found


def refused_syscalls() -> list[str]:
    """The names of the system calls the filter refuses in full or in part, sorted."""
    return sorted({rule.syscall for rule in rules()})


def describe() -> str:
    """How the filter is named in `runtimes { isolation }`."""
    return f"seccomp {NAME} ({len(refused_syscalls())} system calls refused)"


@cache
def bpf() -> bytes:
    """The filter compiled for this machine's architecture by libseccomp (cached per process)."""
    import pyseccomp as seccomp  # noqa: PLC0415 - needs libseccomp; only the local runner loads it

    native = seccomp.system_arch()
    program = seccomp.SyscallFilter(seccomp.ALLOW)
    program.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    # A binary search over system call numbers instead of a linear chain: every call pays for the filter.
    program.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for rule in rules():
        number = seccomp.resolve_syscall(native, rule.syscall)
        if number < 0:  # not a system call of this architecture
            continue
        conditions = [seccomp.Arg(c.arg, seccomp.MASKED_EQ, c.mask, c.value) for c in rule.conditions]
        program.add_rule(seccomp.ERRNO(rule.error), number, *conditions)
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "wb") as sink:
            program.export_bpf(sink)
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    return b"".join(chunks)


def oci_profile() -> dict[str, Any]:
    """The same rules as an OCI/Docker seccomp profile (for a Kubernetes `Localhost` profile)."""
    unconditional: dict[int, list[str]] = {}
    conditional: list[dict[str, Any]] = []
    for rule in rules():
        if not rule.conditions:
            unconditional.setdefault(rule.error, []).append(rule.syscall)
            continue
        # For SCMP_CMP_MASKED_EQ, "value" is the mask and "valueTwo" what the masked argument must equal;
        # the conditions of one entry must all hold.
        conditions = [
            {"index": c.arg, "value": c.mask, "valueTwo": c.value, "op": "SCMP_CMP_MASKED_EQ"} for c in rule.conditions
        ]
        conditional.append(
            {"names": [rule.syscall], "action": "SCMP_ACT_ERRNO", "errnoRet": rule.error, "args": conditions}
        )
    syscalls = [
        {"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": error} for error, names in unconditional.items()
    ]
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": syscalls + conditional,
    }


def oci_profile_json() -> str:
    """`oci_profile()` as the file a node keeps under /var/lib/kubelet/seccomp/: one rule per line."""
    profile = oci_profile()
    rules_text = ",\n    ".join(json.dumps(entry) for entry in profile["syscalls"])
    return (
        "{\n"
        f'  "defaultAction": {json.dumps(profile["defaultAction"])},\n'
        f'  "architectures": {json.dumps(profile["architectures"])},\n'
        f'  "syscalls": [\n    {rules_text}\n  ]\n'
        "}\n"
    )
