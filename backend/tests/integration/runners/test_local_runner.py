"""The local runner against real bubblewrap sandboxes on this host."""

from __future__ import annotations

import ast
import asyncio
import signal
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from podrun.core.limits import LimitKind, Limits
from podrun.core.output import Stream
from podrun.runners import harness
from podrun.runners.base import FailedSandbox, OutputBytes, SandboxResult, SandboxSpec, SandboxUsage, sandbox_name
from podrun.runners.cgroups import Cgroups
from podrun.runners.local import LocalRunner, LocalSandbox, bwrap
from podrun.settings import SandboxSettings, Settings

LIMITS = Limits(wall_time_ms=10_000, cpu_time_ms=5_000, memory_mib=256, output_bytes=8 * 1024 * 1024, processes=16)
MIB = 1024 * 1024
# Not the kernel's default (100), so the test sees it was written.
CPU_WEIGHT = 250


def settings(warm_pool_size: int) -> Settings:
    return Settings(
        jwt_secret="test-secret",
        sandbox=SandboxSettings(tmp_mib=64, shm_mib=40, cpu_weight=CPU_WEIGHT, warm_pool_size=warm_pool_size),
    )


@pytest.fixture(scope="module", params=[0, 2], ids=["cold", "warm"])
async def runner(request: pytest.FixtureRequest) -> AsyncIterator[LocalRunner]:
    """Every test runs on fresh sandboxes and on warm ones (after the first run of a runtime)."""
    runner = LocalRunner(settings(request.param))
    await runner.open("test-worker")
    yield runner
    await runner.close()


@pytest.fixture(scope="module")
async def cold_runner() -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(settings(0))
    yield runner
    await runner.close()


def spec_for(
    script: str, *, stdin: bytes | None = None, limits: Limits = LIMITS, runtime: str | None = None
) -> SandboxSpec:
    return SandboxSpec(
        name=sandbox_name(uuid.uuid4()),
        runtime_id=runtime or "",
        script=textwrap.dedent(script),
        stdin=stdin,
        limits=limits,
    )


async def start(runner: LocalRunner, spec: SandboxSpec) -> LocalSandbox:
    if not spec.runtime_id:
        spec = replace(spec, runtime_id=next(runtime.id for runtime in runner.runtimes() if runtime.default))
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, LocalSandbox), await sandbox.wait()
    return sandbox


async def run(
    runner: LocalRunner, script: str, *, stdin: bytes | None = None, limits: Limits = LIMITS, close_stdin: bool = True
) -> tuple[bytes, bytes, SandboxResult]:
    sandbox = await start(runner, spec_for(script, stdin=stdin, limits=limits))
    if close_stdin:
        await sandbox.close_stdin()
    chunks = [chunk async for chunk in sandbox.output()]
    result = await sandbox.wait()
    stdout = b"".join(chunk.data for chunk in chunks if chunk.stream is Stream.STDOUT)
    stderr = b"".join(chunk.data for chunk in chunks if chunk.stream is Stream.STDERR)
    return stdout, stderr, result


async def read_stdout(output: AsyncIterator[OutputBytes], expected: bytes) -> None:
    """Read chunks until exactly `expected` has arrived on stdout (a print may arrive in pieces)."""
    received = b""
    while received != expected:
        chunk = await anext(output)
        assert chunk.stream is Stream.STDOUT
        received += chunk.data
        assert expected.startswith(received)


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_output_streams_while_the_script_runs(runner: LocalRunner) -> None:
    sandbox = await start(
        runner,
        spec_for("""
            import time
            print("first")
            time.sleep(0.5)
            print(time.time())
        """),
    )
    stdout = b""
    first_received_at: float | None = None
    async for chunk in sandbox.output():
        stdout += chunk.data
        if first_received_at is None and stdout == b"first\n":
            first_received_at = time.time()
    result = await sandbox.wait()
    assert result.exit_code == 0
    first, second_written_at = stdout.splitlines()
    assert first == b"first"
    assert first_received_at is not None
    assert first_received_at < float(second_written_at)


