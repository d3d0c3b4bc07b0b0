"""`prun runs`, `prun cancel` and `prun delete`, and how prun reports a server it cannot reach."""

from __future__ import annotations

import json
from pathlib import Path

from podrun_client import SubmitExecutionInput

from tests.e2e.podrun_client.conftest import User
from tests.e2e.podrun_client.prun import Prun
from tests.processes import free_port


async def finished_run(user: User, source: str) -> str:
    submitted = await user.client.submit_execution(input=SubmitExecutionInput(script=source, stdin=""))
    async for _ in user.client.follow(submitted.submit_execution.id):
        pass
    return submitted.submit_execution.id


async def test_runs_lists_the_newest_first(prun: Prun, user: User) -> None:
    succeeded = await finished_run(user, "print('ok')\n")
    failed = await finished_run(user, "import sys\nsys.exit(7)\n")
    listed = await prun.run("runs")
    assert listed.process.returncode == 0
    header, *rows = [line.split() for line in listed.stdout.splitlines()]
    assert header == ["ID", "STATUS", "EXIT", "CREATED", "RUNTIME"]
    assert [row[:3] for row in rows] == [[failed, "FAILED", "7"], [succeeded, "SUCCEEDED", "0"]]


async def test_runs_json_and_status_filter(prun: Prun, user: User) -> None:
    await finished_run(user, "print('ok')\n")
    failed = await finished_run(user, "import sys\nsys.exit(7)\n")
    listed = await prun.run("runs", "--json", "--status", "FAILED")
    assert listed.process.returncode == 0
    [edge] = json.loads(listed.stdout)["executions"]["edges"]
    assert (edge["node"]["id"], edge["node"]["status"], edge["node"]["exitCode"]) == (failed, "FAILED", 7)


async def test_cancelling_a_finished_run_is_refused_with_exit_2(prun: Prun, user: User) -> None:
    execution_id = await finished_run(user, "print('done')\n")
    cancelled = await prun.run("cancel", execution_id)
    assert cancelled.process.returncode == 2
    assert cancelled.stderr == "prun: CONFLICT: execution already ended with status SUCCEEDED\n"


async def test_cancel_json(prun: Prun, user: User, tmp_path: Path) -> None:
    path = tmp_path / "sleep.py"
    path.write_text("import time\nprint('ready', flush=True)\ntime.sleep(30)\n")
    running = await prun.start("run", str(path))
    await running.wait_for_stdout("ready\n")
    [edge] = (await user.client.executions(first=1)).executions.edges
    cancelled = await prun.run("cancel", "--json", edge.node.id)
    assert cancelled.process.returncode == 0
    assert json.loads(cancelled.stdout)["cancelExecution"]["id"] == edge.node.id
    assert await running.finish() == 130


async def test_delete_removes_a_run_and_a_second_delete_is_not_found(prun: Prun, user: User) -> None:
    execution_id = await finished_run(user, "print('done')\n")
    deleted = await prun.run("delete", "--json", execution_id)
    assert deleted.process.returncode == 0
    assert json.loads(deleted.stdout) == {"deleteExecution": execution_id}
    assert (await user.client.executions(first=5)).executions.edges == []
    again = await prun.run("delete", execution_id)
    assert again.process.returncode == 2
    assert again.stderr == "prun: NOT_FOUND: execution not found\n"


async def test_an_unreachable_server_exits_69(prun: Prun) -> None:
    stored = json.loads(prun.credentials.read_text())
    prun.credentials.write_text(json.dumps({**stored, "url": f"http://127.0.0.1:{free_port()}"}))
    for command in (["runs"], ["watch", "01a22a00-0000-7000-8000-000000000000"], ["cancel", "x"]):
        ran = await prun.run(*command)
        assert ran.process.returncode == 69, command
        assert ran.stderr.startswith("prun: cannot reach the server: "), ran.stderr
