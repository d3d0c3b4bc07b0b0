"""Files in and artifacts out, through real bubblewrap sandboxes: the harness's side and the local runner's."""

from __future__ import annotations

import ast
import tempfile
import textwrap
import uuid
from collections.abc import AsyncIterator

import pytest

from podrun.core.limits import Limits
from podrun.core.output import Stream
from podrun.runners.base import (
    ArtifactCaps,
    ArtifactOutput,
    InputFile,
    OutputBytes,
    SandboxOutput,
    SandboxResult,
    SandboxSpec,
    sandbox_name,
)
from podrun.runners.local import LocalRunner, LocalSandbox
from podrun.settings import SandboxSettings, Settings

LIMITS = Limits(wall_time_ms=20_000, cpu_time_ms=10_000, memory_mib=256, output_bytes=8 * 1024 * 1024, processes=16)
CAPS = ArtifactCaps(count=32, total_bytes=4 * 1024 * 1024)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300


@pytest.fixture(scope="module", params=[0, 2], ids=["cold", "warm"])
async def runner(request: pytest.FixtureRequest) -> AsyncIterator[LocalRunner]:
    runner = LocalRunner(Settings(jwt_secret="test-secret", sandbox=SandboxSettings(warm_pool_size=request.param)))
    await runner.open("test-worker")
    yield runner
    await runner.close()


async def run(
    runner: LocalRunner, script: str, *, files: tuple[InputFile, ...] = (), caps: ArtifactCaps = CAPS
) -> tuple[list[SandboxOutput], SandboxResult]:
    """Everything the sandbox yielded, in order, and how it ended."""
    default = next(runtime.id for runtime in runner.runtimes() if runtime.default)
    spec = SandboxSpec(
        name=sandbox_name(uuid.uuid4()),
        runtime_id=default,
        script=textwrap.dedent(script),
        stdin=b"",
        limits=LIMITS,
        files=files,
        artifact_caps=caps,
    )
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, LocalSandbox), await sandbox.wait()
    await sandbox.close_stdin()
    outputs = [output async for output in sandbox.output()]
    return outputs, await sandbox.wait()


def artifacts(outputs: list[SandboxOutput]) -> list[ArtifactOutput]:
    return [output for output in outputs if isinstance(output, ArtifactOutput)]


def stdout(outputs: list[SandboxOutput]) -> bytes:
    return b"".join(o.data for o in outputs if isinstance(o, OutputBytes) and o.stream is Stream.STDOUT)


async def test_files_in_outputs_come_back_after_the_exit_by_name(runner: LocalRunner) -> None:
    outputs, result = await run(
        runner,
        """
        import json, os
        os.makedirs("/tmp/outputs/nested")
        with open("/tmp/outputs/table.csv", "w") as f: f.write("a,b\\n1,2\\n")
        with open("/tmp/outputs/data.json", "w") as f: json.dump({"x": 1}, f)
        with open("/tmp/outputs/notes.txt", "wb") as f: pass
        with open("/tmp/outputs/picture.svg", "w") as f: f.write("<svg/>")
        with open("/tmp/outputs/program.exe", "w") as f: f.write("not an artifact type")
        with open("/tmp/outputs/nested/deep.txt", "w") as f: f.write("directories are not walked")
        print("done")
        """,
    )
    assert result.exit_code == 0
    assert isinstance(outputs[-1], ArtifactOutput)  # after every line of output
    assert stdout(outputs) == b"done\n"
    assert [(a.name, a.media_type, a.data, a.refused) for a in artifacts(outputs)] == [
        ("data.json", "application/json", b'{"x": 1}', False),
        ("notes.txt", "text/plain", b"", False),
        ("picture.svg", "image/svg+xml", b"<svg/>", False),
        ("table.csv", "text/csv", b"a,b\n1,2\n", False),
    ]


async def test_links_and_special_files_in_outputs_yield_nothing(runner: LocalRunner) -> None:
    with tempfile.NamedTemporaryFile(dir="/tmp", suffix=".txt") as host_file:
        host_file.write(b"host secret")
        host_file.flush()
        outputs, result = await run(
            runner,
            f"""
            import os
            os.symlink({host_file.name!r}, "/tmp/outputs/host.txt")
            os.symlink("/opt/podrun/harness.py", "/tmp/outputs/harness.txt")
            os.symlink("/proc/1/environ", "/tmp/outputs/environ.txt")
            os.mkfifo("/tmp/outputs/fifo.txt")
            os.link("/tmp/main.py", "/tmp/outputs/hardlink.txt")
            """,
        )
    assert result.exit_code == 0
    # A hard link is a regular file of the sandbox's own (its script); links to anything else give nothing.
    assert [a.name for a in artifacts(outputs)] == ["hardlink.txt"]
    assert b"host secret" not in artifacts(outputs)[0].data


