"""`prun tools` and `prun tool`: the catalog, and a tool run with --set and --file, refused as `prun run` is."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from podrun_client import PodrunClient

from tests.e2e.podrun_client.conftest import Deployment
from tests.e2e.podrun_client.prun import Prun

PASSWORD = "admin horse battery staple"
SCRIPT = textwrap.dedent(
    """\
    import csv, json, sys
    inputs = json.load(open("/tmp/inputs.json"))
    with open("/tmp/inputs/" + inputs["marks"]) as marks:
        passed = [row["name"] for row in csv.DictReader(marks) if float(row["mark"]) >= inputs["threshold"]]
    print("passed:", ", ".join(passed))
    sys.exit(3 if inputs["strict"] else 0)
    """
)
FIELDS = [
    {"name": "threshold", "label": "Pass mark", "kind": "NUMBER", "required": True, "min": 0, "max": 100},
    {"name": "strict", "label": "Strict", "kind": "BOOLEAN"},
    {"name": "marks", "label": "Marks", "kind": "FILE", "required": True, "accept": [".csv"]},
]


async def graphql(client: PodrunClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await client.execute(query, variables=variables)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def slug(deployment: Deployment) -> str:
    """An approved tool, published by a new admin (`podrun create-user --admin`, as an operator makes one); the
    tests only run it, so they share it."""
    email = f"admin-{uuid.uuid4().hex[:12]}@example.com"
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "podrun.cli", "create-user", "--email", email, "--password", PASSWORD, "--admin"],
        env={**os.environ, **deployment.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    name = f"passed-{uuid.uuid4().hex[:8]}"
    async with PodrunClient(deployment.base_url) as admin:
        await admin.sign_in(email, PASSWORD)
        saved = await graphql(
            admin, 'mutation($s: String!) { saveScript(input: {name: "t", script: $s}) { id } }', {"s": SCRIPT}
        )
        tool = {"scriptId": saved["saveScript"]["id"], "slug": name, "title": "Who passed", "description": "Marks"}
        published = await graphql(
            admin,
            "mutation($i: PublishToolInput!) { publishTool(input: $i) { id } }",
            {"i": {**tool, "fields": FIELDS}},
        )
        await graphql(
            admin,
            "mutation($id: ID!) { reviewToolVersion(id: $id, approve: true) { status } }",
            {"id": published["publishTool"]["id"]},
        )
    return name


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    path = tmp_path / "marks.csv"
    path.write_text("name,mark\nAda,91\nBert,48\nCleo,75\n")
    return path


async def test_tools_lists_the_catalog(prun: Prun, slug: str) -> None:
    listed = await prun.run("tools", "--search", slug)
    assert listed.process.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["SLUG", "VERSION", "TITLE", "AUTHOR"]
    assert (row.split()[:4], row.split()[-1].startswith("admin-")) == ([slug, "1", "Who", "passed"], True)


async def test_a_tool_runs_with_values_and_a_file_and_exits_with_the_scripts_code(
    prun: Prun, slug: str, marks: Path
) -> None:
    ran = await prun.run("tool", slug, "--set", "threshold=60", "--file", f"marks={marks}")
    assert (ran.process.returncode, ran.stdout) == (0, "passed: Ada, Cleo\n"), ran.stderr
    strict = await prun.run("tool", slug, "--set", "threshold=80.5", "--set", "strict=yes", "--file", f"marks={marks}")
    assert (strict.process.returncode, strict.stdout) == (3, "passed: Ada\n"), strict.stderr
    as_json = await prun.run(
        "tool", slug, "--json", "--version", "1", "--set", "threshold=0", "--file", f"marks={marks}"
    )
    assert as_json.process.returncode == 0
    assert list(as_json.json_lines()[0]) == ["runTool"]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--set", "threshold=abc"], "prun: BAD_USER_INPUT: threshold: must be a number\n"),
        (["--set", "threshold=101"], "prun: BAD_USER_INPUT: threshold: must be at most 100\n"),
        (["--set", "threshold=50", "--set", "strict=maybe"], "prun: BAD_USER_INPUT: strict: must be true or false\n"),
        (["--set", "threshold=50", "--set", "extra=1"], "prun: BAD_USER_INPUT: extra: the form has no such field\n"),
        (["--set", "threshold"], "prun: --set takes name=value, not 'threshold'\n"),
    ],
)
async def test_a_wrong_value_exits_2_naming_its_field(
    prun: Prun, slug: str, marks: Path, args: list[str], stderr: str
) -> None:
    ran = await prun.run("tool", slug, *args, "--file", f"marks={marks}")
    assert (ran.process.returncode, ran.stderr, ran.stdout) == (2, stderr, "")


async def test_a_missing_file_or_tool_exits_2(prun: Prun, slug: str, tmp_path: Path) -> None:
    missing = await prun.run("tool", slug, "--set", "threshold=1", "--file", f"marks={tmp_path / 'none.csv'}")
    assert missing.process.returncode == 2
    assert missing.stderr.startswith(f"prun: cannot read {tmp_path / 'none.csv'}: ")
    unknown = await prun.run("tool", "no-such-tool", "--set", "threshold=1")
    assert (unknown.process.returncode, unknown.stderr) == (2, "prun: NOT_FOUND: tool not found\n")
    without_file = await prun.run("tool", slug, "--set", "threshold=1")
    assert (without_file.process.returncode, without_file.stderr) == (2, "prun: BAD_USER_INPUT: marks: is required\n")
