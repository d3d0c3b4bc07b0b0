"""One measured run: submit a script over HTTP, follow it over WebSocket to its terminal status."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.client import Client, Socket
from bench.report import Failed

HELLO = "print('hi')"


@dataclass(frozen=True, slots=True)
class RunTiming:
    """Seconds from the start of the submit request to its answer, to the first line, to the terminal status."""

    submit: float
    first: float
    terminal: float


async def timed_run(client: Client, socket: Socket, script: str = HELLO, **fields: Any) -> RunTiming:
    """Submit `script`, follow it to its end, and check it printed `hi` and succeeded."""
    started = time.perf_counter()
    execution_id = await client.submit(script, **fields)
    return await timed_follow(socket, execution_id, started)


async def timed_follow(socket: Socket, execution_id: str, started: float) -> RunTiming:
    """Follow a run submitted at `started` (perf_counter) to its end; check it printed `hi` and succeeded."""
    submitted = time.perf_counter() - started
    first = 0.0
    texts: list[str] = []
    status = ""
    async for event in socket.events(execution_id):
        if "lines" in event:
            first = first or time.perf_counter() - started
            texts += [line["text"] for line in event["lines"]]
        else:
            status = event["status"]
    terminal = time.perf_counter() - started
    if texts != ["hi"] or status != "SUCCEEDED":
        raise Failed(f"run {execution_id}: {status}, output {texts[:5]}")
    return RunTiming(submitted, first, terminal)
