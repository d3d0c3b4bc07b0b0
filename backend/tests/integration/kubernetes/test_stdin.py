"""Interactive stdin on Kubernetes: sendInput reaches the pod over pods/attach (WebSocket, channel 0), on the
stand-in and through a real API server and kubelet.

Runs before test_worker_crash (it kills a worker too, and starts its successor).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podrun.runners.kubernetes.pod import ANNOTATION_STDIN_DELIVERED
from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import assert_consecutive, collect, final, flatten, lines, submit
from tests.integration.kubernetes.conftest import Cluster

SEND_INPUT = "mutation($id: ID!, $data: String!, $eof: Boolean) { sendInput(id: $id, data: $data, eof: $eof) }"
INTERACTIVE = """\
import sys
print('name?', flush=True)
name = input()
print('hello ' + name, flush=True)
print('more?', flush=True)
print('EOF' if sys.stdin.read() == '' else 'not EOF')
"""
TWO_ANSWERS = """\
import sys
print('name?', flush=True)
print('hello ' + input(), flush=True)
print('again?', flush=True)
print('then ' + input(), flush=True)
print('EOF' if sys.stdin.read() == '' else 'not EOF')
"""


def pod_name(execution_id: str) -> str:
    return "podrun-" + execution_id.replace("-", "")


async def send_input(client: GraphQLClient, execution_id: str, data: str, eof: bool = False) -> None:
    result = await client.execute(SEND_INPUT, {"id": execution_id, "data": data, "eof": eof})
    assert result["sendInput"] is True


async def test_send_input_reaches_the_pod_over_attach(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, INTERACTIVE, limits={"wallTimeMs": 20_000})
    events: list[dict[str, Any]] = []
    async for data in user.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        for event in flatten(data["executionEvents"]):
            events.append(event)
            if event["kind"] == "line" and event["text"] == "name?":
                await send_input(user, execution_id, "wor")
                await send_input(user, execution_id, "ld\n")
            if event["kind"] == "line" and event["text"] == "more?":
                await send_input(user, execution_id, "", eof=True)
    assert lines(events) == ["name?", "hello world", "more?", "EOF"]
    assert final(events)["status"] == "SUCCEEDED"
    assert_consecutive(events)
    name = pod_name(execution_id)
    # One attach session for all of it; the container's stdin is open for re-attaching (no stdinOnce).
    assert cluster.pods.attaches(name) == 1
    container = cluster.pods.created_spec(name)["containers"][0]
    assert container["stdin"] is True
    assert container.get("stdinOnce") in (None, False)
    assert cluster.pods.deletes(name) == 1


async def test_large_input_arrives_whole(cluster: Cluster, user: GraphQLClient) -> None:
    script = (
        "import sys\nprint('ready', flush=True)\ndata = sys.stdin.read()\nprint(len(data), data == 'x' * 200_000)\n"
    )
    execution_id = await submit(user, script, limits={"wallTimeMs": 20_000})
    async for data in user.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        if any(event.get("text") == "ready" for event in flatten(data["executionEvents"])):
            break
    for _ in range(3):  # each over one harness frame (48 KiB), under the API's 64 KiB per message
        await send_input(user, execution_id, "x" * 60_000)
    await send_input(user, execution_id, "x" * 20_000, eof=True)
    events = await collect(user, execution_id)
    assert lines(events)[-1] == "200000 True"
    assert final(events)["status"] == "SUCCEEDED"


async def test_stdin_given_at_submission_needs_no_attach(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, "import sys\nprint(sys.stdin.read().upper())\n", stdin="quiet")
    events = await collect(user, execution_id)
    assert lines(events) == ["QUIET"]
    assert cluster.pods.attaches(pod_name(execution_id)) == 0


async def test_input_after_a_worker_crash_reaches_the_pod_once(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, TWO_ANSWERS, limits={"wallTimeMs": 45_000})
    async for data in user.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        texts = [event.get("text") for event in flatten(data["executionEvents"])]
        if "name?" in texts:
            await send_input(user, execution_id, "world\n")
        if "again?" in texts:
            break
    name = pod_name(execution_id)
    # The worker records delivered input on the pod right after sending it; a crash inside that window
    # would deliver "world\n" twice (documented). Kill it once the record is there.
    delivered = str(len(b"world\n"))
    for _ in range(200):
        if cluster.pods.annotations(name).get(ANNOTATION_STDIN_DELIVERED) == delivered:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the worker never recorded the delivered input on the pod")
    cluster.holder().kill()
    assert cluster.pods.pod_exists(name)  # the pod, waiting on input(), outlives its worker
    # Input sent while no worker holds the run waits in the control stream for the next one.
    await send_input(user, execution_id, "more\n")
    await send_input(user, execution_id, "", eof=True)
    cluster.worker()

    events = await collect(user, execution_id)
    # The new worker replays the control stream from its start: "world\n", which the pod had, is skipped.
    assert lines(events) == ["name?", "hello world", "again?", "then more", "EOF"]
    assert final(events)["status"] == "SUCCEEDED"
    assert_consecutive(events)
    assert cluster.pods.creates(name) == 2
    assert cluster.pods.attaches(name) == 2
