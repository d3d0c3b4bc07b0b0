"""Runs on the Kubernetes runner, end to end: GraphQL -> worker -> pod -> pod log -> GraphQL (stand-in and real)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from tests.client import EVENTS, GraphQLClient
from tests.e2e.helpers import assert_consecutive, collect, execution, final, flatten, lines, submit, wait_for_status
from tests.integration.kubernetes.conftest import BROKEN_RUNTIME, Cluster

CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { id status } }"
COUNTING = "import sys, time\nfor i in range({n}):\n    print('line', i)\n    time.sleep({pause})\nprint('done')\n"


def pod_name(execution_id: str) -> str:
    return "podrun-" + execution_id.replace("-", "")


async def assert_cleaned_up(cluster: Cluster, execution_id: str) -> None:
    """The run's pod and ConfigMap are deleted: soon after the run ended (the deletion follows it)."""
    name = pod_name(execution_id)
    for _ in range(100):
        if cluster.pods.deletes(name) >= 1 and not cluster.pods.pod_exists(name):
            break
        await asyncio.sleep(0.1)
    assert cluster.pods.deletes(name) >= 1
    assert not cluster.pods.pod_exists(name)
    assert not cluster.pods.config_map_exists(name)


async def test_lines_stream_in_order_and_pod_is_deleted(cluster: Cluster, user: GraphQLClient) -> None:
    script = (
        "import sys, time\nfor i in range(5):\n    print('out', i)\n    print('err', i, file=sys.stderr)\n"
        "    time.sleep(0.05)\n"
    )
    execution_id = await submit(user, script)
    events = await collect(user, execution_id)
    assert_consecutive(events)
    assert lines(events) == [f"out {i}" for i in range(5)]
    assert lines(events, "STDERR") == [f"err {i}" for i in range(5)]
    assert [e["status"] for e in events if e["kind"] == "status"] == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert final(events)["exitCode"] == 0
    assert cluster.pods.creates(pod_name(execution_id)) == 1
    await assert_cleaned_up(cluster, execution_id)


