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


def refused_personality(value: int) -> bool:
    """The filter's answer for personality(value), evaluated from its rules as the kernel would."""
    return any((value & rule.mask) == rule.value for rule in seccomp.rules() if rule.syscall == "personality")


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
    clone_rules = [rule for rule in seccomp.rules() if rule.syscall == "clone"]
    for flag in seccomp.CLONE_NAMESPACE_FLAGS.values():
        assert any((flag & rule.mask) == rule.value for rule in clone_rules)
    sigchld, clone_thread_flags = 17, 0x003D0F00  # fork(), and what pthread_create passes
    for flags in (sigchld, clone_thread_flags):
        assert not any((flags & rule.mask) == rule.value for rule in clone_rules)


def test_the_filter_compiles_to_bpf() -> None:
    program = seccomp.bpf()
    assert len(program) % 8 == 0
    assert 0 < len(program) // 8 < 4096
    assert seccomp.describe().startswith(f"seccomp {seccomp.NAME} (")


def test_the_committed_kubernetes_profile_is_current() -> None:
    committed = REPO_ROOT / "infra" / "k8s" / "seccomp" / f"{seccomp.NAME}.json"
    assert committed.read_text() == seccomp.oci_profile_json(), "regenerate it with `podrun seccomp-profile`"
