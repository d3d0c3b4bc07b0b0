"""The baselines: a script run by the bare interpreter, and by the bare sandbox command.

The bare sandbox command is the bubblewrap command line the local runner builds (the same options,
seccomp filter, environment and host uid), started directly with `python -I -c SCRIPT` in place of the
harness: no worker, queue, harness protocol, cgroup or database. What Podrun adds on top of it is the
platform's cost.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from bench.report import Failed
from podrun.runners.interpreters import Interpreter
from podrun.runners.local import LocalRunner, bwrap
from podrun.settings import Settings


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds from starting the process to its first output byte, and to its exit."""

    first: float
    done: float


class BareCommands:
    """Starts the default runtime's interpreter bare, or inside the local runner's sandbox."""

    def __init__(self, settings: Settings) -> None:
        self.runner = LocalRunner(settings)
        runtime = next(runtime for runtime in self.runner.runtimes() if runtime.default)
        self.interpreter: Interpreter = self.runner.interpreters[runtime.id]
        self.layout = bwrap.layout(self.interpreter)
        self.seccomp = self.runner.seccomp_filter

    async def interpreter_run(self, script: str, expected: bytes | None = b"hi\n") -> Timing:
        """`python3 -I -c SCRIPT` as a plain subprocess."""
        return await _timed([str(self.interpreter.executable), "-I", "-c", script], {}, [], expected)

    async def sandbox_run(self, script: str, expected: bytes | None = b"hi\n") -> Timing:
        """The runner's bwrap command line with `python -I -c SCRIPT` in the sandbox."""
        user = self.runner.users.acquire()
        seccomp_fd = _memory_file(self.seccomp)
        options = [*bwrap.options(self.runner.settings.sandbox, self.layout, []), "--seccomp", str(seccomp_fd)]
        options_fd = _memory_file(b"".join(option.encode() + b"\0" for option in options))
        sandboxed = [bwrap.BWRAP, "--args", str(options_fd), self.layout.executable, "-I", "-c", script]
        command = [*user.command_prefix(), *sandboxed]
        try:
            return await _timed(command, {"env": self.layout.env}, [seccomp_fd, options_fd], expected)
        finally:
            self.runner.users.release(user)


async def _timed(command: list[str], options: dict[str, object], fds: list[int], expected: bytes | None) -> Timing:
    started = time.perf_counter()
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=fds,
            start_new_session=True,
            **options,  # type: ignore[arg-type]
        )
    finally:
        for fd in fds:
            os.close(fd)
    assert process.stdout is not None
    output = await process.stdout.read(1)
    first = time.perf_counter() - started
    while chunk := await process.stdout.read(1 << 16):
        if expected is not None:
            output += chunk
    await process.wait()
    done = time.perf_counter() - started
    if expected is not None and (output != expected or process.returncode != 0):
        raise Failed(f"{command[0]} gave {output[:200]!r}, exit {process.returncode}")
    return Timing(first, done)


def _memory_file(data: bytes) -> int:
    """An inheritable in-memory file holding `data`, positioned at its start (bwrap reads its options so)."""
    fd = os.memfd_create("bench", 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
