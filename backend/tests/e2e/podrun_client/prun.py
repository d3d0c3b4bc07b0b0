"""Running `prun` as a person would: in a pipeline (`Prun.start`) or on a terminal (`Prun.terminal`).

Both read the child's output as it arrives, so a test can act on a line while prun is still running.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import subprocess
import termios
from pathlib import Path
from typing import Any

TIMEOUT = 30.0


class Prun:
    """The `prun` console script with its own config directory (and so its own sign-in)."""

    def __init__(self, executable: Path, config_home: Path) -> None:
        self.executable = executable
        self.config_home = config_home

    @property
    def credentials(self) -> Path:
        return self.config_home / "podrun" / "credentials.json"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "XDG_CONFIG_HOME": str(self.config_home)}

    async def start(self, *args: str, stdin: str | bytes | None = None, open_stdin: bool = False) -> Piped:
        """`prun args` with pipes: `stdin` is written and closed; `open_stdin` keeps it open; else /dev/null."""
        process = await asyncio.create_subprocess_exec(
            self.executable,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None or open_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        piped = Piped(process)
        if stdin is not None and process.stdin is not None:
            process.stdin.write(stdin.encode() if isinstance(stdin, str) else stdin)
            await process.stdin.drain()
            process.stdin.close()
        return piped

    async def run(self, *args: str, stdin: str | bytes | None = None) -> Piped:
        """`prun args` to the end."""
        piped = await self.start(*args, stdin=stdin)
        await piped.finish()
        return piped

    def terminal(self, *args: str) -> Terminal:
        """`prun args` with a pseudo-terminal as its controlling terminal, stdin, stdout and stderr."""
        return Terminal([str(self.executable), *args], self.env)


class Piped:
    """A prun process whose stdout and stderr are pipes, collected as they arrive."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out = b""
        self.err = b""
        self._arrived = asyncio.Event()
        self._readers = [asyncio.create_task(self._collect("out")), asyncio.create_task(self._collect("err"))]

    @property
    def stdout(self) -> str:
        return self.out.decode()

    @property
    def stderr(self) -> str:
        return self.err.decode()

    def json_lines(self) -> list[dict[str, Any]]:
        """stdout of `--json` run or watch: one object per line."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    async def wait_for_stdout(self, text: str = "", timeout: float = TIMEOUT, *, beyond: int = 0) -> None:
        """Until `text` has appeared on stdout after its first `beyond` bytes (no text: until anything has)."""
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                if len(self.out) > beyond and text.encode() in self.out[beyond:]:
                    return
                if self.process.returncode is not None and all(reader.done() for reader in self._readers):
                    raise AssertionError(f"prun ended without printing {text!r}: {self.out!r} {self.err!r}")
                await self._arrived.wait()

    async def write(self, data: str, *, close: bool = False) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data.encode())
        await self.process.stdin.drain()
        if close:
            self.process.stdin.close()

    def interrupt(self) -> None:
        self.process.send_signal(2)

    async def finish(self, timeout: float = TIMEOUT) -> int:
        """Wait for prun to exit and its output to be read; its exit status."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*self._readers)
            return await self.process.wait()

    async def _collect(self, name: str) -> None:
        stream = self.process.stdout if name == "out" else self.process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            setattr(self, name, getattr(self, name) + chunk)
            self._arrived.set()
        self._arrived.set()


class Terminal:
    """A process on a pseudo-terminal; `screen` is everything it wrote, as a terminal received it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_make_controlling_terminal,  # noqa: PLW1509 - needed for Ctrl-C to reach prun
        )
        os.close(slave)
        self.screen = b""
        self._arrived = asyncio.Event()
        self._closed = False
        asyncio.get_running_loop().add_reader(self.master, self._read)

    @property
    def text(self) -> str:
        """What was shown, with the terminal's CR LF line ends as LF."""
        return self.screen.decode().replace("\r\n", "\n")

    def type(self, keys: bytes) -> None:
        """Keys as typed: b"world\\n", b"\\x03" (Ctrl-C), b"\\x04" (Ctrl-D)."""
        os.write(self.master, keys)

    async def wait_for(self, text: str, timeout: float = TIMEOUT, *, beyond: int = 0) -> None:
        """Until `text` has been shown after the first `beyond` bytes of the screen."""
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                if text.encode() in self.screen[beyond:]:
                    return
                if self._closed:
                    raise AssertionError(f"the terminal closed without showing {text!r}: {self.screen!r}")
                await self._arrived.wait()

    async def finish(self, timeout: float = TIMEOUT) -> int:
        """Wait for the process to exit and the terminal to be drained; its exit status."""
        async with asyncio.timeout(timeout):
            code = await asyncio.to_thread(self.process.wait)
            while not self._closed:
                self._arrived.clear()
                await self._arrived.wait()
        return code

    def _read(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal has gone
            chunk = b""
        if chunk:
            self.screen += chunk
        else:
            self._closed = True
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
        self._arrived.set()


def _make_controlling_terminal() -> None:
    # Runs in the child after setsid() and after stdin became the terminal's slave side.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
