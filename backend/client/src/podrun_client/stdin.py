"""Passing prun's own standard input to a running script through `sendInput`, then EOF.

A pipe or file goes over as it is read; a terminal (in its usual line mode) delivers a line each time
Enter is pressed, and Ctrl-D ends the input.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import threading
from collections.abc import AsyncIterator

from podrun_client.client import PodrunClient, error_code
from podrun_client.generated import GraphQLClientGraphQLMultiError

# Below the server's 64 KiB per sendInput even when every byte decodes to a 3-byte replacement character.
CHUNK_BYTES = 16 * 1024


async def forward_stdin(client: PodrunClient, execution_id: str, fd: int = 0) -> None:
    """Send everything read from `fd` to the run, then EOF; stop quietly once the run no longer takes input."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        async for chunk in read_chunks(fd):
            text = decoder.decode(chunk)
            if text:
                await client.send_input(id=execution_id, data=text, eof=False)
        await client.send_input(id=execution_id, data=decoder.decode(b"", final=True), eof=True)
    except GraphQLClientGraphQLMultiError as error:
        if error_code(error) != "CONFLICT":  # CONFLICT: the run has ended, or its stdin was closed
            raise


async def read_chunks(fd: int) -> AsyncIterator[bytes]:
    """What `fd` delivers, chunk by chunk as it comes, until end of file.

    The reads happen in a daemon thread, one chunk ahead at most: a read blocked on a terminal never
    delays prun's exit, and a fast pipe is read no faster than its chunks are sent.
    """
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    wanted = threading.Semaphore(0)

    def read() -> None:
        while True:
            wanted.acquire()
            try:
                chunk = os.read(fd, CHUNK_BYTES)
            except OSError:  # a closed or unreadable stdin ends the input
                chunk = b""
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            except RuntimeError:  # the event loop is gone: prun is exiting
                return
            if not chunk:
                return

    threading.Thread(target=read, name="prun-stdin", daemon=True).start()
    while True:
        wanted.release()
        chunk = await chunks.get()
        if not chunk:
            return
        yield chunk
