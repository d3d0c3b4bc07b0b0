"""Host-wide leases on sandbox uids: one flock'd file per uid, so no two live sandboxes on a host share one.

Every worker on a host (root or not, of any account) takes a uid for a sandbox by locking the file
named after it in one directory, and keeps the lock until the sandbox has ended. The kernel drops a
lock when its holder closes the file or dies, so a crashed worker's leases need no clean-up, and
nothing is ever unlinked (which would let two holders lock two files of one name). The directory is
world-writable and sticky (like /tmp) so that workers of different accounts meet in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

SHARED_DIR_MODE = 0o1777
LEASE_FILE_MODE = 0o644


class LeaseDirUnavailable(RuntimeError):
    """The lease directory is missing and cannot be made; the message says how to make it."""


class UidLeases:
    """Leases on host uids, shared with every other worker on this host that uses the same directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        """Make the directory (world-writable and sticky) if it is missing; refuse to go on without it."""
        if self.directory.is_dir():
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # mkdir's mode is masked by the umask, and the sticky bit is not always kept: set it explicitly.
            self.directory.chmod(SHARED_DIR_MODE)
        except OSError as exc:
            raise LeaseDirUnavailable(
                f"the sandbox uid lease directory {self.directory} is missing and cannot be made "
                f"({type(exc).__name__}): make it as root (install -d -m 1777 {self.directory}) "
                "or set PODRUN_SANDBOX__UID_LEASE_DIR"
            ) from exc

    def take(self, uid: int) -> int | None:
        """The descriptor that holds the lease on `uid` (closing it gives the lease back); None if it is taken."""
        try:
            fd = _open_lease_file(self.directory / str(uid))
        except OSError as exc:
            # A file this account may not open (or something planted): that uid is not ours to use.
            log.warning("sandbox uid lease file not opened", uid=uid, error=type(exc).__name__)
            return None
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
        except OSError:
            pass  # locked: another live sandbox's
        os.close(fd)
        return None

    @staticmethod
    def give_back(fd: int) -> None:
        """End a lease taken by `take`."""
        with contextlib.suppress(OSError):
            os.close(fd)


def _open_lease_file(path: Path) -> int:
    """Open the lease file, making it if it is missing.

    An existing file is opened without O_CREAT: with fs.protected_regular, O_CREAT on another account's
    file in a sticky directory fails even when it exists (and even for root).
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    while True:
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            pass
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, LEASE_FILE_MODE)
        except FileExistsError:
            continue  # another worker made it first
