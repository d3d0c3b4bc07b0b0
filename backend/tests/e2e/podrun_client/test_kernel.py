"""`prun kernel`: piped code cut into cells, the console on a terminal (Ctrl-C, Ctrl-D, --attach), `prun kernels`."""

from __future__ import annotations

import asyncio
import json
import re

from podrun_client import KernelStatus, StartKernelInput
from podrun_client.generated import KernelSummary

from tests.e2e.podrun_client.conftest import User
from tests.e2e.podrun_client.prun import Prun, Terminal

PIPED = """
x = 41

def answer():
    return x + 1

print(answer())
"""


async def newest_kernel(user: User) -> tuple[str, KernelStatus]:
    [edge] = (await user.client.kernels(first=1)).kernels.edges
    return edge.node.id, edge.node.status


async def until_kernel(user: User, kernel_id: str, *statuses: KernelStatus) -> KernelSummary:
    """Wait for the kernel to be in one of `statuses`; the kernel then."""
    deadline = asyncio.get_running_loop().time() + 20
    while (found := (await user.client.kernel(id=kernel_id)).kernel) is None or found.status not in statuses:
        assert asyncio.get_running_loop().time() < deadline, f"kernel {found}, wanted {statuses}"
        await asyncio.sleep(0.05)
    return found


async def until_stopped(user: User, kernel_id: str) -> str | None:
    """Wait for the kernel to end; why it ended."""
    return (await until_kernel(user, kernel_id, KernelStatus.STOPPED, KernelStatus.DEAD)).error


async def prompt(terminal: Terminal, seen: int) -> int:
    """Wait for the next `>>> ` after the first `seen` bytes of the screen; how many bytes it shows now."""
    await terminal.wait_for(">>> ", beyond=seen)
    return len(terminal.screen)


async def test_piped_code_runs_statement_by_statement_and_stops_the_kernel(prun: Prun, user: User) -> None:
    ran = await prun.run("kernel", stdin=PIPED)
    assert (ran.process.returncode, ran.stdout, ran.stderr) == (0, "42\n", "")
    assert (await newest_kernel(user))[1] is KernelStatus.STOPPED
    # One cell per top-level statement, the function's definition whole.
    assert len((await user.client.executions(first=10)).executions.edges) == 3


async def test_piped_code_stops_at_the_first_failing_cell_with_its_exit_code(prun: Prun, user: User) -> None:
    ran = await prun.run("kernel", "--wall", "1s", stdin="print('a')\nimport time; time.sleep(5)\nprint('b')\n")
    assert ran.process.returncode == 124
    assert ran.stdout == "a\n"
    assert ran.stderr.endswith(
        "KeyboardInterrupt\nprun: timed out: the wall-time limit of 1s was exceeded\n"
        "prun: stopped at a failing cell; 1 more not sent\n"
    )
    assert (await newest_kernel(user))[1] is KernelStatus.STOPPED


async def test_piped_json_is_the_apis_data(prun: Prun) -> None:
    ran = await prun.run("kernel", "--json", stdin="1 + 1\n")
    assert ran.process.returncode == 0, ran.stderr
    objects = ran.json_lines()
    assert list(objects[0]) == ["startKernel"]
    assert list(objects[1]) == ["runInKernel"]
    assert objects[1]["runInKernel"]["status"] == "QUEUED"
    events = [o["executionEvents"] for o in objects[2:-1]]
    assert [line["text"] for event in events for line in event.get("lines", [])] == ["2"]
    assert objects[-1]["stopKernel"]["status"] == "STOPPED"
    assert objects[-1]["stopKernel"]["id"] == objects[0]["startKernel"]["id"]