async def test_outputs_as_a_link_to_elsewhere_yields_nothing(runner: LocalRunner) -> None:
    outputs, result = await run(
        runner,
        """
        import os
        os.rmdir("/tmp/outputs")
        os.makedirs("/tmp/elsewhere")
        with open("/tmp/elsewhere/a.txt", "w") as f: f.write("a")
        os.symlink("/tmp/elsewhere", "/tmp/outputs")
        """,
    )
    assert result.exit_code == 0
    assert artifacts(outputs) == []


async def test_a_thousand_files_stop_at_the_count_cap(runner: LocalRunner) -> None:
    outputs, result = await run(
        runner,
        """
        for i in range(1000):
            with open(f"/tmp/outputs/{i:04}.txt", "w") as f: f.write(str(i))
        """,
        caps=ArtifactCaps(count=5, total_bytes=1024 * 1024),
    )
    assert result.exit_code == 0
    sent = artifacts(outputs)
    expected = [(f"{i:04}.txt", str(i).encode(), False) for i in range(5)] + [("0005.txt", b"", True)]
    assert [(a.name, a.data, a.refused) for a in sent] == expected


async def test_a_large_file_is_refused_without_being_sent(runner: LocalRunner) -> None:
    outputs, _ = await run(
        runner,
        """
        with open("/tmp/outputs/small.txt", "w") as f: f.write("small")
        with open("/tmp/outputs/zbig.txt", "wb") as f:
            f.write(b"x" * (10 * 1024 * 1024))
        """,
        caps=ArtifactCaps(count=32, total_bytes=1024 * 1024),
    )
    assert [(a.name, a.data, a.size, a.refused) for a in artifacts(outputs)] == [
        ("small.txt", b"small", 5, False),
        ("zbig.txt", b"", 10 * 1024 * 1024, True),
    ]


async def test_a_figure_sent_over_the_pipe_comes_between_the_lines_around_it(runner: LocalRunner) -> None:
    # What the harness's matplotlib hook does at plt.show(), done by hand: the plain runtime has no matplotlib.
    outputs, result = await run(
        runner,
        f"""
        import json, os, sys
        print("before")
        sys.stdout.write("partial ")
        data = {PNG!r}
        os.write(4, json.dumps({{"name": "figure-1.png", "size": len(data)}}).encode() + b"\\n")
        view = memoryview(data)
        while view:
            view = view[os.write(4, view):]
        assert os.read(5, 1) == b"."
        print("after")
        """,
    )
    assert result.exit_code == 0
    first_artifact = next(i for i, output in enumerate(outputs) if isinstance(output, ArtifactOutput))
    before = b"".join(output.data for output in outputs[:first_artifact])
    assert before == b"before\npartial "
    assert artifacts(outputs) == [ArtifactOutput("figure-1.png", "image/png", PNG, len(PNG))]
    assert stdout(outputs) == b"before\npartial after\n"


@pytest.mark.parametrize(
    "announcement",
    [b"not json\n", b'{"name": "../x.png", "size": 1}\n', b'{"name": "x.exe", "size": 1}\n', b"x" * 5000],
)
async def test_garbage_on_the_figure_pipe_only_closes_it(runner: LocalRunner, announcement: bytes) -> None:
    outputs, result = await run(
        runner,
        f"""
        import os
        try:
            os.write(4, {announcement!r})
        except BrokenPipeError:
            pass
        with open("/tmp/outputs/still.txt", "w") as f: f.write("sent")
        print("ok")
        """,
    )
    assert (result.exit_code, result.error) == (0, None)
    assert stdout(outputs) == b"ok\n"
    assert [a.name for a in artifacts(outputs)] == ["still.txt"]


async def test_input_files_are_visible_and_read_only(runner: LocalRunner) -> None:
    files = (InputFile("data.csv", b"a,b\n1,2\n"), InputFile("blob.bin", bytes(range(256))))
    outputs, result = await run(
        runner,
        """
        import os
        print(sorted(name for name in os.listdir(".") if not name.startswith(".")))
        print(open("data.csv").read() == "a,b\\n1,2\\n", open("blob.bin", "rb").read() == bytes(range(256)))
        for name in ("data.csv", "blob.bin"):
            try:
                open(name, "a").write("more")
                print("written")
            except PermissionError:
                print("read-only")
        """,
        files=files,
    )
    assert result.exit_code == 0, outputs
    lines = stdout(outputs).decode().splitlines()
    assert ast.literal_eval(lines[0]) == ["blob.bin", "data.csv", "main.py", "outputs"]
    assert lines[1:] == ["True True", "read-only", "read-only"]
