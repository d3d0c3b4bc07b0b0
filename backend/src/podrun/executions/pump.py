"""One running sandbox, pumped: its output into the event log as lines and artifacts, control commands into it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from uuid import UUID

import structlog
from redis.exceptions import RedisError

from podrun import tasks
from podrun.executions.already_logged import AlreadyLogged
from podrun.executions.models import Artifact
from podrun.executions.outcomes import Outcome, classify
from podrun.runners.base import ArtifactCaps, ArtifactOutput, OutputBytes, Sandbox, SandboxOutput
from podrun.streams.control import Cancel, ControlStream, Eof, Input
from podrun.streams.lines import LineAssembler, line_count
from podrun.streams.log import LogWriter

log = structlog.get_logger(__name__)

# Commands read at once by the follower of cancels (which skips the others).
CONTROL_BATCH = 100
# Lines appended to the log in one round trip at most.
BATCH_LINES = 1000
# How long the control readers get to see the end mark before they are cancelled (Redis away: they are).
END_WAIT_S = 0.05
# The extra wait, after the quiet that flushes a partial line, for output the loop has not seen yet.
LATE_OUTPUT_GRACE_S = 0.01


class SandboxPump:
    """Output of one sandbox into the log (within the output cap), commands from the control stream into it."""

    def __init__(
        self,
        execution_id: UUID,
        sandbox: Sandbox,
        writer: LogWriter,
        *,
        output_limit: int,
        artifact_caps: ArtifactCaps,
        store_artifact: Callable[[ArtifactOutput], Awaitable[Artifact]],
        stdin_open: bool,
        control: ControlStream,
        already_logged: AlreadyLogged,
    ) -> None:
        self.execution_id = execution_id
        self.sandbox = sandbox
        self.writer = writer
        self.stdin_open = stdin_open
        self.control = control
        self.already_logged = already_logged
        self.lines = LineAssembler(output_limit)
        self.lines.output_bytes = already_logged.output_bytes
        self.artifact_caps = artifact_caps
        self.store_artifact = store_artifact
        self.artifacts = already_logged.artifacts
        self.artifact_bytes = already_logged.artifact_bytes
        self.lines.output_bytes += already_logged.artifact_bytes
        self.cancelled = False

    async def run(self) -> Outcome:
        """Pump until the sandbox has ended; how it ended."""
        control = asyncio.create_task(self._follow_control(), name="control")
        # Apart from cancels: input waits (in the control stream) while the sandbox takes none, a cancel never.
        feeding = asyncio.create_task(self._feed_input(), name="input") if self.stdin_open else None
        readers = {control} if feeding is None else {control, feeding}
        try:
            await self._pump_output()
            result = await self.sandbox.wait()
            await self._end_control(readers)
        finally:
            for reader in readers:
                await tasks.stop(reader)
        return classify(result, cancelled=self.cancelled, output_truncated=self.lines.truncated)

    async def _pump_output(self) -> None:
        chunks: asyncio.Queue[SandboxOutput | None] = asyncio.Queue(maxsize=64)

        async def read() -> None:
            try:
                async for chunk in self.sandbox.output():
                    if isinstance(chunk, ArtifactOutput):
                        if not self.already_logged.skip_artifact():
                            await chunks.put(chunk)
                        continue
                    fresh = self.already_logged.skip(chunk)
                    if fresh.data:
                        await chunks.put(fresh)
            finally:
                await chunks.put(None)

        reader = asyncio.create_task(read(), name="output")
        # An artifact or the end, taken from the queue while batching lines, waits here for its turn.
        held: list[SandboxOutput | None] = []
        try:
            while True:
                # What has arrived goes first: a partial line is flushed only when nothing came for a while
                # (the script paused after a prompt), never because this loop fell behind.
                if held:
                    chunk = held.pop()
                elif not chunks.empty():
                    chunk = chunks.get_nowait()
                else:
                    try:
                        chunk = await asyncio.wait_for(chunks.get(), self.lines.due_in())
                    except TimeoutError:
                        # A loop held up wakes to the timer with output still on its way through the reader: one
                        # short look more before taking the quiet for a pause.
                        try:
                            chunk = await asyncio.wait_for(chunks.get(), LATE_OUTPUT_GRACE_S)
                        except TimeoutError:
                            await self.writer.lines(self.lines.flush_due())
                            continue
                if chunk is None:
                    break
                if isinstance(chunk, ArtifactOutput):
                    await self._artifact(chunk)
                else:
                    batch = self.lines.feed(chunk.stream, chunk.data)
                    lines = line_count(batch)
                    while not chunks.empty() and lines < BATCH_LINES:  # batch whatever else already arrived
                        queued = chunks.get_nowait()
                        if not isinstance(queued, OutputBytes):
                            held.append(queued)
                            break
                        runs = self.lines.feed(queued.stream, queued.data)
                        batch.extend(runs)
                        lines += line_count(runs)
                    await self.writer.lines(batch)
                if self.lines.truncated:
                    await self.sandbox.kill()
            await self.writer.lines(self.lines.flush_all())
        finally:
            await tasks.stop(reader)

    async def _end_control(self, readers: set[asyncio.Task[None]]) -> None:
        """Let the control readers stop by themselves (cancelled inside a blocking read, each would cost its
        Redis connection), then remove their stream."""
        try:
            await self.control.end()
            await asyncio.wait(readers, timeout=END_WAIT_S)
            await self.control.drop()  # an ended run leaves only its event log
        except RedisError:
            return

    async def _artifact(self, artifact: ArtifactOutput) -> None:
        """Store an artifact and log it after the output before it; past the caps, end the run at its output limit."""
        if self.lines.truncated:
            return
        # A partial line written before the artifact comes before it in the log too.
        await self.writer.lines(self.lines.flush_pending())
        size = len(artifact.data)
        within_caps = (
            not artifact.refused
            and self.artifacts < self.artifact_caps.count
            and self.artifact_bytes + size <= self.artifact_caps.total_bytes
            and self.lines.output_bytes + size <= self.lines.output_limit
        )
        if not within_caps:
            self.lines.truncated = True
            log.info("artifact past the caps", execution_id=str(self.execution_id), size=artifact.size)
            return
        self.artifacts += 1
        self.artifact_bytes += size
        self.lines.output_bytes += size
        stored = await self.store_artifact(artifact)
        await self.writer.artifact(stored.id, stored.name, stored.media_type, stored.size_bytes, stored.created_at)

    async def _follow_control(self) -> None:
        """Act on cancels as soon as they come."""
        async for command in self.control.commands(CONTROL_BATCH):
            if isinstance(command, Cancel):
                self.cancelled = True
                await self.sandbox.kill()
                log.info("execution cancelled", execution_id=str(self.execution_id))

    async def _feed_input(self) -> None:
        """Write input and EOF into the sandbox in order, one command at a time: a write waits while the
        sandbox's harness holds as much as it may, and the rest waits in the control stream (streams/control.py)."""
        async for command in self.control.commands(1):
            if isinstance(command, Input):
                data = command.data.encode()
                await self.sandbox.write_stdin(data)
                with contextlib.suppress(RedisError):  # a delivery not counted only narrows the window
                    await self.control.delivered(len(data))
            elif isinstance(command, Eof):
                await self.sandbox.close_stdin()
                return
