"""The worker's steps on a run's row, each in its own transaction: compare-and-set, so each wins once."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from podrun.container import Container
from podrun.core.output import Stream
from podrun.core.statuses import STARTED, ExecutionStatus
from podrun.executions import archive
from podrun.executions.outcomes import Outcome
from podrun.runners.base import ArtifactOutput, InputFile
from podrun.streams.events import ArtifactEvent, Entry, LineEvent, StatusEvent, batch_lines, joined_output
from podrun.streams.log import LogWriter
from tests.unit.executions.rows import row, stored_run


def worker() -> str:
    return f"test-worker-{uuid.uuid4().hex}"


async def test_a_run_is_claimed_once(container: Container) -> None:
    execution = await stored_run(container)
    first, second = worker(), worker()
    answered = await container.lifecycle.claim(execution.id, first)
    assert await container.lifecycle.claim(execution.id, second) is None
    claimed = await row(container, execution)
    assert (claimed.status, claimed.worker_id, claimed.attempts) == (ExecutionStatus.STARTING, first, 1)
    # The claim's answer is the row as claimed: what the run needs, without another query.
    assert answered is not None
    assert (answered.id, answered.status, answered.worker_id, answered.attempts, answered.files) == (
        execution.id,
        ExecutionStatus.STARTING,
        first,
        1,
        None,
    )


async def test_a_run_is_taken_over_from_its_dead_holder_once(container: Container) -> None:
    dead = worker()
    await container.heartbeats.beat(dead, 120)  # keeps other tests' watchdogs away from the run
    execution = await stored_run(container, ExecutionStatus.RUNNING, worker_id=dead)
    first, second = worker(), worker()
    assert await container.lifecycle.take_over(execution.id, dead, first)
    assert not await container.lifecycle.take_over(execution.id, dead, second)
    taken = await row(container, execution)
    assert (taken.status, taken.worker_id, taken.attempts) == (ExecutionStatus.RUNNING, first, 1)


async def test_a_run_is_marked_running_only_from_starting(container: Container) -> None:
    execution = await stored_run(container)
    assert not await container.lifecycle.mark_running(execution.id)  # still QUEUED
    assert await container.lifecycle.claim(execution.id, worker())
    assert await container.lifecycle.mark_running(execution.id)
    running = await row(container, execution)
    assert running.status is ExecutionStatus.RUNNING
    assert running.started_at is not None
    assert not await container.lifecycle.mark_running(execution.id)


async def test_input_files_come_with_the_claim_and_the_load_decoded_in_the_order_given(container: Container) -> None:
    files = [{"name": "b.txt", "content": base64.b64encode(b"bee").decode()}, {"name": "a.csv", "content": ""}]
    execution = await stored_run(container, files=files)
    given = [InputFile("b.txt", b"bee"), InputFile("a.csv", b"")]
    claimed = await container.lifecycle.claim(execution.id, worker())
    loaded = await container.lifecycle.load(execution.id)
    assert claimed is not None
    assert loaded is not None
    assert (claimed.files, loaded.files) == (given, given)


async def test_an_artifact_is_stored_and_counted_in_the_runs_storage(container: Container) -> None:
    execution = await stored_run(container)
    before = (await row(container, execution)).stored_bytes
    stored = await container.lifecycle.store_artifact(execution.id, ArtifactOutput("a.png", "image/png", b"png!", 4))
    assert (stored.execution_id, stored.name, stored.media_type, stored.size_bytes) == (
        execution.id,
        "a.png",
        "image/png",
        4,
    )
    assert (await row(container, execution)).stored_bytes == before + 4
    async with container.executions() as executions:
        produced = await executions.artifacts.of_executions([execution.id])
        assert [artifact.id for artifact in produced[execution.id]] == [stored.id]


async def test_a_run_is_finished_once_with_its_log_archived_and_the_terminal_event_last(container: Container) -> None:
    execution = await stored_run(container)
    assert await container.lifecycle.claim(execution.id, worker())
    writer = LogWriter(container.lifecycle.event_log(execution.id), [])
    await writer.status(writer.status_event(ExecutionStatus.STARTING))
    await writer.lines([(Stream.STDOUT, ["hi"], False)])
    assert await container.lifecycle.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    again = LogWriter(container.lifecycle.event_log(execution.id), [])
    assert not await container.lifecycle.finish(execution.id, Outcome(ExecutionStatus.ERROR), again, STARTED)

    ended = await row(container, execution)
    assert (ended.status, ended.exit_code) == (ExecutionStatus.SUCCEEDED, 0)
    async with container.executions() as executions:
        archived = await executions.archived_events(execution.id)
        assert await executions.repository.output(execution.id, Stream.STDOUT) == "hi\n"
    in_redis = await container.lifecycle.event_log(execution.id).read_all()
    assert archived is not None
    assert [entry.last for entry in archived] == [entry.last for entry in in_redis] == [1, 2, 3]
    assert isinstance(in_redis[-1], StatusEvent)
    assert in_redis[-1].status is ExecutionStatus.SUCCEEDED


AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
# Texts JSON escapes, or that are more than one UTF-8 byte a character.
AWKWARD = ['quote " and backslash \\ and tab \t', "héllo wörld ✓ 🐍", "\ufffd replaced", "", "[1, 2]"]


def mixed_log() -> list[Entry]:
    """A log of every kind of entry: statuses, an artifact, an older run's line, batches of both streams."""
    return [
        StatusEvent(1, ExecutionStatus.STARTING, AT),
        StatusEvent(2, ExecutionStatus.RUNNING, AT),
        LineEvent(3, Stream.STDOUT, "an older run's line", AT),
        LineEvent(4, Stream.STDERR, "an older partial ", AT, partial=True),
        *batch_lines(5, AT, [(Stream.STDOUT, AWKWARD, False), (Stream.STDERR, ["err ✓", "part"], True)]),
        ArtifactEvent(12, uuid.uuid4(), "plot.png", "image/png", 10, AT),
        *batch_lines(13, AT, [(Stream.STDOUT, [f"line {i}" for i in range(2500)], False)]),
        *batch_lines(2513, AT, [(Stream.STDERR, ["tail"], False), (Stream.STDOUT, ["no newline"], True)]),
    ]


