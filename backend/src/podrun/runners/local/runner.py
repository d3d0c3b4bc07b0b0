"""The local sandbox runner: bubblewrap namespaces, a seccomp filter, cgroups where writable, rlimits always.

One run is: create the sandbox's cgroup, start `bwrap ... python -I harness.py` as a uid of its own
(the command: bwrap.py), wait for the harness's ready frame, move the sandbox's processes into the
cgroup, send the header (script, stdin, limits), then read frames from the harness's stdout until its
exit frame (sandbox.py). A warm pool (../warm_pool.py) does everything up to the header ahead of
time; a run then takes a waiting sandbox, sets its cgroup's limits to the run's, and sends the header.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from functools import cached_property
from pathlib import Path

import structlog

from podrun.core.limits import Limits
from podrun.observability import metrics
from podrun.runners import scientific, seccomp
from podrun.runners.base import (
    FailedSandbox,
    RuntimeSpec,
    SandboxSpec,
)
from podrun.runners.bundle import harness_files
from podrun.runners.cgroups import Cgroups, SandboxCgroup
from podrun.runners.ending import START_FAILED
from podrun.runners.frames import header_for
from podrun.runners.interpreters import Interpreter, discover
from podrun.runners.local import bwrap
from podrun.runners.local.sandbox import LocalSandbox
from podrun.runners.sandbox_users import SandboxUsers, SandboxUsersUnavailable
from podrun.runners.scientific import PackageSet
from podrun.runners.warm_pool import WarmPool
from podrun.settings import Settings

log = structlog.get_logger(__name__)


# bwrap's monitor and the harness (the sandbox's PID 1) live in the cgroup beside the script.
PLATFORM_PROCESSES = 2
# Output frames carry at most 64 KiB of data (about 88 KiB of base64); anything longer is malformed.
MAX_FRAME_LINE = 1024 * 1024

# Where the host does not say how much memory is available, the pool does not hold back.
UNKNOWN_MEMORY = 1 << 62
# Warm sandboxes keep the cgroup they were started in, named with this prefix and an id of their own.
WARM_PREFIX = "warm-"


class LocalRunner:
    """Runs each execution in a fresh bubblewrap sandbox on this host."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def discovered(self) -> list[Interpreter]:
        """The interpreters a sandbox can run, discovered once."""
        found = discover(self.settings.sandbox.python_interpreters, self.settings.sandbox.runtimes_dir)
        log.info("python interpreters discovered", runtimes=[interpreter.version_text for interpreter in found])
        return found

    @cached_property
    def packages(self) -> dict[str, PackageSet]:
        """The packages of each scientific runtime the setup installed, by runtime id."""
        if not self.settings.sandbox.scientific:
            return {}
        runtimes_dir = self.settings.sandbox.runtimes_dir
        installed = {scientific.runtime_id(i): scientific.installed(i, runtimes_dir) for i in self.discovered}
        return {runtime: packages for runtime, packages in installed.items() if packages is not None}

    @cached_property
    def interpreters(self) -> dict[str, Interpreter]:
        """The interpreter of each runtime on offer by runtime id (a scientific runtime shares its plain one's)."""
        runtimes: dict[str, Interpreter] = {}
        for interpreter in self.discovered:
            runtimes[interpreter.runtime_id] = interpreter
            if scientific.runtime_id(interpreter) in self.packages:
                runtimes[scientific.runtime_id(interpreter)] = interpreter
        return runtimes

    @cached_property
    def users(self) -> SandboxUsers:
        """The host uids sandboxes run as; refuses to go on without them (never root, never the worker's)."""
        return SandboxUsers.detect(self.settings.sandbox.account, self.settings.sandbox.uid_lease_dir)

    @cached_property
    def seccomp_filter(self) -> bytes:
        """The compiled seccomp filter, made once per process."""
        return seccomp.bpf()

    @cached_property
    def pool(self) -> WarmPool[LocalSandbox]:
        """Sandboxes started ahead of their runs."""
        sandbox = self.settings.sandbox
        return WarmPool(
            sandbox.warm_pool_size,
            sandbox.warm_pool_idle_s,
            self.launch_warm,
            max_size=sandbox.warm_pool_max,
            may_grow=self.memory_to_spare,
        )

    @cached_property
    def cgroups(self) -> Cgroups:
        """The cgroup hierarchy sandboxes go into, detected once."""
        cgroups = Cgroups.detect()
        log.info("sandbox isolation", isolation=cgroups.describe())
        return cgroups

    def runtimes(self) -> list[RuntimeSpec]:
        """One runtime per Python minor version, and its scientific one where installed; the newest is the default."""
        newest = max(self.interpreters.values(), key=lambda interpreter: interpreter.version, default=None)
        return [
            RuntimeSpec(
                id=runtime_id,
                language="python",
                version=interpreter.version_text,
                default=interpreter is newest and runtime_id == interpreter.runtime_id,
                max_limits=self.settings.limits.maximum,
                default_limits=self.settings.limits.default,
                packages=tuple((p.name, p.version) for p in self.packages[runtime_id].packages)
                if runtime_id in self.packages
                else (),
            )
            for runtime_id, interpreter in self.interpreters.items()
        ]

    def isolation(self) -> str:
        """How limits are enforced on this host."""
        return ", ".join(("bubblewrap namespaces", seccomp.describe(), self.users.describe(), self.cgroups.describe()))

    async def open(self, worker_id: str) -> None:
        """Check that sandbox uids can be leased, and warm the default runtime's sandboxes (others on first use)."""
        await asyncio.to_thread(self.users.prepare)
        await asyncio.to_thread(self.cgroups.remove_empty, WARM_PREFIX)
        default = next((runtime.id for runtime in self.runtimes() if runtime.default), None)
        if default is not None:
            self.pool.warm(default)

    async def close(self) -> None:
        """Stop the warm sandboxes."""
        await self.pool.close()

    async def start(self, spec: SandboxSpec) -> LocalSandbox | FailedSandbox:
        """Start the run in a warm sandbox, or in a fresh one named `spec.name` (replacing an earlier attempt's)."""
        if spec.runtime_id not in self.interpreters:
            raise LookupError(f"unknown runtime {spec.runtime_id!r}")
        limits = spec.limits
        began = time.monotonic()
        warm = self.pool.take(spec.runtime_id)
        if warm is not None and not await self.claim(warm, spec.name, limits):
            await warm.discard()
            warm = None
        sandbox = warm or await self.launch_cold(spec.name, spec.runtime_id, limits)
        if isinstance(sandbox, FailedSandbox):
            return sandbox
        cgroup = sandbox.cgroup
        header = header_for(
            spec,
            stdin_eof=False,
            # With a cgroup in force these are enforced (and measured) on the host instead.
            memory_bytes=None if cgroup else limits.memory_mib * 1024 * 1024,
            processes=None if cgroup else limits.processes,
            # No file-size rlimit: every writable file system is a tmpfs of a fixed size, which bounds a file
            # exactly (an rlimit below it broke shared memory as large as /dev/shm with EFBIG).
            file_size_bytes=None,
        )
        await sandbox.begin(header, limits, spec.artifact_caps)
        metrics.sandbox_started("local", warm=warm is not None)
        log.info(
            "sandbox started", sandbox=spec.name, warm=warm is not None, ms=round((time.monotonic() - began) * 1000, 1)
        )
        return sandbox

    async def claim(self, sandbox: LocalSandbox, name: str, limits: Limits) -> bool:
        """Make a warm sandbox the run `name`'s: its cgroup is renamed after the run (v1; v2 moves it into a new one),
        with the run's limits and usage figures of its own, free of the wait."""
        try:
            await asyncio.to_thread(self._move_into_own_cgroup, sandbox, name, limits)
        except OSError as exc:
            log.exception("warm sandbox not claimed", sandbox=name, error=type(exc).__name__)
            await self.cleanup(name)
            return False
        sandbox.name = name
        sandbox.warm = True
        return True

    def _cgroup_for(self, name: str, limits: Limits) -> SandboxCgroup | None:
        """A new cgroup named `name` (replacing what an earlier attempt of the run left) with the run's limits; None
        where cgroups are not in force."""
        self.cgroups.remove(name)
        memory_bytes = limits.memory_mib * 1024 * 1024
        return self.cgroups.create(
            name,
            memory_bytes=memory_bytes,
            max_pids=limits.processes + PLATFORM_PROCESSES,
            cpu_weight=self.settings.sandbox.cpu_weight,
        )

    def _move_into_own_cgroup(self, sandbox: LocalSandbox, name: str, limits: Limits) -> None:
        waited_in = sandbox.cgroup
        self.cgroups.remove(name)  # what an earlier attempt of the run left
        if waited_in is not None and waited_in.rename(self.cgroups.dirs(name)):
            waited_in.restart(
                memory_bytes=limits.memory_mib * 1024 * 1024, max_pids=limits.processes + PLATFORM_PROCESSES
            )
            return
        cgroup = self._cgroup_for(name, limits)
        if cgroup is not None:
            sandbox.move_to(cgroup)

    async def launch_cold(self, name: str, runtime_id: str, limits: Limits) -> LocalSandbox | FailedSandbox:
        """A sandbox of the runtime `runtime_id` started for one run, in a cgroup named after it."""
        try:
            cgroup = await asyncio.to_thread(self._cgroup_for, name, limits)
        except OSError as exc:
            log.exception("sandbox cgroup not created", sandbox=name, error=type(exc).__name__)
            await self.cleanup(name)
            return FailedSandbox(START_FAILED)
        sandbox = await self.launch(name, runtime_id, cgroup)
        if isinstance(sandbox, FailedSandbox):
            await self.cleanup(name)
        return sandbox

    async def launch_warm(self, runtime_id: str) -> LocalSandbox | None:
        """A sandbox for the pool, under the largest limits until a run claims it."""
        name = f"{WARM_PREFIX}{uuid.uuid4().hex}"
        maximum = self.settings.limits.maximum
        sandbox = await self.launch_cold(name, runtime_id, maximum)
        return sandbox if isinstance(sandbox, LocalSandbox) else None

    def memory_to_spare(self) -> bool:
        """Whether the host could still give one more run its largest memory limit (else the pool waits)."""
        return _available_memory_bytes() >= self.settings.limits.maximum.memory_mib * 1024 * 1024

    async def launch(self, name: str, runtime_id: str, cgroup: SandboxCgroup | None) -> LocalSandbox | FailedSandbox:
        """Start bwrap and the harness as a uid of the sandbox's own, and wait until the harness is ready."""
        try:
            user = await asyncio.to_thread(self.users.acquire)
        except SandboxUsersUnavailable as exc:
            log.exception("sandbox uid not leased", sandbox=name, error=type(exc).__name__)
            return FailedSandbox(START_FAILED)
        layout = bwrap.layout(self.interpreters[runtime_id], self.packages.get(runtime_id))
        files = [bwrap.memory_file("bwrap-seccomp", self.seccomp_filter)]
        harness_binds: list[str] = []
        for file_name, content in harness_files().items():
            files.append(fd := bwrap.memory_file("podrun-harness", content))
            harness_binds += ["--ro-bind-data", str(fd), f"{bwrap.HARNESS_SANDBOX_DIR}/{file_name}"]
        options = [*bwrap.options(self.settings.sandbox, layout, harness_binds), "--seccomp", str(files[0])]
        files.append(options_fd := bwrap.memory_file("bwrap-options", b"".join(o.encode() + b"\0" for o in options)))
        try:
            process = await asyncio.create_subprocess_exec(
                *user.command_prefix(),
                bwrap.BWRAP,
                "--args",
                str(options_fd),
                layout.executable,
                "-I",
                bwrap.HARNESS_SANDBOX_PATH,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=MAX_FRAME_LINE,
                env=layout.env,
                pass_fds=files,
            )
        except OSError as exc:
            log.exception("bwrap not started", sandbox=name, error=type(exc).__name__)
            self.users.release(user)
            return FailedSandbox(START_FAILED)
        finally:
            for fd in files:
                os.close(fd)
        sandbox = LocalSandbox(name, process, cgroup, on_end=lambda: self.users.release(user))
        if not await sandbox.wait_ready():
            await sandbox.kill()
            await sandbox.wait()
            return FailedSandbox(START_FAILED)
        return sandbox

    async def cleanup(self, name: str) -> None:
        """Kill and remove whatever the sandbox `name` left behind. Idempotent."""
        await asyncio.to_thread(self.cgroups.remove, name)


def _available_memory_bytes() -> int:
    """The host's MemAvailable (what could be allocated without swapping)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return UNKNOWN_MEMORY
