"""`prun watch`: replaying a finished run, and following a live one across dropped connections."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from podrun_client import LimitsInput, SubmitExecutionInput

from tests.e2e.podrun_client.conftest import Deployment, User
from tests.e2e.podrun_client.proxy import CuttingProxy
from tests.e2e.podrun_client.prun import Piped, Prun

COUNT_SLOWLY = "import time\nfor i in range({n}):\n    print(i, flush=True)\n    time.sleep(0.1)\n"


async def submit(user: User, source: str) -> str:
    limits = LimitsInput(wallTimeMs=30_000)
    submitted = await user.client.submit_execution(input=SubmitExecutionInput(script=source, stdin="", limits=limits))
    return submitted.submit_execution.id


async def finished(user: User, execution_id: str) -> None:
    async for _ in user.client.follow(execution_id):
        pass


async def test_watch_replays_a_finished_run_with_its_exit_code(prun: Prun, user: User) -> None:
    execution_id = await submit(user, "import sys\nprint('one')\nprint('two', file=sys.stderr)\nsys.exit(5)\n")
    await finished(user, execution_id)
    watched = await prun.run("watch", execution_id)
    assert (watched.process.returncode, watched.stdout, watched.stderr) == (5, "one\n", "two\n")


@pytest.mark.parametrize(("after", "shown"), [(4, "2\n3\n4\n"), (8, ""), (20, "")])
async def test_watch_after_seq_shows_only_later_events(prun: Prun, user: User, after: int, shown: str) -> None:
    execution_id = await submit(user, COUNT_SLOWLY.format(n=5))
    await finished(user, execution_id)
    # seq 1 and 2 are STARTING and RUNNING, lines 0..4 are seq 3..7 and SUCCEEDED is seq 8.
    watched = await prun.run("watch", execution_id, "--after", str(after))
    assert (watched.process.returncode, watched.stdout) == (0, shown)


async def test_watch_of_an_unknown_run_exits_2(prun: Prun) -> None:
    watched = await prun.run("watch", "01a22a00-0000-7000-8000-000000000000")
    assert watched.process.returncode == 2
    assert watched.stderr == "prun: NOT_FOUND: execution not found\n"


async def cut_twice(proxy: CuttingProxy, deployment: Deployment, watching: Piped) -> None:
    """The network drops twice under a live subscription."""
    await watching.wait_for_stdout('"text": "5"')
    connections = proxy.connections
    assert proxy.cut() >= 1
    # Then once prun is back: output that arrives after it reconnected came over the new connection.
    await proxy.wait_for_connection(beyond=connections)
    await watching.wait_for_stdout(beyond=len(watching.out))
    assert proxy.cut() >= 1


async def restart_the_api(proxy: CuttingProxy, deployment: Deployment, watching: Piped) -> None:
    """The API process dies (kill -9) and comes back on the same port a few seconds later."""
    await watching.wait_for_stdout('"text": "5"')
    await asyncio.to_thread(deployment.restart_api)


@pytest.mark.parametrize("drop", [cut_twice, restart_the_api])
async def test_watch_resumes_after_a_dropped_connection_without_gap_or_duplicate(
    prun: Prun,
    user: User,
    deployment: Deployment,
    tmp_path: Path,
    drop: Callable[[CuttingProxy, Deployment, Piped], Awaitable[None]],
) -> None:
    # Long enough (12 s) that the run is still going at the second cut even on a busy machine.
    lines = 120
    execution_id = await submit(user, COUNT_SLOWLY.format(n=lines))
    async with CuttingProxy(int(deployment.base_url.rsplit(":", 1)[1])) as proxy:
        # prun talks to the API through the proxy only.
        stored = json.loads(prun.credentials.read_text())
        prun.credentials.write_text(json.dumps({**stored, "url": proxy.url}))
        watching = await prun.start("watch", "--json", execution_id)
        await drop(proxy, deployment, watching)
        assert await watching.finish() == 0, watching.stderr
    events = [line["executionEvents"] for line in watching.json_lines()]
    # Every event once, in order: STARTING, RUNNING, the lines, SUCCEEDED.
    seqs = [[line["seq"] for line in event["lines"]] if "lines" in event else [event["seq"]] for event in events]
    assert [seq for event_seqs in seqs for seq in event_seqs] == list(range(1, lines + 4))
    assert [line["text"] for event in events for line in event.get("lines", [])] == [str(i) for i in range(lines)]
    assert events[-1]["status"] == "SUCCEEDED"
    assert proxy.connections > 2  # it did reconnect
