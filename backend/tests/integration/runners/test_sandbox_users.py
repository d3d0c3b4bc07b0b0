"""Sandbox uids leased host-wide: two workers (processes, or runners in one process) never hold one uid at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from podrun.core.limits import Limits
from podrun.runners.base import SandboxSpec, sandbox_name
from podrun.runners.local import LocalRunner, LocalSandbox
from podrun.runners.sandbox_users import IdRange, SandboxUsers, SandboxUsersUnavailable
from podrun.runners.uid_leases import UidLeases
from podrun.settings import SandboxSettings, Settings

# Three usable slots (slot 0 is never handed out), far from any real range.
RANGE = IdRange(1_800_000_000, 4)
SLOT_UIDS = {RANGE.start + slot for slot in (1, 2, 3)}
LIMITS = Limits(wall_time_ms=30_000, cpu_time_ms=5_000, memory_mib=64, output_bytes=1024, processes=4)
SANDBOXES_PER_RUNNER = 6

HOLDER = """
import sys, time
from pathlib import Path
from podrun.runners.sandbox_users import IdRange, SandboxUsers
from podrun.runners.uid_leases import UidLeases

start, count, lease_dir, wanted = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
ids = IdRange(start, count)
users = SandboxUsers(uids=ids, gids=ids, privileged=True, owner="holder", leases=UidLeases(lease_dir))
print(" ".join(str(users.acquire().uid) for _ in range(wanted)), flush=True)
time.sleep(60)
"""


def worker_users(lease_dir: Path) -> SandboxUsers:
    leases = UidLeases(lease_dir)
    leases.prepare()
    return SandboxUsers(uids=RANGE, gids=RANGE, privileged=True, owner="test", leases=leases)


def test_two_workers_never_hold_one_uid_and_a_released_one_serves_again(tmp_path: Path) -> None:
    first, second = worker_users(tmp_path), worker_users(tmp_path)
    held = [first.acquire(), second.acquire(), first.acquire()]
    assert {user.uid for user in held} == SLOT_UIDS
    with pytest.raises(SandboxUsersUnavailable):
        second.acquire()
    first.release(held[0])
    assert second.acquire().uid == held[0].uid


def test_the_lease_directory_is_made_shared_and_sticky(tmp_path: Path) -> None:
    lease_dir = tmp_path / "run" / "sandbox-uids"
    worker_users(lease_dir).acquire()
    assert lease_dir.stat().st_mode & 0o7777 == 0o1777
    assert [path.name for path in lease_dir.iterdir()] == [str(RANGE.start + 1)]


def test_without_a_lease_directory_no_uid_is_handed_out_and_the_error_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "not-a-directory").write_text("")
    lease_dir = tmp_path / "not-a-directory" / "sandbox-uids"
    users = SandboxUsers(uids=RANGE, gids=RANGE, privileged=True, owner="test", leases=UidLeases(lease_dir))
    for attempt in (users.prepare, users.acquire):
        with pytest.raises(SandboxUsersUnavailable, match=f"install -d -m 1777 {lease_dir}"):
            attempt()
    assert users.held == {}


def test_another_process_leases_are_respected_until_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(RANGE.start), str(RANGE.count), str(tmp_path), "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        held_elsewhere = {int(uid) for uid in holder.stdout.readline().split()}
        users = worker_users(tmp_path)
        mine = users.acquire()
        assert mine.uid not in held_elsewhere
        assert {mine.uid} | held_elsewhere == SLOT_UIDS
        with pytest.raises(SandboxUsersUnavailable):
            users.acquire()
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's locks: no clean-up needed to lease its uids again.
    assert {users.acquire().uid, users.acquire().uid} == held_elsewhere


def host_uid(pid: int) -> int:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    real, effective, saved, filesystem = (int(value) for value in status["Uid"].split())
    assert real == effective == saved == filesystem
    return real


async def start_sleeping(runner: LocalRunner) -> LocalSandbox:
    runtime = next(runtime.id for runtime in runner.runtimes() if runtime.default)
    script = "import time\ntime.sleep(30)\n"
    spec = SandboxSpec(name=sandbox_name(uuid.uuid4()), runtime_id=runtime, script=script, stdin=None, limits=LIMITS)
    sandbox = await runner.start(spec)
    assert isinstance(sandbox, LocalSandbox), await sandbox.wait()
    return sandbox


async def test_sandboxes_of_two_runners_on_one_host_never_share_a_uid() -> None:
    # Two runners, as two workers on one host would be: each its own SandboxUsers, one lease directory.
    runners = [LocalRunner(Settings(jwt_secret="test", sandbox=SandboxSettings(warm_pool_size=0))) for _ in range(2)]
    sandboxes: list[LocalSandbox] = []
    try:
        for started in asyncio.as_completed(
            [start_sleeping(runner) for runner in runners for _ in range(SANDBOXES_PER_RUNNER)]
        ):
            sandboxes.append(await started)
        uids = [host_uid(sandbox.process.pid) for sandbox in sandboxes]
    finally:
        for sandbox in sandboxes:
            await sandbox.kill()
            await sandbox.wait()
        for runner in runners:
            await runner.close()
    assert len(set(uids)) == len(uids) == 2 * SANDBOXES_PER_RUNNER
    assert all(runner.users.held == {} for runner in runners)
