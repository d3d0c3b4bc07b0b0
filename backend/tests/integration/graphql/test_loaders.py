"""Per-row fields of a page of executions are loaded in one query each for the whole page (graphql/loaders.py)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from podrun.accounts.models import User
from podrun.accounts.sign_ins import Caller
from podrun.container import Container
from podrun.core.limits import Limits
from podrun.core.statuses import ExecutionStatus
from podrun.executions.models import Execution
from podrun.graphql.context import Context
from podrun.graphql.schema import schema
from podrun.runners.base import InputFile
from podrun.tools.models import Tool, ToolVersion, ToolVersionStatus

LIMITS = Limits(wall_time_ms=1000, cpu_time_ms=1000, memory_mib=64, output_bytes=1 << 20, processes=4)
PAGE = """
query($first: Int) {
  executions(first: $first) {
    edges { node { id owner { email } tool { id } inputFiles { name sizeBytes content } artifacts { name } } }
  }
}
"""
TOOLS = """
query($search: String) {
  tools(first: 20, search: $search) { edges { node { slug author { email } latest { version title } } } }
}
"""
ROWS = 20


@contextmanager
def statements(container: Container) -> Iterator[list[str]]:
    """The SQL statements the container's engine sends meanwhile."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    engine = container.db.get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_artifacts_and_files_of_twenty_runs_are_one_query_each(container: Container) -> None:
    async with container.users() as users:
        owner: User = await users.create_user(f"loader-{uuid.uuid4().hex[:12]}@example.com", "horse battery staple")
    async with container.executions() as executions:
        for index in range(ROWS):
            execution = await executions.repository.add(
                Execution(
                    owner_id=owner.id,
                    runtime="python-3.12",
                    script="",
                    limits=LIMITS,
                    status=ExecutionStatus.SUCCEEDED,
                    files=[InputFile(f"in-{index}.txt", f"file {index}".encode())] if index % 2 else None,
                ),
                auto_commit=True,
            )
            for name in (f"a-{index}.txt", f"b-{index}.txt"):
                await executions.artifacts.store(execution.id, name, "text/plain", b"x")
    context = Context(container=container, caller=Caller(user=owner, sign_in_id=uuid.uuid4()), authenticated=True)
    with statements(container) as sent:
        result = await schema.execute(PAGE, {"first": ROWS}, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    nodes = [edge["node"] for edge in result.data["executions"]["edges"]]
    assert len(nodes) == ROWS
    for position, node in enumerate(nodes):
        index = ROWS - 1 - position  # newest first
        assert node["owner"]["email"] == owner.email
        assert node["tool"] is None
        assert node["artifacts"] == [{"name": f"a-{index}.txt"}, {"name": f"b-{index}.txt"}]
        content = base64.b64encode(f"file {index}".encode()).decode()
        expected = [{"name": f"in-{index}.txt", "sizeBytes": len(f"file {index}"), "content": content}]
        assert node["inputFiles"] == (expected if index % 2 else [])
    assert sum("FROM artifacts" in statement for statement in sent) == 1
    assert sum("executions.files" in statement for statement in sent) == 1


async def test_the_approved_versions_of_a_page_of_tools_are_one_query(container: Container) -> None:
    async with container.users() as users:
        author: User = await users.create_user(f"tools-{uuid.uuid4().hex[:12]}@example.com", "horse battery staple")
    tag = uuid.uuid4().hex[:8]
    async with container.tools() as tools:
        session = tools.versions.session
        for index in range(ROWS):
            tool = Tool(slug=f"t{tag}-{index}", author_id=author.id, title=tag, description="", approved_version=2)
            session.add(tool)
            await session.flush()
            for number in (1, 2, 3):
                status = ToolVersionStatus.APPROVED if number < 3 else ToolVersionStatus.PENDING
                session.add(
                    ToolVersion(
                        tool_id=tool.id,
                        version=number,
                        status=status,
                        title=f"{tag} v{number}",
                        description="",
                        script="",
                        runtime="python-3.12",
                        fields=[],
                    )
                )
        await session.commit()
    context = Context(container=container, caller=Caller(user=author, sign_in_id=uuid.uuid4()), authenticated=True)
    with statements(container) as sent:
        result = await schema.execute(TOOLS, {"search": tag}, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    nodes = [edge["node"] for edge in result.data["tools"]["edges"]]
    assert [node["slug"] for node in nodes] == [f"t{tag}-{index}" for index in reversed(range(ROWS))]
    assert all(node["latest"] == {"version": 2, "title": f"{tag} v2"} for node in nodes)
    assert all(node["author"] == {"email": author.email} for node in nodes)
    assert sum("FROM tool_versions" in statement for statement in sent) == 1
