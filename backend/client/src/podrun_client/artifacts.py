"""`prun run --artifacts DIR`: each artifact of the run saved in DIR as it is produced.

The name comes from the server, which only sends plain names; it is checked again here (a file name, no
path), and a file that exists already is never overwritten: the new one gets a numbered name beside it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from podrun_client.client import ArtifactCreated, DownloadFailed, PodrunClient

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def free_path(directory: Path, name: str) -> Path:
    """`directory/name`, or `directory/stem-N.ext` for the first N that does not exist yet."""
    if not PLAIN_NAME.fullmatch(name):
        raise DownloadFailed(f"refusing the artifact name {name!r}")
    candidate = directory / name
    stem, suffix = os.path.splitext(name)
    number = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = directory / f"{stem}-{number}{suffix}"
        number += 1
    return candidate


def write_new(directory: Path, name: str, data: bytes) -> Path:
    """Write `data` to a new file named after `name` in `directory`; the path written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = free_path(directory, name)
    # O_EXCL: never through a link or over a file that appeared meanwhile.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return path


async def save(client: PodrunClient, event: ArtifactCreated, directory: Path) -> Path:
    """Download the artifact of `event` into `directory`; the path it was saved at."""
    return write_new(directory, event.artifact.name, await client.download(event.artifact.url))
