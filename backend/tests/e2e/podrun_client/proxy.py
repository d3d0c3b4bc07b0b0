"""A TCP proxy in front of the API whose connections a test can cut, as a flaky network would."""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the API; `cut()` aborts every open connection but keeps listening."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def wait_for_connection(self, beyond: int, timeout: float = 30) -> None:
        """Until more than `beyond` connections have been made."""
        async with asyncio.timeout(timeout):
            while self.connections <= beyond:  # noqa: ASYNC110 - the count is a plain attribute
                await asyncio.sleep(0.01)

    def cut(self) -> int:
        """Reset every open connection (no close frame, no FIN); how many there were."""
        writers = list(self._open)
        for writer in writers:
            writer.transport.abort()
        self._open.clear()
        return len(writers) // 2

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._open.update((client_writer, upstream_writer))
        await asyncio.gather(
            _pump(client_reader, upstream_writer), _pump(upstream_reader, client_writer), return_exceptions=True
        )
        for writer in (client_writer, upstream_writer):
            self._open.discard(writer)
            writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    if not writer.is_closing() and writer.can_write_eof():
        writer.write_eof()
