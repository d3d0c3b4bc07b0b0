"""The host uid a sandbox runs as: never root, never the worker's own, one per live sandbox.

Sandboxes run as subordinate uids (/etc/subuid), the range the system hands out for exactly this:
ids no account owns, so a script that got out of its namespaces would own no file and no process of
the host, Podrun's included. Each live sandbox gets its own uid from the range, leased host-wide
(uid_leases.py), so two runs never share one (nor a process-count rlimit), whichever worker on the
host started them.

- A worker running as root starts bubblewrap as that uid (from the subordinate range of the `podrun`
  account, which the setup creates) through `setpriv`, which sets the uid, gid and no supplementary
  groups and execs it: asking subprocess for `user=` instead would make it fork the whole worker
  (page tables of a hundred MiB and more, tens of milliseconds on the event loop) where a `vfork` does.
- A worker running as an unprivileged user cannot change its uid; it starts bubblewrap through
  `unshare --map-auto`, which maps its own subordinate range into a user namespace with the setuid
  helpers newuidmap/newgidmap, and switches to the sandbox's uid in there.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from podrun.runners.uid_leases import LeaseDirUnavailable, UidLeases

SUBUID_FILE = Path("/etc/subuid")
SUBGID_FILE = Path("/etc/subgid")
UNSHARE = "/usr/bin/unshare"
SETPRIV = "/usr/bin/setpriv"


class SandboxUsersUnavailable(RuntimeError):
    """No uid range to run sandboxes as; the message says how to get one."""


@dataclass(frozen=True, slots=True)
class IdRange:
    """A block of subordinate ids: `start` .. `start + count - 1`."""

    start: int
    count: int


def subordinate_range(path: Path, name: str, uid: int) -> IdRange | None:
    """The first block of `path` (/etc/subuid or /etc/subgid) that belongs to the account, by name or uid."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        owner, _, rest = line.strip().partition(":")
        start, _, count = rest.partition(":")
        if owner in (name, str(uid)) and start.isdigit() and count.isdigit() and int(count) > 1:
            return IdRange(int(start), int(count))
    return None


@dataclass(frozen=True, slots=True)
class SandboxUser:
    """The host identity of one sandbox, and how to start a process as it."""

    uid: int
    gid: int
    slot: int
    privileged: bool

    def command_prefix(self) -> list[str]:
        """What goes before the bubblewrap command line: the program that switches to this user and execs it."""
        if self.privileged:
            return [SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"]
        slot = str(self.slot)
        return [UNSHARE, "--user", "--map-auto", "--setuid", slot, "--setgid", slot, "--"]


@dataclass
class SandboxUsers:
    """Hands out a uid of the range that no other live sandbox on this host has, by a lease on it."""

    uids: IdRange
    gids: IdRange
    privileged: bool
    owner: str
    leases: UidLeases
    # The lease descriptor of each slot this process holds.
    held: dict[int, int] = field(default_factory=dict)

    @classmethod
    def detect(cls, account: str, lease_dir: Path) -> SandboxUsers:
        """The range to use: `account`'s when running as root, the worker user's own otherwise."""
        privileged = os.geteuid() == 0
        try:
            entry = pwd.getpwnam(account) if privileged else pwd.getpwuid(os.geteuid())
        except KeyError as exc:
            raise SandboxUsersUnavailable(
                f"the account {account!r} does not exist: run the setup (scripts/ensure-system-packages) as root"
            ) from exc
        uids = subordinate_range(SUBUID_FILE, entry.pw_name, entry.pw_uid)
        gids = subordinate_range(SUBGID_FILE, entry.pw_name, entry.pw_uid)
        if uids is None or gids is None:
            raise SandboxUsersUnavailable(
                f"the account {entry.pw_name!r} has no subordinate uid/gid range in /etc/subuid and /etc/subgid: "
                f"add one as root (usermod --add-subuids 1700000000-1700065535 "
                f"--add-subgids 1700000000-1700065535 {entry.pw_name})"
            )
        if not privileged and not Path(UNSHARE).exists():
            raise SandboxUsersUnavailable("an unprivileged worker needs util-linux's unshare and the uidmap package")
        return cls(uids=uids, gids=gids, privileged=privileged, owner=entry.pw_name, leases=UidLeases(lease_dir))

    def describe(self) -> str:
        """For `runtimes { isolation }` and the worker's start-up log."""
        return f"host uid per sandbox from {self.owner}'s subordinate ids, leased host-wide"

    def prepare(self) -> None:
        """Make sure uids can be leased: a worker checks at its start (an API process, which runs nothing, never)."""
        try:
            self.leases.prepare()
        except LeaseDirUnavailable as exc:
            raise SandboxUsersUnavailable(str(exc)) from exc

    def acquire(self) -> SandboxUser:
        """The lowest uid of the range that no live sandbox on this host holds, leased until `release`.

        Slot 0 is never used: an unprivileged worker's `unshare --map-auto` maps its own root to it.
        """
        self.prepare()  # a stat, unless the directory has gone (/run emptied)
        for slot in range(1, min(self.uids.count, self.gids.count)):
            if slot in self.held:
                continue
            lease = self.leases.take(self.uids.start + slot)
            if lease is not None:
                self.held[slot] = lease
                return SandboxUser(
                    uid=self.uids.start + slot, gid=self.gids.start + slot, slot=slot, privileged=self.privileged
                )
        raise SandboxUsersUnavailable("every uid of the sandbox range is in use")

    def release(self, user: SandboxUser) -> None:
        """The sandbox is gone; its uid may serve another, of any worker."""
        lease = self.held.pop(user.slot, None)
        if lease is not None:
            self.leases.give_back(lease)