async def test_lines_arrive_while_the_pod_runs(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')\n")
    seen: list[str] = []
    async for data in user.subscribe(EVENTS, {"id": execution_id, "after": 0}):
        for event in flatten(data["executionEvents"]):
            if event["kind"] == "line":
                seen.append(event["text"])
                if event["text"] == "first":
                    # The pod is still running: the line came from a live log follow, not after the end.
                    assert cluster.pods.pod_exists(pod_name(execution_id))
    assert seen == ["first", "second"]


async def test_stdin_given_at_submission(user: GraphQLClient) -> None:
    execution_id = await submit(user, "import sys\nprint(sys.stdin.read()[::-1])\n", stdin="abc\u00e9")
    events = await collect(user, execution_id)
    assert lines(events) == ["\u00e9cba"]
    assert final(events)["status"] == "SUCCEEDED"


OOM = "x = bytearray(400 * 1024 * 1024)\nx[::4096] = b'1' * len(x[::4096])"


@pytest.mark.parametrize(
    ("script", "wall_ms", "status", "limit", "exit_code"),
    [
        pytest.param("raise SystemExit(3)", 5000, "FAILED", None, 3, id="exit-code"),
        pytest.param(OOM, 5000, "FAILED", "MEMORY", None, id="oom"),
        pytest.param("while True: pass", 8000, "TIMED_OUT", "CPU_TIME", None, id="cpu"),
        pytest.param("import time\ntime.sleep(30)", 1500, "TIMED_OUT", "WALL_TIME", None, id="wall"),
    ],
)
async def test_how_a_run_ends_is_classified(
    cluster: Cluster,
    user: GraphQLClient,
    script: str,
    wall_ms: int,
    status: str,
    limit: str | None,
    exit_code: int | None,
) -> None:
    limits = {"memoryMiB": 128, "cpuTimeMs": 1000, "wallTimeMs": wall_ms}
    execution_id = await submit(user, script, limits=limits)
    events = await collect(user, execution_id)
    result = final(events)
    assert (result["status"], result["limitExceeded"], result["exitCode"]) == (status, limit, exit_code)
    await assert_cleaned_up(cluster, execution_id)


async def test_cancel_deletes_the_pod_at_once(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, COUNTING.format(n=100, pause=0.1))
    await wait_for_status(user, execution_id, "RUNNING")
    data = await user.execute(CANCEL, {"id": execution_id})
    assert data["cancelExecution"]["status"] == "CANCELLED"
    events = await collect(user, execution_id)
    assert final(events)["status"] == "CANCELLED"
    await assert_cleaned_up(cluster, execution_id)


async def test_image_pull_failure_is_an_error_with_a_reason(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, "print('never')", runtime=BROKEN_RUNTIME)
    events = await collect(user, execution_id)
    result = final(events)
    assert (result["status"], result["error"]) == ("ERROR", "The runtime's image could not be pulled.")
    assert lines(events) == []
    await assert_cleaned_up(cluster, execution_id)


async def test_output_longer_than_a_log_line_comes_back_whole(user: GraphQLClient) -> None:
    # Harness frames of up to 64 KiB of output are longer than containerd's 16 KiB log lines: the runtime
    # writes them in pieces, each with its own timestamp, and the runner must join them again.
    script = "import sys\nsys.stdout.write('x' * 200_000 + '\\n')\nprint('end')\n"
    execution_id = await submit(user, script, limits={"outputBytes": 1_000_000})
    events = await collect(user, execution_id)
    assert final(events)["status"] == "SUCCEEDED"
    assert_consecutive(events)
    stored = await execution(user, execution_id)
    assert stored["stdout"] == "x" * 200_000 + "\nend\n"


@pytest.mark.standin_only
async def test_broken_log_follow_is_resumed_without_loss_or_duplicates(cluster: Cluster, user: GraphQLClient) -> None:
    cuts = cluster.state.follows_cut
    cluster.state.call(lambda: setattr(cluster.state, "cut_next_follow_after", 20))
    execution_id = await submit(
        user, "import time\nfor i in range(300):\n    print('line', i)\n    time.sleep(0.002)\n"
    )
    events = await collect(user, execution_id)
    assert cluster.state.follows_cut == cuts + 1
    assert_consecutive(events)
    assert final(events)["status"] == "SUCCEEDED"
    # A line may reach the log in pieces (a partial line is flushed while the follow resumes): compare the text.
    stored = await execution(user, execution_id)
    assert stored["stdout"] == "".join(f"line {i}\n" for i in range(300))


@pytest.mark.standin_only
async def test_expired_watch_lists_again(cluster: Cluster, user: GraphQLClient) -> None:
    gone = cluster.state.gone_served
    cluster.state.call(lambda: setattr(cluster.state, "hold_next_start_s", 1.5))
    execution_id = await submit(user, COUNTING.format(n=3, pause=0.2))
    await wait_for_status(user, execution_id, "STARTING")
    await asyncio.sleep(0.5)  # the pod is held in ContainerCreating for 1.5 s, the worker watches it
    assert cluster.pods.pod_exists(pod_name(execution_id))
    # While the worker watches the pod start, the history is compacted: its watch ends, and watching on
    # from its resourceVersion gets 410 Gone, so it must list again.
    cluster.state.call(cluster.state.expire_watch_history)
    events = await collect(user, execution_id)
    assert final(events)["status"] == "SUCCEEDED"
    assert lines(events) == ["line 0", "line 1", "line 2", "done"]
    assert cluster.state.gone_served > gone


async def test_pod_deadline_is_the_wall_limit_plus_the_startup_allowance(cluster: Cluster, user: GraphQLClient) -> None:
    execution_id = await submit(user, COUNTING.format(n=1, pause=0), limits={"wallTimeMs": 2500})
    await collect(user, execution_id)
    # Checked on the spec the API server received: 3 s (2.5 s rounded up) + the suite's start-up allowance.
    spec = cluster.pods.created_spec(pod_name(execution_id))
    assert spec["activeDeadlineSeconds"] == 3 + cluster.startup_allowance_s


async def test_runs_in_parallel(user: GraphQLClient) -> None:
    ids = [await submit(user, f"print({i})") for i in range(4)]
    results = await asyncio.gather(*(collect(user, execution_id) for execution_id in ids))
    assert [lines(events) for events in results] == [[str(i)] for i in range(4)]


async def test_input_files_in_and_artifacts_out_through_the_pod_log(user: GraphQLClient) -> None:
    # A file larger than a container runtime's log piece (16 KiB), so its frames are split and joined again.
    script = (
        "import os\nprint(open('data.txt').read())\n"
        "open('/tmp/outputs/big.txt', 'w').write('x' * 100_000)\n"
        "os.symlink('/etc/hostname', '/tmp/outputs/host.txt')\nprint('written')\n"
    )
    files = [{"name": "data.txt", "content": base64.b64encode(b"from the client").decode()}]
    events = await collect(user, await submit(user, script, files=files))
    assert final(events)["status"] == "SUCCEEDED", final(events)
    assert lines(events) == ["from the client", "written"]
    [artifact] = [event["artifact"] for event in events if event["kind"] == "artifact"]
    assert (artifact["name"], artifact["sizeBytes"]) == ("big.txt", 100_000)
    assert events[-2]["kind"] == "artifact"  # after the output: files in /tmp/outputs are sent at the exit
    assert (await user.download(artifact["url"])).content == b"x" * 100_000
