"""Files in and artifacts out through the API: submission, the event stream, the listing and the download."""

from __future__ import annotations

import base64
import struct
import textwrap
from typing import Any

import pytest

from tests.client import GraphQLClient, GraphQLFailure
from tests.e2e.helpers import collect, final, lines, submit

ARTIFACTS = """
query($id: ID!) { execution(id: $id) { artifacts { id name mediaType sizeBytes url createdAt } } }
"""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
# What the harness's plt.show() hook sends, done by hand: the default runtime has no matplotlib.
HAND_MADE_FIGURE = f"""
import json, os
print("before")
data = {PNG!r}
os.write(4, json.dumps({{"name": "figure-1.png", "size": len(data)}}).encode() + b"\\n" + data)
os.read(5, 1)
print("after")
"""
SVG_WITH_SCRIPT = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def run(client: GraphQLClient, script: str, **fields: Any) -> list[dict[str, Any]]:
    return await collect(client, await submit(client, textwrap.dedent(script), **fields))


def artifact_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["artifact"] for event in events if event["kind"] == "artifact"]


async def test_an_artifact_comes_between_the_lines_around_it_and_downloads(alice: GraphQLClient) -> None:
    events = await run(alice, HAND_MADE_FIGURE)
    assert [(e["kind"], e.get("text") or e.get("artifact", {}).get("name")) for e in events[2:-1]] == [
        ("line", "before"),
        ("artifact", "figure-1.png"),
        ("line", "after"),
    ]
    assert final(events)["status"] == "SUCCEEDED"
    [announced] = artifact_events(events)
    assert (announced["mediaType"], announced["sizeBytes"]) == ("image/png", len(PNG))
    assert announced["url"] == f"/artifacts/{announced['id']}"
    listed = (await alice.execute(ARTIFACTS, {"id": final(events)["id"]}))["execution"]["artifacts"]
    assert listed == [announced]
    response = await alice.download(announced["url"])
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith('attachment; filename="figure-1.png"')
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_a_plot_in_the_scientific_runtime_appears_where_it_was_drawn(alice: GraphQLClient) -> None:
    runtimes = (await alice.execute("{ runtimes { id default packages { name version } } }"))["runtimes"]
    default = next(runtime["id"] for runtime in runtimes if runtime["default"])
    [scientific] = [runtime for runtime in runtimes if runtime["id"] == f"{default}-scientific"]
    assert {"numpy", "pandas", "matplotlib", "scipy"} <= {package["name"].lower() for package in scientific["packages"]}
    events = await run(
        alice,
        """
        import matplotlib.pyplot as plt
        import pandas as pd
        frame = pd.DataFrame({"day": [1, 2, 3], "sales": [3, 5, 4]})
        print("plotting", len(frame))
        frame.plot(x="day", y="sales")
        plt.show()
        print("done")
        """,
        runtime=scientific["id"],
        limits={"memoryMiB": 512, "wallTimeMs": 60_000, "cpuTimeMs": 30_000},
    )
    assert final(events)["status"] == "SUCCEEDED", final(events)
    assert [(e["kind"], e.get("text") or e.get("artifact", {}).get("name")) for e in events[2:-1]] == [
        ("line", "plotting 3"),
        ("artifact", "figure-1.png"),
        ("line", "done"),
    ]
    [figure] = artifact_events(events)
    response = await alice.download(figure["url"])
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">I4sII", response.content[8:24]) == (13, b"IHDR", 640, 480)
    assert len(response.content) == figure["sizeBytes"]


async def test_a_replay_after_the_artifact_resumes_after_it(alice: GraphQLClient) -> None:
    execution_id = await submit(alice, HAND_MADE_FIGURE)
    events = await collect(alice, execution_id)
    seq = next(event["seq"] for event in events if event["kind"] == "artifact")
    assert [(e["seq"], e["kind"]) for e in await collect(alice, execution_id, seq - 1)][:2] == [
        (seq, "artifact"),
        (seq + 1, "line"),
    ]
    assert lines(await collect(alice, execution_id, seq)) == ["after"]


async def test_only_the_owner_can_download(alice: GraphQLClient, bob: GraphQLClient, anonymous: GraphQLClient) -> None:
    events = await run(alice, "open('/tmp/outputs/secret.txt', 'w').write('for alice')")
    [artifact] = artifact_events(events)
    assert (await alice.download(artifact["url"])).content == b"for alice"
    refused = await bob.download(artifact["url"])
    assert (refused.status_code, refused.json()["code"]) == (404, "NOT_FOUND")
    unknown = await alice.download("/artifacts/01930000-0000-7000-8000-000000000000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")
    signed_out = await anonymous.download(artifact["url"])
    assert (signed_out.status_code, signed_out.json()["code"]) == (401, "UNAUTHENTICATED")
    with pytest.raises(GraphQLFailure) as failure:
        await bob.execute(ARTIFACTS, {"id": final(events)["id"]})
    assert failure.value.code == "NOT_FOUND"