async def test_stdout_and_stderr_are_kept_apart(runner: LocalRunner) -> None:
    stdout, stderr, result = await run(
        runner,
        """
        import sys
        for i in range(3):
            print(f"out {i}")
            print(f"err {i}", file=sys.stderr)
        sys.stdout.write("partial")
        """,
    )
    assert stdout == b"out 0\nout 1\nout 2\npartial"
    assert stderr == b"err 0\nerr 1\nerr 2\n"
    assert result == SandboxResult(exit_code=0, signal=None, limit_exceeded=None, usage=result.usage)
    assert result.usage.wall_time_ms is not None
    assert result.usage.cpu_time_ms is not None
    assert result.usage.peak_memory_kib is not None


async def test_initial_stdin_then_eof(runner: LocalRunner) -> None:
    stdout, _, result = await run(runner, "import sys; print(repr(sys.stdin.read()))", stdin=b"a\nb\n")
    assert stdout == b"'a\\nb\\n'\n"
    assert result.exit_code == 0


async def test_interactive_stdin(runner: LocalRunner) -> None:
    sandbox = await start(
        runner,
        spec_for("""
            import sys
            print("ready")
            for line in sys.stdin:
                print("echo", line.strip())
            print("bye")
        """),
    )
    output = sandbox.output()
    await read_stdout(output, b"ready\n")
    for word in ("one", "two"):
        await sandbox.write_stdin(word.encode() + b"\n")
        await read_stdout(output, f"echo {word}\n".encode())
    await sandbox.close_stdin()
    await read_stdout(output, b"bye\n")
    assert [chunk async for chunk in output] == []
    assert (await sandbox.wait()).exit_code == 0


@pytest.mark.parametrize(
    ("script", "exit_code", "signal_number"),
    [
        ("pass", 0, None),
        ("raise SystemExit(3)", 3, None),
        ("import os; os.kill(os.getpid(), 9)", None, signal.SIGKILL),
    ],
)
async def test_exit_code_and_signal(
    runner: LocalRunner, script: str, exit_code: int | None, signal_number: int | None
) -> None:
    _, _, result = await run(runner, script)
    assert (result.exit_code, result.signal, result.limit_exceeded, result.error) == (
        exit_code,
        signal_number,
        None,
        None,
    )


