"""The pump against a fake sandbox: output into the log as lines and artifacts, the caps, control commands, replays."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from uuid import uuid4

from redis.asyncio import Redis
from uuid_utils.compat import uuid7

from podrun.core.limits import LimitKind
from podrun.core.output import Stream
from podrun.core.statuses import ExecutionStatus
from podrun.executions.already_logged import AlreadyLogged
from podrun.executions.models import Artifact
from podrun.executions.outcomes import Outcome
from podrun.executions.pump import SandboxPump
from podrun.redis_client import Keys
from podrun.runners.base import ArtifactCaps, ArtifactOutput, OutputBytes
from podrun.streams.control import Cancel, ControlStream, Eof
from podrun.streams.events import ArtifactEvent, Entry, LineEvent, batch_lines, unfold
from podrun.streams.lines import PARTIAL_FLUSH_S
from podrun.streams.log import EventLog, LogWriter
from tests.unit.executions.fakes import FakeSandbox, Step

AT = datetime(2026, 12, 1, tzinfo=UTC)
CAPS = ArtifactCaps(count=2, total_bytes=1000)

# What a test reads back from the log: ("out"/"err", text, partial) for a line, ("artifact", name) for an artifact.
Seen = tuple[str, str, bool] | tuple[str, str]


def out(data: bytes) -> OutputBytes:
    return OutputBytes(Stream.STDOUT, data)


def artifact(name: str, data: bytes = b"png", *, refused: bool = False) -> ArtifactOutput:
    return ArtifactOutput(name, "image/png", b"" if refused else data, len(data), refused=refused)


class Pumped:
    """One pump over a fake sandbox, with what it stored and logged."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        sandbox: FakeSandbox,
        logged: list[Entry],
        *,
        output_limit: int = 1 << 20,
        stdin_open: bool = False,
    ) -> None:
        self.execution_id = uuid4()
        self.sandbox = sandbox
        self.control = ControlStream(redis, keys, self.execution_id)
        self.writer = LogWriter(EventLog(redis, keys, self.execution_id), list(logged))
        self.logged = len(logged)
        self.stored: list[str] = []
        self.pump = SandboxPump(
            self.execution_id,
            sandbox,
            self.writer,
            output_limit=output_limit,
            artifact_caps=CAPS,
            store_artifact=self.store,
            stdin_open=stdin_open,
            control=self.control,
            already_logged=AlreadyLogged(logged),
        )

    async def store(self, output: ArtifactOutput) -> Artifact:
        self.stored.append(output.name)
        return Artifact(
            id=uuid7(),
            execution_id=self.execution_id,
            name=output.name,
            media_type=output.media_type,
            size_bytes=len(output.data),
            created_at=AT,
        )

    def seen(self) -> list[Seen]:
        """What this pump logged (not what was logged before it), in order."""
        return seen(self.writer.entries[self.logged :])


def seen(entries: list[Entry]) -> list[Seen]:
    """The lines and artifacts of `entries`, in order."""
    found: list[Seen] = []
    for event in unfold(entries):
        if isinstance(event, LineEvent):
            found.append((event.stream.value.lower()[3:], event.text, event.partial))
        elif isinstance(event, ArtifactEvent):
            found.append(("artifact", event.name))
    return found


async def pump(
    redis: Redis, keys: Keys, steps: list[Step], logged: list[Entry] | None = None, *, output_limit: int = 1 << 20
) -> tuple[Outcome, Pumped]:
    pumped = Pumped(redis, keys, FakeSandbox(steps), logged or [], output_limit=output_limit)
    outcome = await asyncio.wait_for(pumped.pump.run(), 10)
    return outcome, pumped


async def test_partial_lines_are_joined_across_chunks_and_the_last_one_is_kept(redis: Redis, keys: Keys) -> None:
    outcome, pumped = await pump(redis, keys, [out(b"hel"), out(b"lo\nwor"), out(b"ld\n\xc3"), out(b"\xa9 end")])
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert pumped.seen() == [("out", "hello", False), ("out", "world", False), ("out", "é end", True)]
    assert seen(await pumped.writer.event_log.read_all()) == pumped.seen()


async def test_a_partial_line_is_logged_when_the_script_pauses_after_it(redis: Redis, keys: Keys) -> None:
    pumped_box: list[Pumped] = []

    async def until_the_prompt_is_logged() -> None:
        # The prompt's line is the log's first entry: it comes only once the pump stops waiting for more.
        assert await redis.xread({pumped_box[0].writer.event_log.key: "0-0"}, count=1, block=5000)

    pumped = Pumped(redis, keys, FakeSandbox([out(b"name? "), until_the_prompt_is_logged, out(b"Ada\n")]), [])
    pumped_box.append(pumped)
    await asyncio.wait_for(pumped.pump.run(), 10)
    assert pumped.seen() == [("out", "name? ", True), ("out", "Ada", False)]


