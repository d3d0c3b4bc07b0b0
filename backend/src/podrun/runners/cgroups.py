"""Per-sandbox cgroups: memory, process and CPU limits and trusted usage figures.

Sandboxes get a cgroup named after the sandbox under `<this process's cgroup>/podrun/`, so a
worker (or a retry after a crash) finds leftovers by name. cgroup v2 is used when the unified
hierarchy is mounted with the memory and pids controllers and is writable; otherwise cgroup v1
when its memory, pids and cpuacct hierarchies are writable; otherwise none (rlimits only).

Every sandbox cgroup gets an explicit CPU weight (v2 cpu.weight, v1 cpu.shares where the cpu
controller is writable): sandboxes are siblings under one parent, so a busy CPU is shared between
runs by their weights, however many processes each run starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

V1_CONTROLLERS = ("memory", "pids", "cpuacct")
# cgroup v1's cpu controller (CPU weight) is used where writable, but not required.
V1_CPU = "cpu"
# cpu.shares per unit of cpu.weight: v2's default weight (100) is v1's default shares (1024).
V1_SHARES_PER_WEIGHT = 1024 / 100
V1_MIN_SHARES = 2
PARENT = "podrun"
PARENT_RACE_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class SandboxUsage:
    """What the cgroup saw a sandbox use and hit."""

    cpu_ns: int | None
    peak_memory_bytes: int | None
    oom_killed: bool
    pids_limit_hit: bool


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _read_key(path: Path, key: str) -> int | None:
    """A value of a "key value" per-line file such as memory.events."""
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def _own_cgroup_dirs() -> dict[str, Path]:
    """Where this process's cgroup lives in each mounted hierarchy ("" is the unified one)."""
    return cgroup_dirs(_read(Path("/proc/self/cgroup")) or "", _read(Path("/proc/self/mountinfo")) or "")


def cgroup_dirs(proc_cgroup: str, mountinfo: str) -> dict[str, Path]:
    """The directory of a process's cgroup per hierarchy, from its /proc/<pid>/cgroup and mountinfo texts."""
    memberships: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controller_list, path = line.split(":", 2)
        for controller in controller_list.split(",") if controller_list else [""]:
            memberships[controller] = path
    dirs: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        separator = fields.index("-")
        fs_type, options = fields[separator + 1], fields[separator + 3].split(",")
        root, mountpoint = fields[3], fields[4]
        if fs_type == "cgroup2":
            controllers = [""]
        elif fs_type == "cgroup":
            controllers = [option for option in options if option in (*V1_CONTROLLERS, V1_CPU)]
        else:
            continue
        for controller in controllers:
            member = memberships.get(controller)
            if member is None or not (member + "/").startswith(root.rstrip("/") + "/"):
                continue
            dirs[controller] = Path(mountpoint) / member[len(root.rstrip("/")) :].lstrip("/")
    return dirs


