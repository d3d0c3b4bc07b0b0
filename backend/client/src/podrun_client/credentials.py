"""What `prun login` keeps: the server's URL, the email and a refresh token — never the password.

The file is `$XDG_CONFIG_HOME/podrun/credentials.json` (`~/.config/podrun/credentials.json`), readable by
its owner only (mode 0600, in a 0700 directory), and replaced atomically so concurrent `prun`s never
see half a file. A refresh token works once, so concurrent `prun`s take turns refreshing (`refreshing`):
each refreshes with the token the file holds at its turn and stores the next one before the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    """A stored sign-in."""

    url: str
    email: str
    refresh_token: str


def credentials_path() -> Path:
    """Where the sign-in is stored (the XDG config directory, `~/.config` by default)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "podrun" / "credentials.json"


def load() -> Credentials | None:
    """The stored sign-in, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(credentials_path().read_text())
        return Credentials(url=str(data["url"]), email=str(data["email"]), refresh_token=str(data["refresh_token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(credentials: Credentials) -> Path:
    """Store the sign-in, mode 0600, replacing any earlier one."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # in case a leftover file of that name had another mode
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(credentials), file)
    os.replace(temporary, path)
    return path


@contextlib.asynccontextmanager
async def refreshing() -> AsyncIterator[str | None]:
    """Wait for this sign-in's turn to refresh (other `prun`s may be refreshing); yield the newest stored token.

    Hold it until the new token is saved: the next `prun` in line then refreshes with that one.
    """
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        stored = load()
        yield stored.refresh_token if stored is not None else None
    finally:
        os.close(descriptor)  # which releases the lock


def delete() -> bool:
    """Forget the stored sign-in; False if there was none."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