async def test_output_that_came_while_the_worker_was_busy_is_not_taken_for_a_pause(redis: Redis, keys: Keys) -> None:
    async def busy_worker() -> None:
        await asyncio.sleep(0.01)  # the pump takes "hel" and waits for more
        # The worker's loop is held up (blocking on purpose): the flush timer comes due meanwhile.
        time.sleep(PARTIAL_FLUSH_S * 1.5)  # noqa: ASYNC251
        for _ in range(10):  # and the rest of the line is still on its way from the sandbox when the timer fires
            await asyncio.sleep(0)

    _, pumped = await pump(redis, keys, [out(b"hel"), busy_worker, out(b"lo\n")])
    assert pumped.seen() == [("out", "hello", False)]


async def test_artifacts_come_between_the_lines_written_around_them(redis: Redis, keys: Keys) -> None:
    steps: list[Step] = [out(b"before"), artifact("a.png"), out(b" after\nnext\n"), artifact("b.png")]
    outcome, pumped = await pump(redis, keys, steps)
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert pumped.seen() == [
        ("out", "before", True),
        ("artifact", "a.png"),
        ("out", " after", False),
        ("out", "next", False),
        ("artifact", "b.png"),
    ]
    assert pumped.stored == ["a.png", "b.png"]


async def test_output_past_the_cap_is_cut_and_ends_the_run_at_its_output_limit(redis: Redis, keys: Keys) -> None:
    outcome, pumped = await pump(redis, keys, [out(b"0123\n"), out(b"456789abc\n"), out(b"never\n")], output_limit=10)
    assert pumped.sandbox.killed.is_set()
    assert outcome.limit_exceeded is LimitKind.OUTPUT
    assert outcome.output_truncated
    assert outcome.status is ExecutionStatus.FAILED
    assert pumped.seen() == [("out", "0123", False), ("out", "45678", True)]


async def test_an_artifact_past_the_caps_is_not_stored_and_ends_the_run(redis: Redis, keys: Keys) -> None:
    steps: list[Step] = [artifact("a.png"), artifact("b.png"), artifact("c.png")]
    outcome, pumped = await pump(redis, keys, steps)
    assert pumped.stored == ["a.png", "b.png"]
    assert pumped.seen() == [("artifact", "a.png"), ("artifact", "b.png")]
    assert outcome.limit_exceeded is LimitKind.OUTPUT
    assert pumped.sandbox.killed.is_set()


async def test_a_refused_artifact_ends_the_run_at_its_output_limit(redis: Redis, keys: Keys) -> None:
    outcome, pumped = await pump(redis, keys, [out(b"a\n"), artifact("huge.png", b"x" * 5000, refused=True)])
    assert pumped.stored == []
    assert pumped.seen() == [("out", "a", False)]
    assert outcome.limit_exceeded is LimitKind.OUTPUT


async def test_a_cancel_in_the_middle_of_the_output_kills_the_sandbox_and_keeps_what_came_before(
    redis: Redis, keys: Keys
) -> None:
    pumped_box: list[Pumped] = []

    async def cancelled_while_writing() -> None:
        await pumped_box[0].control.send(Cancel())
        await asyncio.wait_for(pumped_box[0].sandbox.killed.wait(), 5)

    lines = [out(f"{n}\n".encode()) for n in range(50)]
    sandbox = FakeSandbox([*lines, cancelled_while_writing, out(b"after the cancel\n")])
    pumped = Pumped(redis, keys, sandbox, [])
    pumped_box.append(pumped)
    outcome = await asyncio.wait_for(pumped.pump.run(), 10)
    assert outcome.status is ExecutionStatus.CANCELLED
    assert outcome.limit_exceeded is None
    assert pumped.seen() == [("out", str(n), False) for n in range(50)]


async def test_input_and_eof_reach_the_sandbox_in_order_and_are_counted_as_delivered(redis: Redis, keys: Keys) -> None:
    pumped_box: list[Pumped] = []

    async def until_stdin_is_closed() -> None:
        await asyncio.wait_for(pumped_box[0].sandbox.stdin_closed.wait(), 5)

    pumped = Pumped(redis, keys, FakeSandbox([until_stdin_is_closed, out(b"done\n")]), [], stdin_open=True)
    pumped_box.append(pumped)
    assert await pumped.control.add_input("é1\n", 100)
    assert await pumped.control.add_input("2\n", 100)
    await pumped.control.send(Eof())
    assert await pumped.control.add_input("after EOF\n", 100)
    await asyncio.wait_for(pumped.pump.run(), 10)
    assert pumped.sandbox.stdin == ["é1\n".encode(), b"2\n"]
    assert await redis.hget(keys.input_window(pumped.execution_id), "delivered") == b"6"
    assert pumped.seen() == [("out", "done", False)]


async def test_a_replay_logs_only_what_was_not_logged_before(redis: Redis, keys: Keys) -> None:
    logged: list[Entry] = [*batch_lines(1, AT, [(Stream.STDOUT, ["one"], False), (Stream.STDOUT, ["tw"], True)])]
    logged.append(ArtifactEvent(logged[-1].last + 1, uuid7(), "a.png", "image/png", 3, AT))
    replayed: list[Step] = [out(b"one\nt"), out(b"wo\n"), artifact("a.png"), out(b"three\n"), artifact("b.png")]
    outcome, pumped = await pump(redis, keys, replayed, logged)
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert pumped.seen() == [("out", "o", False), ("out", "three", False), ("artifact", "b.png")]
    assert pumped.stored == ["b.png"]
    assert pumped.writer.entries[: len(logged)] == logged