async def test_an_svg_with_a_script_is_only_ever_an_attachment(alice: GraphQLClient) -> None:
    events = await run(alice, f"open('/tmp/outputs/drawing.svg', 'w').write({SVG_WITH_SCRIPT!r})")
    [artifact] = artifact_events(events)
    response = await alice.download(artifact["url"])
    assert response.text == SVG_WITH_SCRIPT
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_symlink_to_a_host_path_yields_nothing_of_the_host(alice: GraphQLClient) -> None:
    events = await run(
        alice,
        """
        import os
        for target in ("/etc/passwd", "/proc/1/environ", "/opt/podrun/harness.py", "/root/.bashrc"):
            os.symlink(target, "/tmp/outputs/" + os.path.basename(target) + ".txt")
        print("linked")
        """,
    )
    assert lines(events) == ["linked"]
    assert artifact_events(events) == []
    assert final(events)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    "script",
    [
        """
        for i in range(1000):
            open(f"/tmp/outputs/{i:04}.txt", "w").write(str(i))
        """,
        """
        try:
            with open("/tmp/outputs/big.txt", "wb") as f:
                for _ in range(100):
                    f.write(b"x" * 1024 * 1024)
        except OSError as error:
            print("stopped:", error.strerror)
        """,
        """
        for _ in range(900):  # 0.9 MB of output, then 0.2 MB of artifact: together past the 1 MiB output limit
            print("x" * 1000)
        open("/tmp/outputs/small.txt", "w").write("y" * 200_000)
        """,
    ],
    ids=["1000-files", "100-MB", "output-and-artifacts-together"],
)
async def test_too_many_or_too_large_artifacts_end_at_the_output_limit(alice: GraphQLClient, script: str) -> None:
    events = await run(alice, script)
    execution = final(events)
    assert (execution["status"], execution["limitExceeded"], execution["outputTruncated"]) == (
        "FAILED",
        "OUTPUT",
        True,
    )
    total = sum(artifact["sizeBytes"] for artifact in artifact_events(events))
    assert len(artifact_events(events)) <= 32
    assert total <= 1024 * 1024


async def test_input_files_are_visible_and_read_only(alice: GraphQLClient) -> None:
    events = await run(
        alice,
        """
        import os
        print(open("data.csv").read().splitlines(), open("raw.bin", "rb").read() == bytes(range(256)))
        try:
            open("data.csv", "w")
        except PermissionError:
            print("read-only")
        """,
        files=[
            {"name": "data.csv", "content": b64(b"a,b\n1,2\n")},
            {"name": "raw.bin", "content": b64(bytes(range(256)))},
        ],
    )
    assert lines(events) == ["['a,b', '1,2'] True", "read-only"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([{"name": "../etc/passwd", "content": ""}], "file name"),
        ([{"name": "dir/x.txt", "content": ""}], "file name"),
        ([{"name": "main.py", "content": ""}], "file name"),
        ([{"name": ".hidden", "content": ""}], "file name"),
        ([{"name": "a.txt", "content": "not base64!"}], "base64"),
        ([{"name": "a.txt", "content": ""}, {"name": "a.txt", "content": ""}], "twice"),
        ([{"name": "big.bin", "content": b64(b"x" * (512 * 1024 + 1))}], "at most"),
        ([{"name": f"f{i}.txt", "content": ""} for i in range(17)], "at most 16 files"),
    ],
)
async def test_bad_input_files_are_refused(alice: GraphQLClient, files: list[dict[str, str]], message: str) -> None:
    with pytest.raises(GraphQLFailure) as failure:
        await submit(alice, "print(1)", files=files)
    assert failure.value.code == "BAD_USER_INPUT"
    assert message in failure.value.message


async def test_a_run_lists_its_input_files_for_its_owner_only(alice: GraphQLClient, bob: GraphQLClient) -> None:
    given = [{"name": "data.csv", "content": b64(b"a,b\n1,2\n")}, {"name": "empty.txt", "content": ""}]
    execution_id = final(await run(alice, "print(open('data.csv').read())", files=given))["id"]
    query = "query($id: ID!) { execution(id: $id) { inputFiles { name sizeBytes content } } }"
    listed = (await alice.execute(query, {"id": execution_id}))["execution"]["inputFiles"]
    assert listed == [
        {"name": "data.csv", "sizeBytes": 8, "content": given[0]["content"]},
        {"name": "empty.txt", "sizeBytes": 0, "content": ""},
    ]
    without = final(await run(alice, "print(1)"))["id"]
    assert (await alice.execute(query, {"id": without}))["execution"]["inputFiles"] == []
    with pytest.raises(GraphQLFailure) as failure:
        await bob.execute(query, {"id": execution_id})
    assert failure.value.code == "NOT_FOUND"
