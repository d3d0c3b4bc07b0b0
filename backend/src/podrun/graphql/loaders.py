"""Per-row fields of a page of rows, each loaded in one query for the whole page (Strawberry DataLoaders).

`executions(first: 20) { … artifacts inputFiles tool }` or `tools(first: 20) { … latest }` asks a field of 20 rows
at once: a loader gathers the keys asked for in one turn of the event loop and answers them with one query in one
session. Loaders keep nothing between loads (no cache): a WebSocket's context outlives its operations, and a
run's artifacts grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from uuid import UUID

from strawberry.dataloader import DataLoader

from podrun.container import Container
from podrun.executions.models import Artifact
from podrun.kernels.models import Kernel
from podrun.runners.base import InputFile
from podrun.tools.models import Tool, ToolVersion


class Loaders:
    """The loaders of one request (or one socket)."""

    def __init__(self, container: Container) -> None:
        self.artifacts = DataLoader[UUID, list[Artifact]](partial(_artifacts, container), cache=False)
        self.input_files = DataLoader[UUID, list[InputFile]](partial(_input_files, container), cache=False)
        self.tool_versions = DataLoader[UUID, ToolVersion | None](partial(_tool_versions, container), cache=False)
        self.approved_versions = DataLoader[Tool, ToolVersion | None](
            partial(_approved_versions, container), cache=False
        )
        self.kernels = DataLoader[UUID, Kernel | None](partial(_kernels, container), cache=False)
        self.queued_cells = DataLoader[UUID, int](partial(_queued_cells, container), cache=False)


async def _artifacts(container: Container, execution_ids: Sequence[UUID]) -> list[list[Artifact]]:
    async with container.executions() as executions:
        produced = await executions.artifacts.of_executions(execution_ids)
    return [produced.get(execution_id, []) for execution_id in execution_ids]


async def _input_files(container: Container, execution_ids: Sequence[UUID]) -> list[list[InputFile]]:
    async with container.executions() as executions:
        given = await executions.input_files(execution_ids)
    return [given.get(execution_id, []) for execution_id in execution_ids]


async def _tool_versions(container: Container, version_ids: Sequence[UUID]) -> list[ToolVersion | None]:
    async with container.tools() as tools:
        versions = await tools.by_ids(version_ids)
    return [versions.get(version_id) for version_id in version_ids]


async def _approved_versions(container: Container, tools: Sequence[Tool]) -> list[ToolVersion | None]:
    async with container.tools() as service:
        approved = await service.approved(tools)
    return [approved.get(tool.id) for tool in tools]


async def _kernels(container: Container, kernel_ids: Sequence[UUID]) -> list[Kernel | None]:
    async with container.kernels() as kernels:
        found = {kernel.id: kernel for kernel in await kernels.list(Kernel.id.in_(kernel_ids))}
    return [found.get(kernel_id) for kernel_id in kernel_ids]


async def _queued_cells(container: Container, kernel_ids: Sequence[UUID]) -> list[int]:
    async with container.kernels() as kernels:
        counts = await kernels.queued_cells(kernel_ids)
    return [counts.get(kernel_id, 0) for kernel_id in kernel_ids]
