"""Finding a process's own cgroup directories from /proc/<pid>/cgroup and the mount table."""

from __future__ import annotations

from pathlib import Path

from podrun.runners.cgroups import cgroup_dirs

V1_CGROUP = """\
12:pids:/user.slice/session-1.scope
9:memory:/user.slice/session-1.scope
4:cpu,cpuacct:/user.slice/session-1.scope
1:name=systemd:/user.slice/session-1.scope
0::/user.slice/session-1.scope
"""
V1_MOUNTS = """\
24 20 0:21 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
30 24 0:27 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
31 24 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:15 - cgroup cgroup rw,memory
32 24 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:16 - cgroup cgroup rw,cpu,cpuacct
33 24 0:30 / /sys/fs/cgroup/unified rw,nosuid shared:17 - cgroup2 cgroup2 rw,nsdelegate
"""


def test_cgroup_v1_hierarchies_and_the_unified_one() -> None:
    assert cgroup_dirs(V1_CGROUP, V1_MOUNTS) == {
        "pids": Path("/sys/fs/cgroup/pids/user.slice/session-1.scope"),
        "memory": Path("/sys/fs/cgroup/memory/user.slice/session-1.scope"),
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct/user.slice/session-1.scope"),
        "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct/user.slice/session-1.scope"),
        "": Path("/sys/fs/cgroup/unified/user.slice/session-1.scope"),
    }


def test_a_container_sees_its_cgroup_mounted_at_its_own_root() -> None:
    # In a container the mount's root is the container's cgroup, so the process sits at the mount point.
    mounts = "40 30 0:31 /kubepods/pod1/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert cgroup_dirs("0::/kubepods/pod1/abc\n", mounts) == {"": Path("/sys/fs/cgroup")}


def test_a_hierarchy_the_process_is_not_below_is_ignored() -> None:
    mounts = "40 30 0:31 /other /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert cgroup_dirs("0::/mine\n", mounts) == {}


def test_mounts_that_are_not_cgroups_are_ignored() -> None:
    mounts = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    assert cgroup_dirs("0::/\n", mounts) == {}