async def test_wall_time_limit_kills_the_whole_tree(runner: LocalRunner) -> None:
    marker = f"podrun-wall-{uuid.uuid4().hex}"
    stdout, _, result = await run(
        runner,
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", "{marker}"])
        print("started", flush=True)
        time.sleep(1000)
        """,
        limits=LIMITS.model_copy(update={"wall_time_ms": 1000}),
    )
    assert stdout == b"started\n"
    assert (result.exit_code, result.signal, result.limit_exceeded) == (None, signal.SIGKILL, LimitKind.WALL_TIME)
    assert processes_with(marker) == []


async def test_cpu_time_limit(runner: LocalRunner) -> None:
    _, _, result = await run(
        runner, "while True: pass", limits=LIMITS.model_copy(update={"cpu_time_ms": 1000, "wall_time_ms": 30_000})
    )
    assert result.limit_exceeded is LimitKind.CPU_TIME
    assert result.exit_code is None
    assert result.usage.cpu_time_ms is not None
    # RLIMIT_CPU fires on the kernel's sampled process clock, which on a loaded VM runs a few percent
    # ahead of the cgroup's exact counter that usage reports.
    assert result.usage.cpu_time_ms >= 800


async def test_memory_limit(runner: LocalRunner) -> None:
    stdout, _, result = await run(
        runner,
        "data = b'x' * (500 * 1024 * 1024)\nprint('allocated')",
        limits=LIMITS.model_copy(update={"memory_mib": 128}),
    )
    assert stdout == b""
    assert result.limit_exceeded is LimitKind.MEMORY
    assert result.exit_code != 0
    assert result.usage.peak_memory_kib is not None
    assert result.usage.peak_memory_kib <= 128 * 1024


async def test_fork_bomb_is_contained(runner: LocalRunner) -> None:
    stdout, _, result = await run(
        runner,
        """
        import os, time
        children = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
        except BlockingIOError:
            print("fork failed after", children)
        """,
        limits=LIMITS.model_copy(update={"processes": 16}),
    )
    children = int(stdout.removeprefix(b"fork failed after "))
    assert 0 < children < 16
    assert result.limit_exceeded is LimitKind.PROCESSES
    assert result.exit_code == 0
    after = await asyncio.create_subprocess_exec("true")
    assert await after.wait() == 0


@pytest.mark.parametrize("port", [6379, 5432])
async def test_no_network(runner: LocalRunner, port: int) -> None:
    stdout, _, _ = await run(
        runner,
        f"""
        import socket
        print(socket.if_nameindex())
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("connected")
        except OSError as exc:
            print(type(exc).__name__)
        """,
    )
    assert stdout == b"[(1, 'lo')]\nConnectionRefusedError\n"


async def test_host_files_are_invisible(runner: LocalRunner) -> None:
    with tempfile.NamedTemporaryFile(dir="/tmp") as marker:
        paths = ["/root", "/work", "/home", marker.name, "/etc/shadow", "/etc/passwd", "/var", "/sys"]
        stdout, _, _ = await run(runner, f"import os; print([os.path.exists(p) for p in {paths!r}])")
    assert stdout == repr([False] * len(paths)).encode() + b"\n"


async def test_environment_is_minimal(runner: LocalRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODRUN_TEST_SECRET", "hunter2")
    stdout, _, _ = await run(runner, "import os; print(sorted(os.environ))")
    names = set(ast.literal_eval(stdout.decode()))
    expected = {"PATH", "HOME", "LANG", "PWD", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LD_LIBRARY_PATH"}
    numeric = {"MPLBACKEND", "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    assert names <= expected | numeric
    assert {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED"} <= names


async def test_runs_unprivileged_and_cannot_reach_the_harness(runner: LocalRunner) -> None:
    stdout, _, _ = await run(
        runner,
        """
        import os
        status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines())
        print(os.getuid(), os.getgid(), status["CapEff"].strip())
        try:
            open(f"/proc/{os.getppid()}/fd/1", "wb")
            print("harness stdout opened")
        except OSError as exc:
            print(type(exc).__name__)
        """,
    )
    assert stdout == b"65534 65534 0000000000000000\nPermissionError\n"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        # One file may be as large as the tmpfs (no file-size rlimit below it)...
        ("open('/tmp/big', 'wb').write(b'x' * (60 * 1024 * 1024))\n            print('60 MiB')", "60 MiB"),
        # ...and all files together may not exceed it (64 MiB).
        ("for i in range(25): open(f'/tmp/f{i}', 'wb').write(b'x' * (8 * 1024 * 1024))", "ENOSPC"),
        # /dev/shm is a tmpfs of its own size (40 MiB)...
        ("for i in range(6): open(f'/dev/shm/f{i}', 'wb').write(b'x' * (8 * 1024 * 1024))", "ENOSPC"),
        # ...and the rest of /dev is read-only.
        ("open('/dev/file', 'wb')", "EROFS"),
    ],
)
async def test_tmp_is_writable_but_capped(runner: LocalRunner, script: str, expected: str) -> None:
    stdout, _, result = await run(
        runner,
        f"""
        import errno
        open("/tmp/small", "w").write("ok")
        print(open("/tmp/small").read())
        try:
            {script}
        except OSError as exc:
            print(errno.errorcode[exc.errno])
        """,
    )
    assert stdout == f"ok\n{expected}\n".encode()
    assert result.exit_code == 0


async def test_each_run_gets_the_configured_cpu_weight(runner: LocalRunner) -> None:
    sandbox = await start(runner, spec_for("print('weighed')"))
    assert sandbox.cgroup is not None
    weight = sandbox.cgroup.cpu_weight()
    await sandbox.close_stdin()
    result = await sandbox.wait()
    assert (weight, result.exit_code) == (CPU_WEIGHT, 0)


async def test_kill_stops_a_run_at_once(runner: LocalRunner) -> None:
    sandbox = await start(runner, spec_for("import time\nprint('running', flush=True)\ntime.sleep(1000)"))
    await read_stdout(sandbox.output(), b"running\n")
    await sandbox.kill()
    result = await asyncio.wait_for(sandbox.wait(), timeout=1.0)
    assert (result.exit_code, result.signal, result.limit_exceeded, result.error) == (None, signal.SIGKILL, None, None)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00invalid \xc3\x28 utf-8\x00\n",
        b"x" * MIB + b"\n",
    ],
    ids=["invalid-utf8-and-nul", "one-mib-line"],
)
async def test_output_comes_through_as_raw_bytes(runner: LocalRunner, data: bytes) -> None:
    stdout, _, result = await run(runner, f"import sys; sys.stdout.buffer.write({data!r})")
    assert stdout == data
    assert result.exit_code == 0


def test_runtimes_list_every_interpreter_and_default_to_the_newest(runner: LocalRunner) -> None:
    # The scientific runtimes beside them have tests of their own (test_scientific.py).
    runtimes = [runtime for runtime in runner.runtimes() if not runtime.id.endswith("-scientific")]
    versions = {tuple(int(part) for part in runtime.version.split(".")) for runtime in runtimes}
    assert {runtime.id for runtime in runtimes} == {f"python-{major}.{minor}" for major, minor, _ in versions}
    assert len(runtimes) == len(versions)
    defaults = [runtime for runtime in runtimes if runtime.default]
    assert len(defaults) == 1
    assert tuple(int(part) for part in defaults[0].version.split(".")) == max(versions)
    assert all(runtime.language == "python" for runtime in runtimes)


async def test_every_runtime_runs_its_own_interpreter(runner: LocalRunner) -> None:
    for runtime in runner.runtimes():
        sandbox = await start(runner, spec_for("import platform; print(platform.python_version())", runtime=runtime.id))
        chunks = [chunk async for chunk in sandbox.output()]
        assert (await sandbox.wait()).exit_code == 0
        assert b"".join(chunk.data for chunk in chunks) == runtime.version.encode() + b"\n"


async def test_cleanup_kills_leftovers_and_is_idempotent(runner: LocalRunner) -> None:
    spec = spec_for("import time\nprint('running', flush=True)\ntime.sleep(1000)")
    sandbox = await start(runner, spec)
    await read_stdout(sandbox.output(), b"running\n")
    cgroup_dirs = list(runner.cgroups.dirs(spec.name).values())
    assert cgroup_dirs
    assert all(directory.exists() for directory in cgroup_dirs)
    await runner.cleanup(spec.name)
    await runner.cleanup(spec.name)
    assert not any(directory.exists() for directory in cgroup_dirs)
    # The sandbox object did not kill itself, so to it this is a platform failure.
    result = await asyncio.wait_for(sandbox.wait(), timeout=2.0)
    assert (result.exit_code, result.error) == (None, "The sandbox ended unexpectedly.")


@pytest.mark.parametrize(
    ("constant", "value"),
    # bwrap cannot place the harness on the read-only /usr it binds.
    [("BWRAP", "/nonexistent/bwrap"), ("HARNESS_SANDBOX_DIR", "/usr/podrun")],
    ids=["no-bwrap", "bwrap-fails"],
)
async def test_a_sandbox_that_cannot_start_reports_a_platform_error(
    cold_runner: LocalRunner, monkeypatch: pytest.MonkeyPatch, constant: str, value: object
) -> None:
    runner = cold_runner
    runtime = next(runtime.id for runtime in runner.runtimes() if runtime.default)
    monkeypatch.setattr(bwrap, constant, value)
    spec = spec_for("print('never')", runtime=runtime)
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, FailedSandbox)
    assert [chunk async for chunk in sandbox.output()] == []
    assert await sandbox.wait() == SandboxResult(
        exit_code=None,
        signal=None,
        limit_exceeded=None,
        usage=SandboxUsage(),
        error="The sandbox could not be started.",
    )
    assert not any(directory.exists() for directory in runner.cgroups.dirs(spec.name).values())


async def test_an_output_flood_arrives_complete_and_in_order(runner: LocalRunner) -> None:
    stdout, stderr, result = await run(
        runner,
        """
        import sys
        for i in range(200):
            sys.stdout.buffer.write(bytes([i]) * 100_000)
            sys.stderr.write(f"{i}\\n")
        """,
    )
    assert stdout == b"".join(bytes([i]) * 100_000 for i in range(200))
    assert stderr == "".join(f"{i}\n" for i in range(200)).encode()
    assert result.exit_code == 0


@pytest.fixture
async def rlimits_only_runner() -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(Settings(jwt_secret="test-secret"))
    runner.__dict__["cgroups"] = Cgroups(None, {})
    yield runner
    await runner.close()


async def test_rlimits_alone_enforce_cpu_and_memory(rlimits_only_runner: LocalRunner) -> None:
    assert rlimits_only_runner.isolation().endswith(", rlimits only")
    _, _, cpu = await run(
        rlimits_only_runner, "while True: pass", limits=LIMITS.model_copy(update={"cpu_time_ms": 1000})
    )
    assert (cpu.signal, cpu.limit_exceeded) == (signal.SIGXCPU, LimitKind.CPU_TIME)
    stdout, _, memory = await run(
        rlimits_only_runner,
        """
        try:
            data = b"x" * (500 * 1024 * 1024)
        except MemoryError:
            print("MemoryError")
        """,
        limits=LIMITS.model_copy(update={"memory_mib": 128}),
    )
    # Without a cgroup the runner cannot tell a MemoryError from any other exit.
    assert stdout == b"MemoryError\n"
    assert (memory.exit_code, memory.limit_exceeded) == (0, None)


async def test_the_script_runs_as_main_like_a_fresh_interpreter(runner: LocalRunner) -> None:
    stdout, _, result = await run(
        runner,
        """
        import os, pickle, sys
        class Point:
            pass
        print(__name__, __file__, sys.argv, sys.path[0], os.getcwd())
        print(type(pickle.loads(pickle.dumps(Point()))).__module__, sys.stdout.write_through)
        def annotated(x: int): pass
        print(annotated.__annotations__["x"] is int)
        """,
    )
    assert result.exit_code == 0
    assert stdout.decode().splitlines() == [
        "__main__ /tmp/main.py ['/tmp/main.py'] /tmp /tmp",
        "__main__ True",
        "True",
    ]


async def test_an_uncaught_exception_shows_only_the_scripts_frames(runner: LocalRunner) -> None:
    _, stderr, result = await run(runner, "def fail():\n    raise ValueError('no')\n\nfail()\n")
    assert result.exit_code == 1
    # Newer interpreters underline the failing expression; those lines vary by version.
    lines = [line for line in stderr.decode().splitlines() if line.strip(" ~^")]
    assert lines == [
        "Traceback (most recent call last):",
        '  File "/tmp/main.py", line 4, in <module>',
        "    fail()",
        '  File "/tmp/main.py", line 2, in fail',
        "    raise ValueError('no')",
        "ValueError: no",
    ]


@pytest.mark.parametrize(
    ("script", "exit_code", "signal_number", "stderr"),
    [
        ("import sys\nsys.exit(3)", 3, None, b""),
        ("import sys\nsys.exit('bye')", 1, None, b"bye\n"),
        ("raise SystemExit", 0, None, b""),
        ("print(", 1, None, b"SyntaxError: '(' was never closed\n"),
        ("raise KeyboardInterrupt", None, signal.SIGINT, b"KeyboardInterrupt\n"),
    ],
    ids=["exit-code", "exit-message", "bare-exit", "syntax-error", "keyboard-interrupt"],
)
async def test_the_script_ends_as_the_interpreter_would_end_it(
    runner: LocalRunner, script: str, exit_code: int | None, signal_number: int | None, stderr: bytes
) -> None:
    _, err, result = await run(runner, script)
    assert (result.exit_code, result.signal) == (exit_code, signal_number)
    assert err.endswith(stderr)


async def test_threads_atexit_handlers_and_finalizers_run_before_the_end(runner: LocalRunner) -> None:
    stdout, _, result = await run(
        runner,
        """
        import atexit, threading, time
        class Noisy:
            def __del__(self):
                print("released")
        kept = Noisy()
        atexit.register(print, "atexit")
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread"))).start()
        print("main")
        """,
    )
    assert result.exit_code == 0
    assert stdout.decode().splitlines() == ["main", "thread", "atexit", "released"]


async def test_input_the_script_does_not_read_stops_being_taken_past_the_harness_bound(runner: LocalRunner) -> None:
    sandbox = await start(runner, spec_for("import sys, time\nprint('ready', flush=True)\ntime.sleep(30)\n"))
    output = sandbox.output()
    await read_stdout(output, b"ready\n")
    chunk = b"x" * 60_000
    taken = 0
    # Each write returns once the sandbox has taken the data; past the bound (and the pipes' buffers) one waits.
    while taken <= harness.MAX_PENDING_STDIN + 4 * 64 * 1024:
        try:
            await asyncio.wait_for(sandbox.write_stdin(chunk), 2)
        except TimeoutError:
            break
        taken += len(chunk)
    await sandbox.kill()
    await sandbox.wait()
    assert harness.MAX_PENDING_STDIN <= taken <= harness.MAX_PENDING_STDIN + 4 * 64 * 1024
