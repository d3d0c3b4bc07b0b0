"""`prun run`: live output, exit codes, stdout and stderr apart, stdin piped or typed, Ctrl-C and cancel."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from podrun_client import ExecutionStatus

from tests.e2e.podrun_client.conftest import User
from tests.e2e.podrun_client.prun import Prun

FIRST_THEN_WAIT = """
print('first', flush=True)
input()  # the test answers only once it has seen 'first' on prun's stdout
print('second')
"""

READ_UNTIL_EOF = """
print(input())
print(input())
try:
    input()
except EOFError:
    print('EOF')
"""

INTERACTIVE = """
import sys
name = input('name? ')
print('hello ' + name)
print('more?')
print('EOF' if sys.stdin.read() == '' else 'not EOF')
"""

SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n"


def script(tmp_path: Path, source: str, name: str = "script.py") -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


async def test_first_line_is_on_stdout_before_the_second_is_printed(prun: Prun, tmp_path: Path) -> None:
    running = await prun.start("run", script(tmp_path, FIRST_THEN_WAIT), open_stdin=True)
    await running.wait_for_stdout("first\n")
    # The script is blocked in input() until now, so 'second' cannot have been printed yet.
    assert running.stdout == "first\n"
    await running.write("go\n", close=True)
    assert await running.finish() == 0
    assert running.stdout == "first\nsecond\n"
    assert running.stderr == ""  # not a terminal: no progress


@pytest.mark.parametrize(
    ("source", "options", "exit_code", "message"),
    [
        pytest.param("print('ok')\n", [], 0, "", id="success"),
        pytest.param("import sys\nsys.exit(3)\n", [], 3, "", id="exit-code"),
        pytest.param(
            "import os\nos.kill(os.getpid(), 9)\n", [], 137, "prun: the script was killed by signal 9\n", id="signal"
        ),
        pytest.param(
            "import time\ntime.sleep(10)\n",
            ["--wall", "1s"],
            124,
            "prun: timed out: the wall-time limit of 1s was exceeded\n",
            id="wall-time",
        ),
        pytest.param(
            "while True:\n    pass\n",
            ["--cpu", "500ms", "--wall", "10s"],
            124,
            "prun: timed out: the CPU-time limit of 500ms was exceeded\n",
            id="cpu-time",
        ),
        pytest.param(
            "print('x' * 5000)\n",
            ["--output", "1K"],
            125,
            "prun: the output limit of 1K was exceeded\n",
            id="output-limit",
        ),
    ],
)
async def test_exit_status_tells_how_the_run_ended(
    prun: Prun, tmp_path: Path, source: str, options: list[str], exit_code: int, message: str
) -> None:
    ran = await prun.run("run", *options, script(tmp_path, source))
    assert (ran.process.returncode, ran.stderr) == (exit_code, message)


async def test_a_failing_script_exits_1_with_its_traceback_on_stderr(prun: Prun, tmp_path: Path) -> None:
    ran = await prun.run("run", script(tmp_path, "print('before')\nraise ValueError('boom')\n"))
    assert ran.process.returncode == 1
    assert ran.stdout == "before\n"
    assert ran.stderr.startswith("Traceback (most recent call last):\n")
    assert ran.stderr.endswith("ValueError: boom\n")


async def test_stdout_and_stderr_stay_apart_and_partial_lines_join(prun: Prun, tmp_path: Path) -> None:
    source = (
        "import sys, time\n"
        "print('out 1')\n"
        "print('err 1', file=sys.stderr)\n"
        "sys.stdout.write('Name: '); sys.stdout.flush()\n"
        "time.sleep(0.3)\n"  # longer than the 100 ms after which the server sends a partial line
        "print('done')\n"
        "sys.stderr.write('no newline at the end')\n"
    )
    ran = await prun.run("run", script(tmp_path, source))
    assert ran.process.returncode == 0
    assert ran.stdout == "out 1\nName: done\n"
    assert ran.stderr == "err 1\nno newline at the end"


async def test_piped_stdin_reaches_the_script_then_eof(prun: Prun, tmp_path: Path) -> None:
    ran = await prun.run("run", script(tmp_path, READ_UNTIL_EOF), stdin="a\nb\n")
    assert (ran.process.returncode, ran.stdout) == (0, "a\nb\nEOF\n")


async def test_large_piped_stdin_arrives_whole(prun: Prun, tmp_path: Path) -> None:
    # Several sendInput calls (prun sends at most 16 KiB at a time), with multi-byte characters split between them.
    data = ("žluťoučký kůň " * 20_000 + "\n") * 2
    source = (
        "import sys, hashlib\ndata = sys.stdin.read()\nprint(len(data), hashlib.sha256(data.encode()).hexdigest())\n"
    )
    ran = await prun.run("run", "--wall", "20s", script(tmp_path, source), stdin=data)
    assert ran.process.returncode == 0, ran.stderr
    assert ran.stdout == f"{len(data)} {hashlib.sha256(data.encode()).hexdigest()}\n"


async def test_stdin_file_is_given_at_submission(prun: Prun, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("x\ny\n")
    ran = await prun.run("run", "--stdin", str(tmp_path / "input.txt"), script(tmp_path, READ_UNTIL_EOF))
    assert (ran.process.returncode, ran.stdout) == (0, "x\ny\nEOF\n")


async def test_an_interactive_prompt_is_answered_on_a_terminal(prun: Prun, tmp_path: Path) -> None:
    terminal = prun.terminal("run", script(tmp_path, INTERACTIVE))
    await terminal.wait_for("name? ")
    terminal.type(b"world\n")
    await terminal.wait_for("more?")
    terminal.type(b"\x04")  # Ctrl-D: end of input
    assert await terminal.finish() == 0
    # Progress shows while the run waits, and is cleared (\r, erase line) before the output.
    assert "prun: queued " in terminal.text
    shown = terminal.text.rsplit("\x1b[2K", 1)[1]
    assert shown == "name? world\nhello world\nmore?\nEOF\n"


async def test_ctrl_c_cancels_the_run_on_the_server(prun: Prun, user: User, tmp_path: Path) -> None:
    terminal = prun.terminal("run", script(tmp_path, SLEEPER))
    await terminal.wait_for("ready")
    terminal.type(b"\x03")
    assert await terminal.finish() == 130
    assert terminal.text.endswith("prun: cancelling the run (Ctrl-C again to stop waiting)\nprun: cancelled\n")
    [edge] = (await user.client.executions(first=5)).executions.edges
    assert edge.node.status is ExecutionStatus.CANCELLED


async def test_prun_cancel_ends_a_prun_run_with_130(prun: Prun, user: User, tmp_path: Path) -> None:
    running = await prun.start("run", script(tmp_path, SLEEPER))
    await running.wait_for_stdout("ready\n")
    [edge] = (await user.client.executions(first=5)).executions.edges
    cancelled = await prun.run("cancel", edge.node.id)
    assert cancelled.process.returncode == 0
    assert cancelled.stdout.startswith(f"{edge.node.id} ")
    assert await running.finish() == 130
    assert (running.stdout, running.stderr) == ("ready\n", "prun: cancelled\n")


async def test_json_output_is_the_apis_data_line_by_line(prun: Prun, tmp_path: Path) -> None:
    ran = await prun.run("run", "--json", script(tmp_path, "import sys\nprint('out')\nsys.exit(4)\n"))
    assert ran.process.returncode == 4
    [submitted, *events] = ran.json_lines()
    assert submitted["submitExecution"]["status"] == "QUEUED"
    kinds = [(e["executionEvents"]["__typename"], e["executionEvents"].get("status")) for e in events]
    assert kinds == [
        ("StatusChange", "STARTING"),
        ("StatusChange", "RUNNING"),
        ("OutputChunk", None),
        ("StatusChange", "FAILED"),
    ]
    [line] = events[2]["executionEvents"]["lines"]
    assert (line["seq"], line["stream"], line["text"], line["partial"]) == (3, "STDOUT", "out", False)
    assert events[-1]["executionEvents"]["execution"]["exitCode"] == 4


async def test_a_request_the_server_refuses_exits_2_with_its_code(prun: Prun, tmp_path: Path) -> None:
    ran = await prun.run("run", "--runtime", "cobol-85", script(tmp_path, "print('never')\n"))
    assert ran.process.returncode == 2
    assert ran.stderr.startswith("prun: BAD_USER_INPUT: ")


async def test_artifacts_are_saved_in_the_folder_asked_for(prun: Prun, tmp_path: Path) -> None:
    source = (
        "print('writing')\n"
        "open('/tmp/outputs/table.csv', 'w').write('a,b\\n1,2\\n')\n"
        "open('/tmp/outputs/notes.txt', 'w').write('new')\n"
    )
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("kept")  # an existing file is never overwritten
    running = await prun.start("run", script(tmp_path, source), "--artifacts", str(folder))
    assert await running.finish() == 0
    assert (running.stdout, running.stderr) == ("writing\n", "")
    assert {path.name: path.read_text() for path in folder.iterdir()} == {
        "table.csv": "a,b\n1,2\n",
        "notes.txt": "kept",
        "notes-1.txt": "new",
    }
