"""A whole run on a worker against a fake sandbox: its statuses, its log, and no session held while it waits."""

from __future__ import annotations

import asyncio
import uuid

from podrun.container import Container
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.models import Execution
from podrun.executions.outcomes import SHUTDOWN_ERROR
from podrun.executions.run import run_execution
from podrun.runners.base import ArtifactOutput, OutputBytes, SandboxSpec
from podrun.streams.control import Cancel
from podrun.streams.events import ArtifactEvent, LineEvent, StatusEvent, unfold
from podrun.streams.log import LogWriter
from tests.unit.executions.fakes import FakeRunner, FakeSandbox, Step
from tests.unit.executions.rows import row, stored_run


def worker() -> str:
    return f"test-worker-{uuid.uuid4().hex}"


async def run(container: Container, execution: Execution, runner: FakeRunner, reattach_from: str | None = None) -> str:
    holder = worker()
    await container.heartbeats.beat(holder, 120)  # keeps other tests' watchdogs away from the run
    return await run_execution(
        container.lifecycle,
        runner,
        container.heartbeats,
        worker_id=holder,
        execution_id=execution.id,
        reattach_from=reattach_from,
    )


async def logged(container: Container, execution: Execution) -> list[str]:
    """The run's log in Redis, one word per event: a status, `line:<text>` or `artifact:<name>`."""
    words: list[str] = []
    for event in unfold(await container.lifecycle.event_log(execution.id).read_all()):
        if isinstance(event, StatusEvent):
            words.append(event.status.value)
        elif isinstance(event, LineEvent):
            words.append(f"line:{event.text}")
        elif isinstance(event, ArtifactEvent):
            words.append(f"artifact:{event.name}")
    return words


async def test_a_run_ends_succeeded_with_its_output_and_no_connection_held_while_its_sandbox_starts(
    container: Container,
) -> None:
    held_at_start: list[int] = []

    async def look(spec: SandboxSpec) -> None:
        held_at_start.append(container.db.get_engine().pool.checkedout())  # type: ignore[attr-defined]

    steps: list[Step] = [OutputBytes(Stream.STDOUT, b"one\n"), ArtifactOutput("a.png", "image/png", b"png", 3)]
    runner = FakeRunner(FakeSandbox(steps), on_start=look)
    execution = await stored_run(container)
    assert await run(container, execution, runner) == "SUCCEEDED"

    assert held_at_start == [0]
    assert runner.started[0].script == "print('hi')"
    assert not runner.started[0].resume
    assert await logged(container, execution) == ["STARTING", "RUNNING", "line:one", "artifact:a.png", "SUCCEEDED"]
    ended = await row(container, execution)
    assert (ended.status, ended.exit_code, ended.attempts) == (ExecutionStatus.SUCCEEDED, 0, 1)
    async with container.executions() as executions:
        assert await executions.repository.output(execution.id, Stream.STDOUT) == "one\n"
        produced = await executions.artifacts.of_executions([execution.id])
        assert [artifact.name for artifact in produced[execution.id]] == ["a.png"]

    # arq delivers the job again (a retry): the run is not run twice.
    assert await run(container, execution, runner) == "SUCCEEDED"
    assert len(runner.started) == 1


async def test_a_cancel_sent_while_the_sandbox_starts_ends_the_run_cancelled(container: Container) -> None:
    execution = await stored_run(container)
    sandbox = FakeSandbox([])

    async def cancelled_meanwhile(spec: SandboxSpec) -> None:
        await container.lifecycle.control(execution.id).send(Cancel())

    async def until_killed() -> None:
        await asyncio.wait_for(sandbox.killed.wait(), 5)

    sandbox.steps = [until_killed]
    assert await run(container, execution, FakeRunner(sandbox, on_start=cancelled_meanwhile)) == "CANCELLED"
    assert await logged(container, execution) == ["STARTING", "RUNNING", "CANCELLED"]


async def test_a_run_taken_over_from_a_dead_worker_logs_only_what_was_not_logged(container: Container) -> None:
    dead = worker()
    await container.heartbeats.beat(dead, 120)
    execution = await stored_run(container, ExecutionStatus.RUNNING, worker_id=dead)
    writer = LogWriter(container.lifecycle.event_log(execution.id), [])
    for status in (ExecutionStatus.STARTING, ExecutionStatus.RUNNING):
        await writer.status(writer.status_event(status))
    await writer.lines([(Stream.STDOUT, ["one"], False)])

    runner = FakeRunner(FakeSandbox([OutputBytes(Stream.STDOUT, b"one\ntwo\n")]))
    assert await run(container, execution, runner, reattach_from=dead) == "SUCCEEDED"
    assert runner.started[0].resume
    assert await logged(container, execution) == ["STARTING", "RUNNING", "line:one", "line:two", "SUCCEEDED"]
    async with container.executions() as executions:
        assert await executions.repository.output(execution.id, Stream.STDOUT) == "one\ntwo\n"


async def test_a_worker_shutting_down_mid_run_ends_it_as_error(container: Container) -> None:
    execution = await stored_run(container)
    forever = asyncio.Event()
    runner = FakeRunner(FakeSandbox([OutputBytes(Stream.STDOUT, b"partial"), forever.wait]))
    job = asyncio.create_task(run(container, execution, runner))
    # The partial line (seq 3, after STARTING and RUNNING) is logged once the script has paused after it.
    assert await container.redis.xread({container.keys.events(execution.id): "0-2"}, count=1, block=5000)
    assert await logged(container, execution) == ["STARTING", "RUNNING", "line:partial"]
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)
    ended = await row(container, execution)
    assert (ended.status, ended.error) == (ExecutionStatus.ERROR, SHUTDOWN_ERROR)
    assert runner.sandbox.killed.is_set()
    assert (await logged(container, execution))[-1] == "ERROR"