# A small log goes as statement parameters, a large one in pieces by COPY: both must store the same.
BOTH_WAYS = pytest.mark.parametrize("stage_above", [archive.STAGE_ABOVE_CHARS, 0], ids=["in-line", "staged"])


@BOTH_WAYS
async def test_a_finished_run_archives_exactly_its_log_and_output(
    container: Container, monkeypatch: pytest.MonkeyPatch, stage_above: int
) -> None:
    monkeypatch.setattr(archive, "STAGE_ABOVE_CHARS", stage_above)
    execution = await stored_run(container)
    assert await container.lifecycle.claim(execution.id, worker())
    logged = mixed_log()
    writer = LogWriter(container.lifecycle.event_log(execution.id), list(logged))
    stored_before = (await row(container, execution)).stored_bytes
    assert await container.lifecycle.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)

    async with container.executions() as executions:
        archived = await executions.archived_events(execution.id)
        stdout = await executions.repository.output(execution.id, Stream.STDOUT)
        stderr = await executions.repository.output(execution.id, Stream.STDERR)
    assert archived is not None
    terminal = archived.pop()
    assert isinstance(terminal, StatusEvent)
    assert (terminal.seq, terminal.status) == (logged[-1].last + 1, ExecutionStatus.SUCCEEDED)
    assert archived == logged
    assert stdout == joined_output(logged, Stream.STDOUT)
    assert stdout.startswith("an older run's line\n" + "\n".join(AWKWARD) + "\nline 0\n")
    assert stdout.endswith("line 2499\nno newline")
    assert stderr == joined_output(logged, Stream.STDERR) == "an older partial err ✓parttail\n"
    stored = (await row(container, execution)).stored_bytes
    assert stored == stored_before + len(stdout.encode()) + len(stderr.encode())


@BOTH_WAYS
async def test_a_run_without_output_archives_empty_output(
    container: Container, monkeypatch: pytest.MonkeyPatch, stage_above: int
) -> None:
    monkeypatch.setattr(archive, "STAGE_ABOVE_CHARS", stage_above)
    execution = await stored_run(container)
    assert await container.lifecycle.claim(execution.id, worker())
    writer = LogWriter(container.lifecycle.event_log(execution.id), [])
    assert await container.lifecycle.finish(execution.id, Outcome(ExecutionStatus.SUCCEEDED, exit_code=0), writer)
    async with container.executions() as executions:
        archived = await executions.archived_events(execution.id)
        assert await executions.repository.output(execution.id, Stream.STDOUT) == ""
        assert await executions.repository.output(execution.id, Stream.STDERR) == ""
    assert archived is not None
    assert [(entry.last, type(entry)) for entry in archived] == [(1, StatusEvent)]