async def test_the_console_interrupts_a_statement_keeps_the_state_and_ctrl_d_stops_the_kernel(
    prun: Prun, user: User
) -> None:
    terminal = prun.terminal("kernel")
    seen = await prompt(terminal, 0)
    assert re.search(r"prun: kernel \S+ \(\S+\) ready", terminal.text)
    terminal.type(b"x = 41\n")
    seen = await prompt(terminal, seen)
    terminal.type(b"for i in range(2):\n")
    await terminal.wait_for("... ", beyond=seen)
    terminal.type(b"    print('i', i)\n\n")
    seen = await prompt(terminal, seen)
    assert "i 0\ni 1\n" in terminal.text
    terminal.type(b"while True: pass\n\n")  # a compound statement ends with an empty line, as in Python
    kernel_id, _ = await newest_kernel(user)
    await until_kernel(user, kernel_id, KernelStatus.BUSY)  # the cell runs: Ctrl-C now interrupts it
    terminal.type(b"\x03")
    seen = await prompt(terminal, seen)
    assert "KeyboardInterrupt" in terminal.text
    terminal.type(b"print(x)\n")
    await terminal.wait_for("41\r\n", beyond=seen)
    seen = await prompt(terminal, seen)
    terminal.type(b"(\n")
    await terminal.wait_for("... ", beyond=seen)
    terminal.type(b"unfinished")
    await terminal.wait_for("unfinished", beyond=seen)
    terminal.type(b"\x03")  # at the prompt, Ctrl-C drops the statement typed so far: the next prompt is >>>
    seen = await prompt(terminal, seen)
    terminal.type(b"\x04")
    assert await terminal.finish() == 0
    assert terminal.text.endswith("41\n>>> (\n... unfinished\nKeyboardInterrupt\n>>> \n")
    assert await until_stopped(user, kernel_id) == "stopped by its owner"


async def test_attach_leaves_the_kernel_running_on_ctrl_d(prun: Prun, user: User) -> None:
    started = (await user.client.start_kernel(input=StartKernelInput())).start_kernel
    try:
        piped = await prun.run("kernel", "--attach", started.id, stdin="y = 'kept'\n")
        assert (piped.process.returncode, piped.stderr) == (0, "")
        terminal = prun.terminal("kernel", "--attach", started.id)
        seen = await prompt(terminal, 0)
        assert "Ctrl-D detaches" in terminal.text
        terminal.type(b"y\n")
        await terminal.wait_for("'kept'\r\n", beyond=seen)
        await prompt(terminal, seen)
        terminal.type(b"\x04")
        assert await terminal.finish() == 0
        assert f"detached: kernel {started.id} keeps running" in terminal.text
        found = (await user.client.kernel(id=started.id)).kernel
        assert found is not None
        assert found.status is KernelStatus.IDLE
        listed = await prun.run("kernels")
        header, row = listed.stdout.splitlines()[:2]
        assert header.split()[:3] == ["ID", "STATUS", "RUNTIME"]
        assert row.split()[:2] == [started.id, "IDLE"]
        stopped = await prun.run("kernel-stop", "--json", started.id)
        assert json.loads(stopped.stdout)["stopKernel"]["status"] == "STOPPED"
    finally:
        await user.client.stop_kernel(id=started.id)


async def test_a_kernel_that_stops_under_the_console_is_reported(prun: Prun, user: User) -> None:
    terminal = prun.terminal("kernel", "--idle-timeout", "1s")
    await prompt(terminal, 0)
    kernel_id, _ = await newest_kernel(user)
    assert await until_stopped(user, kernel_id) == "stopped after 1 s without a cell"
    terminal.type(b"print(1)\n")
    assert await terminal.finish() == 126
    assert terminal.text.endswith(f"prun: kernel {kernel_id} stopped: stopped after 1 s without a cell\n")


async def test_attaching_to_an_unknown_kernel_is_refused(prun: Prun) -> None:
    ran = await prun.run("kernel", "--attach", "00000000-0000-0000-0000-000000000000", stdin="")
    assert ran.process.returncode == 2
    assert ran.stderr.startswith("prun: NOT_FOUND")