def _make_parent(parent: Path, version: int) -> None:
    # Not mkdir(exist_ok=True): it re-raises "exists" when another sandbox's cleanup removes the empty parent
    # between the two checks; then the caller's mkdir of its own cgroup fails as not found, and retries.
    with contextlib.suppress(FileExistsError):
        parent.mkdir()
    if version == 2:
        (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")


def _probe(parent: Path) -> None:
    """Create and remove a cgroup under `parent`: the parent may exist (another worker's) yet not be ours to write."""
    probe = parent / f"probe-{os.getpid()}"
    probe.mkdir()
    probe.rmdir()


def _usable_v1_parent(parent: Path) -> bool:
    try:
        _make_parent(parent, 1)
        _probe(parent)
    except OSError as exc:
        log.info("cgroup v1 cpu controller not usable", error=type(exc).__name__)
        return False
    finally:
        _remove_parent(parent)
    return True


def _remove_parent(parent: Path) -> None:
    # The shared parent exists only while sandboxes do: an empty cgroup left under this
    # process's cgroup would keep whoever manages that one from removing it.
    with contextlib.suppress(OSError):
        parent.rmdir()


class Cgroups:
    """The cgroup hierarchy sandboxes are placed in (v1 or v2), or none at all."""

    def __init__(self, version: int | None, parents: dict[str, Path]) -> None:
        self.version = version
        self.parents = parents

    @classmethod
    def detect(cls) -> Cgroups:
        """Find a writable cgroup hierarchy with the controllers we need; prefer v2."""
        own = _own_cgroup_dirs()
        unified = own.get("")
        if unified is not None:
            available = set((_read(unified / "cgroup.controllers") or "").split())
            if {"memory", "pids", "cpu"} <= available:
                parent = unified / PARENT
                try:
                    # v2 allows controllers in a child only if the parent delegates them.
                    (unified / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                    _make_parent(parent, 2)
                    _probe(parent)
                    _remove_parent(parent)
                    return cls(2, {"": parent})
                except OSError as exc:
                    log.info("cgroup v2 not usable", error=type(exc).__name__)
        if all(controller in own for controller in V1_CONTROLLERS):
            parents = {controller: own[controller] / PARENT for controller in V1_CONTROLLERS}
            try:
                for parent in parents.values():
                    _make_parent(parent, 1)
                    _probe(parent)
                    _remove_parent(parent)
            except OSError as exc:
                log.info("cgroup v1 not usable", error=type(exc).__name__)
            else:
                cpu = own.get(V1_CPU)
                # Mounted together with cpuacct ("cpu,cpuacct"), its files are in that directory already.
                if cpu is not None and cpu / PARENT not in parents.values() and _usable_v1_parent(cpu / PARENT):
                    parents[V1_CPU] = cpu / PARENT
                return cls(1, parents)
        return cls(None, {})

    def describe(self) -> str:
        """How limits are enforced, for humans."""
        if self.version == 1:
            return f"cgroup v1 ({', '.join(self.parents)}) + rlimits"
        if self.version == 2:
            return "cgroup v2 (memory, pids, cpu) + rlimits"
        return "rlimits only"

    def dirs(self, name: str) -> dict[str, Path]:
        """The directories of the sandbox cgroup `name`, one per hierarchy."""
        return {controller: parent / name for controller, parent in self.parents.items()}

    def create(self, name: str, *, memory_bytes: int, max_pids: int, cpu_weight: int) -> SandboxCgroup | None:
        """Create the sandbox cgroup with its limits and CPU weight; None when cgroups are not in force."""
        if self.version is None:
            return None
        cgroup = SandboxCgroup(self.version, self.dirs(name))
        cgroup.create(memory_bytes=memory_bytes, max_pids=max_pids, cpu_weight=cpu_weight)
        return cgroup

    def remove_empty(self, prefix: str) -> None:
        """Remove the empty sandbox cgroups whose name starts with `prefix` (left by a worker that died)."""
        for parent in self.parents.values():
            for directory in parent.glob(f"{prefix}*"):
                # rmdir fails for a cgroup that still has processes: a live worker's sandboxes stay.
                with contextlib.suppress(OSError):
                    directory.rmdir()

    def remove(self, name: str) -> None:
        """Kill whatever runs in the sandbox cgroup `name` and remove it. Idempotent."""
        if self.version is not None:
            SandboxCgroup(self.version, self.dirs(name)).remove()


class SandboxCgroup:
    """One sandbox's cgroup (a directory per hierarchy in v1, one directory in v2)."""

    def __init__(self, version: int, dirs: dict[str, Path]) -> None:
        self.version = version
        self.dirs = dirs

    def create(self, *, memory_bytes: int, max_pids: int, cpu_weight: int) -> None:
        """Make the directories and write the limits (swap included, so it cannot dodge them) and the CPU weight."""
        for directory in self.dirs.values():
            for attempt in range(PARENT_RACE_ATTEMPTS):
                try:
                    _make_parent(directory.parent, self.version)
                    directory.mkdir()
                    break
                except FileNotFoundError:
                    # Another sandbox's cleanup removed the shared parent while it was empty; once our
                    # cgroup is in it, it stays.
                    if attempt == PARENT_RACE_ATTEMPTS - 1:
                        raise
        if self.version == 2:
            cgroup = self.dirs[""]
            (cgroup / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (cgroup / "memory.swap.max").write_text("0")
            (cgroup / "pids.max").write_text(str(max_pids))
            (cgroup / "cpu.weight").write_text(str(cpu_weight))
            return
        self._limit_v1(memory_bytes, max_pids)
        shares = max(V1_MIN_SHARES, round(cpu_weight * V1_SHARES_PER_WEIGHT))
        for directory in self.dirs.values():
            if (directory / "cpu.shares").exists():
                (directory / "cpu.shares").write_text(str(shares))

    def rename(self, dirs: dict[str, Path]) -> bool:
        """Move this cgroup, processes and all, to `dirs` (the same parents, another name): v1 only (v2 refuses to
        rename a cgroup), where it is far cheaper than moving each process (a write per process and hierarchy, each
        waiting out the kernel's lock on every thread group). False, and nothing changed, where it does not apply.

        A failure part-way leaves `dirs` naming what was renamed, so `remove` still finds every directory.
        """
        if self.version != 1:
            return False
        for controller, target in dirs.items():
            self.dirs[controller].rename(target)
            self.dirs[controller] = target
        return True

    def restart(self, *, memory_bytes: int, max_pids: int) -> None:
        """Lower the limits to a run's and start its usage figures afresh (v1: peak memory and CPU time reset), as if
        the cgroup were new: what the sandbox used while it waited is not the run's."""
        self._limit_v1(memory_bytes, max_pids)
        (self.dirs["memory"] / "memory.max_usage_in_bytes").write_text("0")
        (self.dirs["cpuacct"] / "cpuacct.usage").write_text("0")

    def _limit_v1(self, memory_bytes: int, max_pids: int) -> None:
        """Write v1's memory (swap included, so it cannot dodge it) and process limits."""
        memory = self.dirs["memory"]
        # The memory limit first: memsw's may never go below it (when a claim lowers both).
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        memsw = memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(memory_bytes))
        (self.dirs["pids"] / "pids.max").write_text(str(max_pids))

    def add(self, pid: int) -> None:
        """Move a process into the cgroup (in every hierarchy)."""
        for directory in self.dirs.values():
            (directory / "cgroup.procs").write_text(str(pid))

    def take_processes(self, other: SandboxCgroup) -> None:
        """Move every process of `other` into this cgroup (their usage so far stays counted in `other`)."""
        for pid in sorted(other.pids()):
            self.add(pid)

    def pids(self) -> set[int]:
        """Every process currently in the cgroup."""
        found: set[int] = set()
        for directory in self.dirs.values():
            found.update(int(pid) for pid in (_read(directory / "cgroup.procs") or "").split())
        return found

    def kill(self) -> None:
        """SIGKILL everything in the cgroup, once."""
        if self.version == 2 and (self.dirs[""] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.dirs[""] / "cgroup.kill").write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def usage(self) -> SandboxUsage:
        """The trusted, host-side view of what the sandbox used and which limits it hit."""
        if self.version == 2:
            cgroup = self.dirs[""]
            usage_usec = _read_key(cgroup / "cpu.stat", "usage_usec")
            return SandboxUsage(
                cpu_ns=usage_usec * 1000 if usage_usec is not None else None,
                peak_memory_bytes=_read_int(cgroup / "memory.peak"),
                oom_killed=(_read_key(cgroup / "memory.events", "oom_kill") or 0) > 0,
                pids_limit_hit=(_read_key(cgroup / "pids.events", "max") or 0) > 0,
            )
        memory = self.dirs["memory"]
        return SandboxUsage(
            cpu_ns=self.cpu_ns(),
            peak_memory_bytes=_read_int(memory / "memory.max_usage_in_bytes"),
            oom_killed=(_read_key(memory / "memory.oom_control", "oom_kill") or 0) > 0,
            pids_limit_hit=(_read_key(self.dirs["pids"] / "pids.events", "max") or 0) > 0,
        )

    def cpu_weight(self) -> int | None:
        """The CPU weight in force (v1's cpu.shares read back as a weight); None where there is none."""
        if self.version == 2:
            return _read_int(self.dirs[""] / "cpu.weight")
        for directory in self.dirs.values():
            shares = _read_int(directory / "cpu.shares")
            if shares is not None:
                return round(shares / V1_SHARES_PER_WEIGHT)
        return None

    def cpu_ns(self) -> int | None:
        """CPU time used so far by everything in the cgroup."""
        if self.version == 2:
            usage_usec = _read_key(self.dirs[""] / "cpu.stat", "usage_usec")
            return usage_usec * 1000 if usage_usec is not None else None
        return _read_int(self.dirs["cpuacct"] / "cpuacct.usage")

    def remove(self, timeout_s: float = 2.0) -> None:
        """Kill the processes and remove the directories. Idempotent; gives up after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        for directory in self.dirs.values():
            while directory.exists():
                self.kill()
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        log.warning("cgroup not removed", cgroup=str(directory))
                        break
                    time.sleep(0.01)
            _remove_parent(directory.parent)
