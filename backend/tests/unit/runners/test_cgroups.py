"""Finding a process's own cgroup directories from /proc/<pid>/cgroup and the mount table."""

from __future__ import annotations

from pathlib import Path

import pytest

from podrun.runners.cgroups import SandboxCgroup, cgroup_dirs

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


def _v1_cgroup(root: Path, name: str) -> SandboxCgroup:
    """A v1 sandbox cgroup laid out in plain directories, with the files a claim writes."""
    dirs = {controller: root / controller / "podrun" / name for controller in ("memory", "pids", "cpuacct")}
    for directory in dirs.values():
        directory.mkdir(parents=True)
    for path, value in [
        (dirs["memory"] / "memory.limit_in_bytes", "1073741824"),
        (dirs["memory"] / "memory.max_usage_in_bytes", "41943040"),
        (dirs["pids"] / "pids.max", "258"),
        (dirs["cpuacct"] / "cpuacct.usage", "35000000"),
    ]:
        path.write_text(value)
    return SandboxCgroup(1, dirs)


def test_a_v1_cgroup_is_renamed_and_restarted_with_a_runs_limits(tmp_path: Path) -> None:
    cgroup = _v1_cgroup(tmp_path, "podrun-warm-1")
    target = {controller: directory.with_name("podrun-run") for controller, directory in cgroup.dirs.items()}
    assert cgroup.rename(target)
    cgroup.restart(memory_bytes=64 * 1024 * 1024, max_pids=18)
    assert cgroup.dirs == target
    assert not (tmp_path / "memory" / "podrun" / "podrun-warm-1").exists()
    assert (target["memory"] / "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (target["pids"] / "pids.max").read_text() == "18"
    # The usage of the wait is not the run's.
    assert (target["memory"] / "memory.max_usage_in_bytes").read_text() == "0"
    assert (target["cpuacct"] / "cpuacct.usage").read_text() == "0"


def test_a_rename_that_fails_part_way_leaves_every_directory_findable(tmp_path: Path) -> None:
    cgroup = _v1_cgroup(tmp_path, "podrun-warm-1")
    target = {controller: directory.with_name("podrun-run") for controller, directory in cgroup.dirs.items()}
    target["pids"].mkdir()
    (target["pids"] / "taken").write_text("")  # a non-empty directory of that name: the rename fails there
    with pytest.raises(OSError, match="not empty"):
        cgroup.rename(target)
    assert all(directory.exists() for directory in cgroup.dirs.values())


def test_v2_does_not_rename() -> None:
    cgroup = SandboxCgroup(2, {"": Path("/nonexistent/podrun/podrun-warm-1")})
    assert not cgroup.rename({"": Path("/nonexistent/podrun/podrun-run")})
