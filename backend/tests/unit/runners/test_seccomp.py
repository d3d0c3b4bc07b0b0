"""The seccomp policy: what it refuses, its personality arithmetic, and the profile committed for Kubernetes."""

from __future__ import annotations

import errno
import random

import pytest

from podrun.runners import seccomp
from podrun.settings import REPO_ROOT

# What the sandbox issue asked to refuse at least; the policy may refuse more.
REQUIRED = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "unshare", "setns",
    "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "perf_event_open", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "open_by_handle_at", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "personality", "clone3", "clone",
}  # fmt: skip


def refused(syscall: str, *args: int) -> bool:
    """The filter's answer for syscall(*args), evaluated from its rules as the kernel would."""
    padded = (*args, *[0] * (6 - len(args)))
    return any(rule.refuses(syscall, padded) for rule in seccomp.rules())


def refused_personality(value: int) -> bool:
    return refused("personality", value)


def test_the_required_system_calls_are_refused() -> None:
    assert set(seccomp.refused_syscalls()) >= REQUIRED
    assert {rule.error for rule in seccomp.rules()} == {errno.EPERM, errno.ENOSYS}
    assert [rule.error for rule in seccomp.rules() if rule.syscall == "clone3"] == [errno.ENOSYS]


@pytest.mark.parametrize("persona", seccomp.ALLOWED_PERSONALITIES)
def test_allowed_personalities_pass(persona: int) -> None:
    assert not refused_personality(persona)


def test_every_other_personality_is_refused() -> None:
    samples = {1 << bit for bit in range(32)} | {0x0040000 | 0x8, 0x80040001, 0xFFFFFFFE, 0x7FFFFFFF, 0x20001}
    samples |= {random.Random(7).getrandbits(32) for _ in range(20_000)}
    for value in samples - set(seccomp.ALLOWED_PERSONALITIES):
        assert refused_personality(value), hex(value)


def test_new_namespaces_through_clone_are_refused_and_plain_forks_are_not() -> None:
    for flag in seccomp.CLONE_NAMESPACE_FLAGS.values():
        assert refused("clone", flag)
    sigchld, clone_thread_flags = 17, 0x003D0F00  # fork(), and what pthread_create passes
    for flags in (sigchld, clone_thread_flags):
        assert not refused("clone", flags)


HARNESS = seccomp.HARNESS_PID
OWN_PID = 2


@pytest.mark.parametrize("syscall", sorted(seccomp.PID_TARGETED))
def test_limits_and_scheduling_of_the_harness_are_refused_and_of_own_processes_are_not(syscall: str) -> None:
    # Also with garbage in the upper half of the register: the kernel reads a pid_t, 32 bits.
    assert refused(syscall, HARNESS)
    assert refused(syscall, HARNESS | 0xFFFF_FFFF_0000_0000)
    assert not refused(syscall, 0)
    assert not refused(syscall, OWN_PID)


@pytest.mark.parametrize(
    ("syscall", "by_process", "by_group", "by_user"),
    [
        ("setpriority", seccomp.PRIO_PROCESS, seccomp.PRIO_PGRP, seccomp.PRIO_USER),
        ("ioprio_set", seccomp.IOPRIO_WHO_PROCESS, seccomp.IOPRIO_WHO_PGRP, seccomp.IOPRIO_WHO_USER),
    ],
)
def test_priorities_of_the_harness_its_group_or_the_shared_uid_are_refused(
    syscall: str, by_process: int, by_group: int, by_user: int
) -> None:
    for which in (by_process, by_group):
        assert refused(syscall, which, HARNESS)
        assert not refused(syscall, which, 0)
        assert not refused(syscall, which, OWN_PID)
    assert refused(syscall, by_user, 0)
    assert refused(syscall, by_user, 65534)


def test_the_filter_compiles_to_bpf() -> None:
    program = seccomp.bpf()
    assert len(program) % 8 == 0
    assert 0 < len(program) // 8 < 4096
    assert seccomp.describe().startswith(f"seccomp {seccomp.NAME} (")


def test_the_committed_kubernetes_profile_is_current() -> None:
    committed = REPO_ROOT / "infra" / "k8s" / "seccomp" / f"{seccomp.NAME}.json"
    assert committed.read_text() == seccomp.oci_profile_json(), "regenerate it with `podrun seccomp-profile`"
