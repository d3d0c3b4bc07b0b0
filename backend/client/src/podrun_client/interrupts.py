"""Ctrl-C while a run or a kernel cell is on: it is stopped on the server, and prun shows how it ended.

Both handle SIGINT in the event loop, so the request goes out while the output goes on being shown.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx

from podrun_client.client import PodrunClient, error_code
from podrun_client.generated import GraphQLClientGraphQLMultiError, GraphQLClientHttpError
from podrun_client.views import View


class CancelOnInterrupt:
    """Ctrl-C cancels the run on the server; prun goes on showing it until it ends. A second Ctrl-C quits."""

    def __init__(self, client: PodrunClient, view: View) -> None:
        self._client = client
        self._view = view
        self._execution_id: str | None = None
        self._requested = False
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> CancelOnInterrupt:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._interrupted)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def follow(self, execution_id: str) -> None:
        """The run that Ctrl-C cancels (also when Ctrl-C came while it was being submitted)."""
        self._execution_id = execution_id
        if self._requested:
            self._cancel(execution_id)

    def _interrupted(self) -> None:
        if self._requested:
            raise KeyboardInterrupt  # out of the event loop: prun stops at once
        self._requested = True
        self._view.message("cancelling the run (Ctrl-C again to stop waiting)")
        if self._execution_id is not None:
            self._cancel(self._execution_id)

    def _cancel(self, execution_id: str) -> None:
        task = asyncio.create_task(self._send_cancel(execution_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_cancel(self, execution_id: str) -> None:
        try:
            await self._client.cancel_execution(id=execution_id)
        except GraphQLClientGraphQLMultiError as error:
            if error_code(error) != "CONFLICT":  # CONFLICT: it had ended already
                self._view.message(f"could not cancel: {error}")


class CellInterrupts:
    """While a cell is sent and shown: Ctrl-C interrupts it on the server; the kernel and the console go on.

    The cell ends CANCELLED with its KeyboardInterrupt traceback. Ctrl-C again while the interrupt is under
    way only says so: a cell that ignores interrupts is stopped by the server with its kernel.
    """

    def __init__(self, client: PodrunClient, view: View) -> None:
        self._client = client
        self._view = view
        self._cell_id: str | None = None
        self._requested = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._previous: Any = None

    def __enter__(self) -> CellInterrupts:
        self._previous = signal.getsignal(signal.SIGINT)
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._interrupted)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, self._previous)  # Ctrl-C between cells stops prun, as it did before

    def follow(self, cell_id: str) -> None:
        """The cell that Ctrl-C interrupts (also when Ctrl-C came while it was being sent)."""
        self._cell_id = cell_id
        if self._requested:
            self._interrupt(cell_id)

    async def settle(self) -> None:
        """Wait for an interrupt still being sent (the prompt holds the event loop)."""
        await asyncio.gather(*self._tasks)

    def _interrupted(self) -> None:
        if self._requested:
            self._view.message("interrupting the cell already (if it does not stop, its kernel is stopped)")
            return
        self._requested = True
        if self._cell_id is not None:
            self._interrupt(self._cell_id)

    def _interrupt(self, cell_id: str) -> None:
        task = asyncio.create_task(self._send(cell_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, cell_id: str) -> None:
        try:
            await self._client.cancel_execution(id=cell_id)
        except GraphQLClientGraphQLMultiError as error:
            if error_code(error) != "CONFLICT":  # CONFLICT: it had ended, or is being interrupted already
                self._view.message(f"could not interrupt the cell: {error}")
        except (httpx.TransportError, GraphQLClientHttpError) as error:
            self._view.message(f"could not interrupt the cell: {error}")
