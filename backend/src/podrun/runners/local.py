"""The local sandbox runner: bubblewrap namespaces, a seccomp filter, cgroups where writable, rlimits always.

One run is: create the sandbox's cgroup, start `bwrap ... python -I harness.py` as a uid of its own,
wait for the harness's ready frame, move the sandbox's processes into the cgroup, send the header
(script, stdin, limits), then read frames from the harness's stdout until its exit frame. A warm
pool (warm_pool.py) does everything up to the header ahead of time; a run then takes a waiting
sandbox, sets its cgroup's limits to the run's, and sends the header.

Nothing of the worker reaches the sandbox: bubblewrap starts with an environment built here (it
becomes the sandbox's PID 1, whose environment a script can read), its options come from a memory
file instead of its command line, and the harness is placed by content, so no host path, secret or
URL shows in any process or mount a script can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import structlog

from podrun.core.limits import LimitKind, Limits
from podrun.observability import metrics
from podrun.runners import protocol, scientific, seccomp
from podrun.runners.base import (
    NO_ARTIFACTS,
    STDIN_FRAME_BYTES,
    ArtifactCaps,
    FailedSandbox,
    RuntimeSpec,
    SandboxOutput,
    SandboxResult,
    SandboxSpec,
    SandboxUsage,
)
from podrun.runners.bundle import HARNESS, harness_files
from podrun.runners.cgroups import Cgroups, SandboxCgroup
from podrun.runners.ending import PROTOCOL_BROKEN, START_FAILED, Ending, classify
from podrun.runners.frames import FrameReader, header_for, header_frame
from podrun.runners.interpreters import Interpreter, discover
from podrun.runners.sandbox_users import SandboxUsers, SandboxUsersUnavailable
from podrun.runners.scientific import PackageSet
from podrun.runners.warm_pool import WarmPool
from podrun.settings import Settings

log = structlog.get_logger(__name__)

BWRAP = "/usr/bin/bwrap"
# The harness and the modules it imports are bound here by content (bundle.py).
HARNESS_SANDBOX_DIR = "/opt/podrun"
HARNESS_SANDBOX_PATH = f"{HARNESS_SANDBOX_DIR}/{HARNESS}"
PYTHON_SANDBOX_ROOT = "/opt/python"
SANDBOX_SHM = "/dev/shm"  # noqa: S108 - the sandbox's own tmpfs
SANDBOX_UID = "65534"
# bwrap's monitor and the harness (the sandbox's PID 1) live in the cgroup beside the script.
PLATFORM_PROCESSES = 2
READY_TIMEOUT_S = 10.0
# Output frames carry at most 64 KiB of data (about 88 KiB of base64); anything longer is malformed.
MAX_FRAME_LINE = 1024 * 1024
CPU_POLL_S = 0.1
PLATFORM_STDERR_KEEP = 4096
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc/fonts: fontconfig's configuration, which matplotlib's text rendering reads.
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts")

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
            sandbox.warm_pool_size, sandbox.warm_pool_idle_s, self.launch_warm, may_grow=self.memory_to_spare
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
        await self.cleanup(spec.name)
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
        """Make a warm sandbox the run `name`'s: it moves into a cgroup named after the run, with the run's limits.

        The fresh cgroup also gives the run usage figures of its own, free of the wait.
        """
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
        """A cgroup named `name` with the run's limits; None where cgroups are not in force."""
        memory_bytes = limits.memory_mib * 1024 * 1024
        return self.cgroups.create(
            name,
            memory_bytes=memory_bytes,
            max_pids=limits.processes + PLATFORM_PROCESSES,
            cpu_weight=self.settings.sandbox.cpu_weight,
        )

    def _move_into_own_cgroup(self, sandbox: LocalSandbox, name: str, limits: Limits) -> None:
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
        layout = self.layout(self.interpreters[runtime_id], self.packages.get(runtime_id))
        files = [_memory_file("bwrap-seccomp", self.seccomp_filter)]
        harness_binds: list[str] = []
        for file_name, content in harness_files().items():
            files.append(fd := _memory_file("podrun-harness", content))
            harness_binds += ["--ro-bind-data", str(fd), f"{HARNESS_SANDBOX_DIR}/{file_name}"]
        options = [*self.bwrap_options(layout, harness_binds), "--seccomp", str(files[0])]
        files.append(options_fd := _memory_file("bwrap-options", b"".join(o.encode() + b"\0" for o in options)))
        try:
            process = await asyncio.create_subprocess_exec(
                *user.command_prefix(),
                BWRAP,
                "--args",
                str(options_fd),
                layout.executable,
                "-I",
                HARNESS_SANDBOX_PATH,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=MAX_FRAME_LINE,
                env=layout.env,
                pass_fds=files,
                **user.spawn_options(),
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

    def layout(self, interpreter: Interpreter, packages: PackageSet | None = None) -> SandboxLayout:
        """Where the interpreter (and the runtime's packages) appear in the sandbox, and the sandbox's environment."""
        env = dict(protocol.SANDBOX_ENV)
        packages_bind = (packages.directory, protocol.PACKAGES_DIR) if packages is not None else None
        if interpreter.base_prefix.is_relative_to("/usr"):
            return SandboxLayout(str(interpreter.executable), None, env, packages_bind)
        # An interpreter outside /usr (a staged copy) appears at a neutral path.
        prefix = f"{PYTHON_SANDBOX_ROOT}/{interpreter.version_text}"
        env["PATH"] = f"{prefix}/bin:{env['PATH']}"
        # Shared-library builds find libpythonX.Y.so through an absolute RUNPATH of where they were built.
        if any((interpreter.base_prefix / "lib").glob("libpython*.so*")):
            env["LD_LIBRARY_PATH"] = f"{prefix}/lib"
        executable = f"{prefix}/{interpreter.executable.relative_to(interpreter.base_prefix)}"
        return SandboxLayout(executable, (interpreter.base_prefix, prefix), env, packages_bind)

    def bwrap_options(self, layout: SandboxLayout, files: Sequence[str]) -> list[str]:
        """bubblewrap's options: nothing of the host but system files, the interpreter and `files`.

        `files` are options that place more files (the harness, by content), before the root turns read-only.
        """
        options = [
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            # The harness is the sandbox's PID 1: the kernel delivers a script's signals to it only when
            # it handles them, so a script cannot kill the harness that reports on it.
            "--as-pid-1",
            "--uid", SANDBOX_UID,
            "--gid", SANDBOX_UID,
            "--hostname", "podrun",
            "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr",
        ]  # fmt: skip
        for directory in SYSTEM_DIRS:
            if os.path.islink(directory):
                options += ["--symlink", os.readlink(directory), directory]
            elif os.path.isdir(directory):
                options += ["--ro-bind", directory, directory]
        for path in ETC_FILES:
            options += ["--ro-bind-try", path, path]
        sandbox = self.settings.sandbox
        options += ["--proc", "/proc", "--dev", "/dev"]
        options += ["--size", str(sandbox.tmp_mib * 1024 * 1024), "--tmpfs", protocol.SANDBOX_TMP]
        # POSIX shared memory and multiprocessing's semaphores and arenas live here; its pages, like /tmp's,
        # count against the run's memory cgroup.
        options += ["--size", str(sandbox.shm_mib * 1024 * 1024), "--tmpfs", SANDBOX_SHM]
        for bind in (layout.interpreter_bind, layout.packages_bind):
            if bind is not None:
                options += ["--ro-bind", str(bind[0]), bind[1]]
        options += files
        # bwrap's root and its /dev are tmpfs: make them read-only, so only the size-capped /tmp and /dev/shm
        # are writable (device nodes such as /dev/null stay writable on a read-only mount).
        return [*options, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", protocol.SANDBOX_TMP]

    async def cleanup(self, name: str) -> None:
        """Kill and remove whatever the sandbox `name` left behind. Idempotent."""
        await asyncio.to_thread(self.cgroups.remove, name)


@dataclass(frozen=True, slots=True)
class SandboxLayout:
    """How one interpreter is laid out in a sandbox: its path there, its bind mount, the sandbox's environment."""

    executable: str
    interpreter_bind: tuple[Path, str] | None
    env: dict[str, str]
    packages_bind: tuple[Path, str] | None = None


def _available_memory_bytes() -> int:
    """The host's MemAvailable (what could be allocated without swapping)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return UNKNOWN_MEMORY


def _memory_file(name: str, data: bytes) -> int:
    """An anonymous in-memory file holding `data`, positioned at its start, for a child to read."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class LocalSandbox:
    """One bwrap process with the harness in it, speaking the harness's frame protocol."""

    def __init__(
        self,
        name: str,
        process: asyncio.subprocess.Process,
        cgroup: SandboxCgroup | None,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.process = process
        self.cgroup = cgroup
        self.on_end = on_end
        self.limits: Limits | None = None
        self.frames = FrameReader(NO_ARTIFACTS)
        self.started = time.monotonic()
        self.ended: float | None = None
        self.killed = False
        self.limit_hit: LimitKind | None = None
        self.platform_error: str | None = None
        self.stdin_closed = False
        self.output_done = False
        self.watchdog: asyncio.Task[None] | None = None
        self.discarded = False
        # Whether it was started ahead of its run (by the warm pool).
        self.warm = False
        self.stderr_reader = asyncio.create_task(self._read_platform_stderr())

    async def wait_ready(self) -> bool:
        """Wait for the harness's ready frame, then put every sandbox process into the cgroup."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), READY_TIMEOUT_S)
            tag, _ = protocol.parse_frame(line)
        except (TimeoutError, ValueError) as exc:
            log.exception("sandbox harness not ready", sandbox=self.name, error=type(exc).__name__)
            return False
        if tag != protocol.READY:
            log.error("sandbox harness not ready", sandbox=self.name, error="unexpected frame")
            return False
        if self.cgroup is not None:
            # Nothing in the sandbox forks after the ready frame until the header arrives, so this tree is complete.
            try:
                await asyncio.to_thread(self._place_in_cgroup, self.cgroup)
            except OSError as exc:
                log.exception("sandbox not placed in its cgroup", sandbox=self.name, error=type(exc).__name__)
                return False
        return True

    def _place_in_cgroup(self, cgroup: SandboxCgroup) -> None:
        for pid in _process_tree(self.process.pid):
            cgroup.add(pid)

    def waiting(self) -> bool:
        """Whether this (warm) sandbox is up and has not been given a run."""
        return self.limits is None and not self.killed and self.process.returncode is None

    def move_to(self, cgroup: SandboxCgroup) -> None:
        """Move every process of this (waiting) sandbox into `cgroup`, and remove the cgroup it leaves."""
        previous, self.cgroup = self.cgroup, cgroup
        if previous is not None:
            cgroup.take_processes(previous)
            previous.remove()

    async def discard(self) -> None:
        """Stop a sandbox that will not run anything, and release what it holds."""
        self.discarded = True
        await self.kill()
        await self.wait()

    @property
    def exit(self) -> protocol.Exit | None:
        """The harness's exit record, once it has come."""
        return self.frames.exit

    async def begin(self, header: protocol.Header, limits: Limits, artifact_caps: ArtifactCaps) -> None:
        """Send the header: the script starts now, and so do the wall-time and CPU watchdogs."""
        self.limits = limits
        self.frames = FrameReader(artifact_caps)
        await self._send(header_frame(header))
        self.started = time.monotonic()
        self.watchdog = asyncio.create_task(self._watch(limits))

    async def output(self) -> AsyncIterator[SandboxOutput]:
        """The script's output chunks and artifacts, until the harness's exit frame (or its end)."""
        assert self.process.stdout is not None
        if self.output_done:
            return
        try:
            while self.exit is None:
                line = await self.process.stdout.readline()
                if not line:
                    break
                if (output := self.frames.read(line)) is not None:
                    yield output
        except (ValueError, UnicodeDecodeError) as exc:  # FrameError, or a line over the stream limit
            if not self.killed:
                log.exception("malformed frame from sandbox", sandbox=self.name, error=type(exc).__name__)
                self.platform_error = PROTOCOL_BROKEN
            await self.kill()
        finally:
            self.output_done = True

    async def write_stdin(self, data: bytes) -> None:
        """Forward input to the script, in frames of a bounded size."""
        for offset in range(0, len(data), STDIN_FRAME_BYTES):
            if self.stdin_closed:
                return
            await self._send(protocol.encode_frame(protocol.INPUT, data[offset : offset + STDIN_FRAME_BYTES]))

    async def close_stdin(self) -> None:
        """Ask the harness to close the script's stdin."""
        if not self.stdin_closed:
            await self._send(protocol.encode_frame(protocol.CLOSE))
            self.stdin_closed = True

    async def kill(self) -> None:
        """SIGKILL bwrap's process group and everything in the cgroup; the pid namespace goes with them."""
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()

    async def wait(self) -> SandboxResult:
        """Wait for the end, classify it, and remove the cgroup."""
        if not self.output_done:
            async for _ in self.output():
                pass
        unexpected_end = self.exit is None and not self.killed
        if unexpected_end:
            # The harness's stdout closed without an exit frame; make sure nothing lingers.
            await self.kill()
        await self.process.wait()
        self.ended = self.ended or time.monotonic()
        if self.watchdog is not None:
            self.watchdog.cancel()
        platform_stderr = await self.stderr_reader
        cgroup_usage = self.cgroup.usage() if self.cgroup is not None else None
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
        self.on_end()
        if platform_stderr:
            log.warning("sandbox platform stderr", sandbox=self.name, stderr=platform_stderr)

        cpu_ms = cgroup_usage.cpu_ns // 1_000_000 if cgroup_usage and cgroup_usage.cpu_ns is not None else None
        peak_kib = (
            cgroup_usage.peak_memory_bytes // 1024
            if cgroup_usage and cgroup_usage.peak_memory_bytes is not None
            else None
        )
        if self.exit is not None:
            cpu_ms = cpu_ms if cpu_ms is not None else self.exit.cpu_ms
            peak_kib = peak_kib if peak_kib is not None else self.exit.peak_rss_kib
        usage = SandboxUsage(
            wall_time_ms=int((self.ended - self.started) * 1000), cpu_time_ms=cpu_ms, peak_memory_kib=peak_kib
        )

        if self.exit is not None and self.exit.error is not None:
            log.error("sandbox harness failed", sandbox=self.name, error=self.exit.error)
        quietly_killed = self.exit is None and self.killed and self.limit_hit is None and self.platform_error is None
        if quietly_killed and not self.discarded:
            log.info("sandbox killed", sandbox=self.name)
        ending = Ending(
            self.exit,
            # A sandbox that ended by itself without an exit record was not killed, whatever `kill` did after.
            killed=self.killed and not unexpected_end,
            limit_hit=self.limit_hit,
            limits=self.limits,
            cpu_ms=cgroup_usage.cpu_ns // 1_000_000 if cgroup_usage and cgroup_usage.cpu_ns is not None else None,
            oom_killed=bool(cgroup_usage and cgroup_usage.oom_killed),
            pids_limit_hit=bool(cgroup_usage and cgroup_usage.pids_limit_hit),
            platform_error=self.platform_error,
        )
        return classify(ending, usage)

    async def _send(self, frame: bytes) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.is_closing():
            return
        try:
            stdin.write(frame)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            # The sandbox has ended; wait() reports how.
            self.stdin_closed = True

    async def _watch(self, limits: Limits) -> None:
        """Kill the sandbox when its wall time runs out or its cgroup has used up its CPU time."""
        deadline = self.started + limits.wall_time_ms / 1000
        while True:
            now = time.monotonic()
            if now >= deadline:
                self.limit_hit = LimitKind.WALL_TIME
                break
            cpu_ns = self.cgroup.cpu_ns() if self.cgroup is not None else None
            if cpu_ns is not None and cpu_ns >= limits.cpu_time_ms * 1_000_000:
                self.limit_hit = LimitKind.CPU_TIME
                break
            await asyncio.sleep(min(CPU_POLL_S, deadline - now))
        self.ended = time.monotonic()
        await self.kill()

    async def _read_platform_stderr(self) -> str:
        # bwrap's own messages (and a crashing harness's traceback); never the script's output.
        assert self.process.stderr is not None
        kept = b""
        while chunk := await self.process.stderr.read(65536):
            kept = (kept + chunk)[:PLATFORM_STDERR_KEEP]
        return kept.decode("utf-8", "replace")


def _process_tree(root: int) -> list[int]:
    """`root` and all its descendants, parents before children."""
    if not Path(f"/proc/{root}/task/{root}/children").exists():
        return _process_tree_by_scan(root)  # a kernel without CONFIG_PROC_CHILDREN
    tree = [root]
    for pid in tree:
        try:
            # Each thread's own children; the sandbox's processes are single-threaded, but be exact anyway.
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
            tree.extend(int(child) for task in tasks for child in (task / "children").read_text().split())
        except FileNotFoundError:
            continue  # it has just exited
    return tree


def _process_tree_by_scan(root: int) -> list[int]:
    """`_process_tree` from every process's parent in /proc (slower)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses; the fields after the last ")" do not.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree
