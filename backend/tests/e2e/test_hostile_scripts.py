"""Hostile scripts against workers that hold secrets, one running as root and one as an unprivileged account.

Each worker starts with marker secrets in its environment, the way a production worker holds its
signing secret and database URL. From inside the sandbox a script reads every process it can see
(environment, command line), the mount table and its own credentials; calls every system
call the seccomp filter refuses; goes after the harness with ptrace, /proc and signals; and plays
the file tricks of Judge0's 2024 advisories (symlinks and chown on paths the host might touch
afterwards). The host side checks the uid the sandbox really ran as, that nothing it pointed at
changed, and that nothing of a run outlives it. The isolation cases of snekbox's and Piston's
suites (network, host files, /proc and /dev, /tmp between runs, detached children) run here too.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pwd
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyseccomp
import pytest

from podrun.runners import seccomp
from podrun.runners.sandbox_users import SUBUID_FILE, subordinate_range
from podrun.settings import Settings
from tests.client import EVENTS, GraphQLClient
from tests.databases import delete_keys, drop_database, fresh_database
from tests.e2e.helpers import collect, final, lines, submit, wait_for_status
from tests.processes import LOG_DIR, PodrunDeployment, PodrunProcess, wait_ready
from tests.unprivileged import ACCOUNT, BACKEND_DIR, install_for_account

MARKER = f"podrun-marker-{uuid.uuid4().hex}"
# What a production worker holds: a signing secret, a cloud key, the database's URL (below).
WORKER_SECRETS = {
    "PODRUN_JWT_SECRET": f"{MARKER}-signing-secret-" + "x" * 32,
    "PODRUN_HOSTILE_MARKER": MARKER,
    "AWS_SECRET_ACCESS_KEY": MARKER,
}
# The variables the local runner sets (runners/local.py); bwrap's --chdir adds PWD.
SANDBOX_ENV = {
    *("PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LD_LIBRARY_PATH", "PWD"),
    # What the harness sets for matplotlib and numeric libraries (runners/harness.py).
    *("MPLBACKEND", "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"),
}
SANDBOX_ID = "65534"
CLONE_THREAD = 0x00010000
PTRACE_GETREGS = 12


# Shown in every sandbox by design, so no secret of the host.
SYSTEM_DIRS = ("/", "/usr")


@dataclass(frozen=True)
class Target:
    """A deployment whose worker runs as `kind` ("root" or "unprivileged")."""

    kind: str
    url: str
    worker: PodrunProcess
    database_url: str
    # Host paths nothing inside a sandbox may mention: the checkout, homes, virtual environments.
    host_paths: list[str]


@pytest.fixture(scope="session")
def unprivileged_python() -> Iterator[list[str]]:
    root = Path(tempfile.mkdtemp(prefix="podrun-unprivileged-"))
    try:
        yield install_for_account(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def target(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Target]:
    kind: str = request.param
    database_url = settings.database_url.removesuffix("_test") + "_hostile_test"
    prefix = f"podrun-test-hostile-{kind}"
    fresh_database(Settings(database_url=database_url, redis_prefix=prefix))
    delete_keys(settings.redis_url, prefix)
    deployment = PodrunDeployment(
        f"hostile-{kind}", {"PODRUN_DATABASE_URL": database_url, "PODRUN_REDIS_PREFIX": prefix, **WORKER_SECRETS}
    )
    python: list[str] = request.getfixturevalue("unprivileged_python") if kind == "unprivileged" else [sys.executable]
    worker = deployment.worker(python)
    host_paths = [str(BACKEND_DIR.parent), str(Path.home()), sys.prefix, sys.base_prefix, str(LOG_DIR), python[-1]]
    # A virtual environment made from the system's own Python has /usr as its base prefix.
    host_paths = [path for path in host_paths if path not in SYSTEM_DIRS]
    try:
        wait_ready(deployment.base_url, deployment.api)
        yield Target(kind, deployment.base_url, worker, database_url, host_paths)
    finally:
        deployment.stop()
        delete_keys(settings.redis_url, prefix)
        drop_database(Settings(database_url=database_url))


@pytest.fixture
async def alice(target: Target) -> GraphQLClient:
    return await GraphQLClient(target.url).register()


async def run(client: GraphQLClient, script: str) -> tuple[dict[str, Any], list[str]]:
    """Run a script to its end: the final execution and its stdout lines."""
    events = await collect(client, await submit(client, script))
    return final(events), lines(events)


def refused_calls() -> list[tuple[str, int, list[int | str], int]]:
    """(label, number, arguments, expected errno) for every refused system call, with harmless arguments.

    The arguments are chosen so that, without the filter, the kernel would answer differently (or do
    nothing): ptrace on oneself untraced is ESRCH, clone with CLONE_THREAD alone is EINVAL, and so on.
    "PID" stands for the calling process.
    """
    native = pyseccomp.system_arch()
    overrides: dict[str, list[int | str]] = {
        "ptrace": [PTRACE_GETREGS, "PID"],
        "process_vm_readv": ["PID", 0, 0, 0, 0, 0],
        "process_vm_writev": ["PID", 0, 0, 0, 0, 0],
    }
    calls: list[tuple[str, int, list[int | str], int]] = []
    for rule in seccomp.rules():
        number = pyseccomp.resolve_syscall(native, rule.syscall)
        if number < 0:
            continue
        if not rule.conditions:
            calls.append((rule.syscall, number, overrides.get(rule.syscall, [0] * 6), rule.error))
        elif rule.syscall == "clone":
            [flag] = rule.conditions
            calls.append((f"clone {rule.reason}", number, [flag.value | CLONE_THREAD, 0, 0, 0, 0], rule.error))
    resolve = {name: pyseccomp.resolve_syscall(native, name) for name in ("personality", "socket", "ioctl")}
    calls += [
        ("personality ADDR_NO_RANDOMIZE", resolve["personality"], [0x0040000], errno.EPERM),
        ("personality READ_IMPLIES_EXEC", resolve["personality"], [0x0400000], errno.EPERM),
        ("personality high bit", resolve["personality"], [0x80040001], errno.EPERM),
        ("socket AF_VSOCK", resolve["socket"], [seccomp.AF_VSOCK, 1, 0], errno.EPERM),
        ("ioctl TIOCSTI", resolve["ioctl"], [0, seccomp.TIOCSTI, 0], errno.EPERM),
        ("ioctl TIOCLINUX", resolve["ioctl"], [0, seccomp.TIOCLINUX, 0], errno.EPERM),
    ]
    return calls


PROBE = r"""
import ctypes, json, os, socket, subprocess, threading

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def call(number, args):
    values = [os.getpid() if arg == "PID" else arg for arg in args]
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_ulong(value) for value in values])
    return 0 if result >= 0 else ctypes.get_errno()

def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as error:
        return {"errno": error.errno}

def error_of(action):
    try:
        action()
        return 0
    except OSError as error:
        return error.errno

def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False

def writable(path):
    try:
        with open(os.path.join(path, "podrun-probe"), "w") as f:
            f.write("x")
        return True
    except OSError:
        return False

pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
thread = threading.Thread(target=lambda: None)
thread.start()
thread.join()
try:
    interfaces = sorted(name for _, name in socket.if_nameindex())
except OSError:
    interfaces = []
print(json.dumps({
    "pid": os.getpid(),
    "uid": os.getuid(),
    "euid": os.geteuid(),
    "env": dict(os.environ),
    "processes": {
        pid: {name: read(f"/proc/{pid}/{name}") for name in ("environ", "cmdline")}
        for pid in pids
    },
    "mountinfo": read("/proc/self/mountinfo"),
    "status": read("/proc/self/status"),
    "calls": {label: call(number, args) for label, number, args, _ in CALLS},
    "personality_query": libc.personality(ctypes.c_ulong(0xFFFFFFFF)),
    "subprocess": subprocess.run(["/bin/echo", "forked"], capture_output=True, text=True).stdout,
    "harness": {
        "ptrace_attach": call(PTRACE_NUMBER, [16, 1, 0, 0]),
        "mem": error_of(lambda: open("/proc/1/mem", "rb").read(1)),
        "fd": error_of(lambda: os.listdir("/proc/1/fd")),
        "root": error_of(lambda: os.listdir("/proc/1/root/")),
    },
    "postgres": connects(5432),
    "redis": connects(6379),
    "interfaces": interfaces,
    "exists": {path: os.path.exists(path) for path in PATHS},
    "shadow_readable": not isinstance(read("/etc/shadow"), dict),
    "writable": {path: writable(path) for path in ("/", "/usr", "/etc", "/tmp", "/proc/sys/kernel")},
    "sysrq": error_of(lambda: open("/proc/sysrq-trigger", "w").write("h")),
}))
"""


@pytest.fixture(scope="module")
def host_marker() -> Iterator[Path]:
    """A file of the host's that no sandbox may see or change."""
    marker = Path("/tmp") / f"podrun-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    marker.chmod(0o600)
    yield marker
    marker.unlink()


@pytest.fixture(scope="module")
async def report(target: Target, host_marker: Path) -> dict[str, Any]:
    """What one hostile script saw and got from its sandbox; every probe test checks a part of it."""
    client = await GraphQLClient(target.url).register()
    paths = ["/root", "/work", "/home", "/sys", "/etc/shadow", "/etc/passwd", str(host_marker)]
    paths += ["/var/run/docker.sock", "/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/boot"]
    ptrace = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "ptrace")
    header = f"PATHS = {paths!r}\nCALLS = {refused_calls()!r}\nPTRACE_NUMBER = {ptrace}\n"
    execution, [report] = await run(client, header + PROBE)
    assert execution["status"] == "SUCCEEDED", execution
    return json.loads(report)  # type: ignore[no-any-return]


def secrets_in(text: str, target: Target) -> list[str]:
    secrets = [MARKER, target.database_url, "postgresql", "redis://", *target.host_paths]
    return [secret for secret in secrets if secret in text]


async def test_no_process_in_the_sandbox_holds_anything_of_the_worker(report: dict[str, Any], target: Target) -> None:
    processes: dict[str, dict[str, Any]] = report["processes"]
    # The harness (PID 1) and the script: nothing else, of this run or any other, is visible.
    assert sorted(processes, key=int) == ["1", str(report["pid"])]
    readable = {pid: entry["environ"] for pid, entry in processes.items() if isinstance(entry["environ"], str)}
    assert str(report["pid"]) in readable
    for pid, environ in readable.items():
        variables = dict(item.split("=", 1) for item in environ.split("\0") if item)
        assert set(variables) <= SANDBOX_ENV, (pid, variables)
        assert secrets_in(environ, target) == [], pid
    for pid, entry in processes.items():
        assert isinstance(entry["cmdline"], str)
        assert secrets_in(entry["cmdline"], target) == [], (pid, entry["cmdline"])


async def test_the_environment_is_minimal_and_holds_nothing_of_the_host(report: dict[str, Any], target: Target) -> None:
    env: dict[str, str] = report["env"]
    assert set(env) <= SANDBOX_ENV
    assert {"PATH", "HOME", "LANG"} <= set(env)
    assert env["HOME"] == "/tmp"
    assert secrets_in(json.dumps(env), target) == []


async def test_the_mount_table_shows_no_host_home_checkout_or_virtual_environment(
    report: dict[str, Any], target: Target
) -> None:
    for line in report["mountinfo"].splitlines():
        root, mount_point = line.split()[3:5]
        for path in target.host_paths:
            for field in (root, mount_point):
                assert field != path, line
                assert not field.startswith(path.rstrip("/") + "/"), line


async def test_a_seccomp_filter_is_in_force_and_refuses_each_listed_call(report: dict[str, Any]) -> None:
    status = dict(line.split(":\t", 1) for line in report["status"].splitlines() if ":\t" in line)
    assert status["Seccomp"] == "2"
    assert report["calls"] == {label: expected for label, _, _, expected in refused_calls()}
    # What scripts need still works: the personality query, fork and exec, threads (clone3 falls back).
    assert report["personality_query"] >= 0
    assert report["subprocess"] == "forked\n"


async def test_the_harness_cannot_be_traced_or_read(report: dict[str, Any]) -> None:
    assert report["harness"]["ptrace_attach"] == errno.EPERM
    assert report["harness"]["mem"] in (errno.EACCES, errno.EPERM)
    assert report["harness"]["fd"] in (errno.EACCES, errno.EPERM)
    assert report["harness"]["root"] in (errno.EACCES, errno.EPERM)


async def test_no_network_reaches_the_host(report: dict[str, Any]) -> None:
    assert (report["postgres"], report["redis"]) == (False, False)
    assert report["interfaces"] in ([], ["lo"])


async def test_host_files_and_devices_are_invisible(report: dict[str, Any], host_marker: Path) -> None:
    assert report["exists"] == {
        "/root": False,
        "/work": False,
        "/home": False,
        "/sys": False,
        "/etc/shadow": False,
        "/etc/passwd": False,
        str(host_marker): False,
        "/var/run/docker.sock": False,
        "/dev/mem": False,
        "/dev/kmsg": False,
        "/dev/sda": False,
        "/dev/vda": False,
        "/boot": False,
    }
    assert report["shadow_readable"] is False


async def test_the_script_is_not_root_and_only_tmp_is_writable(report: dict[str, Any]) -> None:
    assert (report["uid"], report["euid"]) != (0, 0)
    assert report["writable"] == {"/": False, "/usr": False, "/etc": False, "/tmp": True, "/proc/sys/kernel": False}
    assert report["sysrq"] in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS)


def host_pids_with(tag: str) -> list[int]:
    """Host processes whose command line contains `tag`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def read_proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def host_ids(pid: int) -> tuple[set[int], set[int], int]:
    """The real, effective, saved and file uids and gids of a host process, and its parent's pid."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return (
        {int(value) for value in status["Uid"].split()},
        {int(value) for value in status["Gid"].split()},
        int(status["PPid"]),
    )


async def test_the_sandbox_runs_as_a_host_uid_that_is_neither_root_nor_the_worker(
    alice: GraphQLClient, target: Target
) -> None:
    tag = f"podrun-uid-probe-{uuid.uuid4().hex}"
    script = (
        "import os, sys\nprint('ready', flush=True)\n"
        f"os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {tag!r}])\n"
    )
    execution_id = await submit(alice, script)
    await wait_for_status(alice, execution_id, "RUNNING")
    for _ in range(100):
        if found := host_pids_with(tag):
            break
        await asyncio.sleep(0.05)
    [pid] = found
    uids, gids, parent = host_ids(pid)
    # Seen from the host, the script's user namespace maps its one uid to a host uid.
    maps = [read_proc(pid, name).split() for name in ("uid_map", "gid_map")]
    # Every process between the worker and the script (bwrap, the harness) runs as that one uid.
    chain = [(uids, gids)]
    while parent != target.worker.process.pid:
        assert parent > 1, "the script is not a descendant of the worker"
        parent_uids, parent_gids, parent = host_ids(parent)
        chain.append((parent_uids, parent_gids))
    await alice.execute("mutation($id: ID!) { cancelExecution(id: $id) { status } }", {"id": execution_id})
    [uid] = uids
    [gid] = gids
    assert all(entry == ({uid}, {gid}) for entry in chain), chain
    assert maps == [[SANDBOX_ID, str(uid), "1"], [SANDBOX_ID, str(gid), "1"]]
    worker_uid = os.stat(f"/proc/{target.worker.process.pid}").st_uid
    assert uid not in (0, worker_uid)
    account = pwd.getpwnam(ACCOUNT)
    sandbox_ids = subordinate_range(SUBUID_FILE, account.pw_name, account.pw_uid)
    assert sandbox_ids is not None
    assert sandbox_ids.start < uid < sandbox_ids.start + sandbox_ids.count


async def test_signalling_every_visible_process_only_ends_the_script_itself(
    alice: GraphQLClient, target: Target
) -> None:
    script = """
import os, signal
me = os.getpid()
others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGSTOP, signal.SIGKILL):
    for pid in others:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
try:
    os.kill(-1, signal.SIGKILL)
except ProcessLookupError:
    pass
print("still here after signalling", others, flush=True)
os.kill(me, signal.SIGKILL)
"""
    execution, output = await run(alice, script)
    assert output == ["still here after signalling [1]"]
    assert (execution["status"], execution["signal"], execution["error"]) == ("FAILED", 9, None)
    assert target.worker.process.poll() is None
    after, after_output = await run(alice, "print('the worker still runs scripts')")
    assert (after["status"], after_output) == ("SUCCEEDED", ["the worker still runs scripts"])


HARNESS_ATTEMPTS = r"""
import ctypes, errno, json, os, resource, sys

libc = ctypes.CDLL(None, use_errno=True)

def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as error:
        return errno.errorcode[error.errno]

def ioprio_set(which, who):
    # ioprio_set(which, who, IOPRIO_CLASS_IDLE << 13): no wrapper in Python.
    if libc.syscall(IOPRIO_SET, which, who, 3 << 13) < 0:
        raise OSError(ctypes.get_errno(), "ioprio_set")

def write(path):
    with open(path, "w") as f:
        f.write("1000")

harness = {
    "prlimit cpu": attempt(lambda: resource.prlimit(1, resource.RLIMIT_CPU, (1, 1))),
    "prlimit nofile": attempt(lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (0, 0))),
    "setpriority process": attempt(lambda: os.setpriority(os.PRIO_PROCESS, 1, 19)),
    "setpriority group": attempt(lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(1), 19)),
    "setpriority user": attempt(lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19)),
    "sched_setaffinity": attempt(lambda: os.sched_setaffinity(1, {min(os.sched_getaffinity(0))})),
    "sched_setscheduler": attempt(lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0))),
    "sched_setparam": attempt(lambda: os.sched_setparam(1, os.sched_param(0))),
    "ioprio_set": attempt(lambda: ioprio_set(1, 1)),
    "oom_score_adj": attempt(lambda: write("/proc/1/oom_score_adj")),
}
own = {
    "setrlimit": attempt(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))),
    "prlimit": attempt(lambda: resource.prlimit(os.getpid(), resource.RLIMIT_CORE, (0, 0))),
    "setpriority": attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, 10)),
    "sched_setscheduler": attempt(lambda: os.sched_setscheduler(os.getpid(), os.SCHED_BATCH, os.sched_param(0))),
    "ioprio_set": attempt(lambda: ioprio_set(1, 0)),
}
print(json.dumps({
    "harness": harness,
    "own": own,
    "harness_priority": os.getpriority(os.PRIO_PROCESS, 1),
    "own_priority": os.getpriority(os.PRIO_PROCESS, 0),
    "own_nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
}))
sys.exit(3)
"""


async def test_the_script_cannot_change_the_harness_limits_or_scheduling(alice: GraphQLClient) -> None:
    # Before the filter refused them, prlimit(1, ...) lowered the harness's own CPU limit (the run then ended
    # ERROR, its exit status lost) and setpriority(PRIO_PROCESS, 1, 19) reniced it.
    ioprio_set = pyseccomp.resolve_syscall(pyseccomp.system_arch(), "ioprio_set")
    execution, [report] = await run(alice, f"IOPRIO_SET = {ioprio_set}\n" + HARNESS_ATTEMPTS)
    seen = json.loads(report)
    assert seen["harness"] == {
        "prlimit cpu": "EPERM",
        "prlimit nofile": "EPERM",
        "setpriority process": "EPERM",
        "setpriority group": "EPERM",
        "setpriority user": "EPERM",
        "sched_setaffinity": "EPERM",
        "sched_setscheduler": "EPERM",
        "sched_setparam": "EPERM",
        "ioprio_set": "EPERM",
        "oom_score_adj": "EACCES",
    }
    # Its own limits and priority are the script's to set.
    assert seen["own"] == dict.fromkeys(
        ("setrlimit", "prlimit", "setpriority", "sched_setscheduler", "ioprio_set"), "allowed"
    )
    assert (seen["harness_priority"], seen["own_priority"], seen["own_nofile"]) == (0, 10, [64, 64])
    assert (execution["status"], execution["exitCode"], execution["error"]) == ("FAILED", 3, None)


SHARED_MEMORY = r"""
import ctypes, errno, json, multiprocessing, os, stat
from multiprocessing import shared_memory

def fill(path):
    written = 0
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"x" * 2**20)
                written += 1
    except OSError as error:
        return [written, errno.errorcode[error.errno]]
    finally:
        if os.path.exists(path):
            os.remove(path)

block = shared_memory.SharedMemory(create=True, size=40 * 2**20)
block.buf[-1] = 7
last = block.buf[-1]
block.close()
block.unlink()
array = multiprocessing.Array(ctypes.c_char, 32 * 2**20)
array[-1] = b"x"
del array
writable = []
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    mount_point, options, fs_type = fields[4], fields[5].split(","), fields[fields.index("-") + 1]
    # Storage only: device nodes, /proc and the pseudo-terminals hold no data.
    device = os.path.exists(mount_point) and stat.S_ISCHR(os.stat(mount_point).st_mode)
    if "rw" in options and fs_type not in ("proc", "devpts") and not device:
        writable.append(mount_point)
print(json.dumps({
    "shared_memory": last,
    "writable": writable,
    "fill": {path: fill(path) for path in ("/dev/shm/fill", "/dev/fill", "/fill", "/tmp/fill")},
    "dev_null": open("/dev/null", "w").write("discarded"),
}))
"""


async def test_only_tmp_and_a_dev_shm_of_its_own_size_are_writable_and_shared_memory_works(
    alice: GraphQLClient,
) -> None:
    # Before, /dev and its /dev/shm were a writable tmpfs bounded by the memory limit alone (384 MiB written),
    # and a 16 MiB file-size rlimit failed shared memory larger than it with EFBIG.
    execution, [report] = await run(alice, SHARED_MEMORY)
    seen = json.loads(report)
    assert execution["status"] == "SUCCEEDED", execution
    assert seen == {
        "shared_memory": 7,
        "writable": ["/tmp", "/dev/shm"],
        "fill": {
            "/dev/shm/fill": [40, "ENOSPC"],
            "/dev/fill": [0, "EROFS"],
            "/fill": [0, "EROFS"],
            "/tmp/fill": [63, "ENOSPC"],
        },
        "dev_null": 9,
    }


async def test_symlink_and_chown_tricks_leave_the_host_untouched(alice: GraphQLClient, host_marker: Path) -> None:
    # Judge0 (CVE-2024-28185, CVE-2024-28189): the host followed a symlink the script planted where
    # it would later write or chown. Podrun's host never opens, writes or chowns a path in a sandbox.
    watched = [host_marker, Path("/etc/passwd"), Path("/etc/shadow")]
    before = {path: (path.read_bytes(), path.stat()) for path in watched}
    targets = [str(path) for path in watched] + ["/proc/1/root/etc/passwd", "/proc/1/cwd", "/proc/self/root"]
    script = f"""
import os
for i, target in enumerate({targets!r}):
    link = f"/tmp/link-{{i}}"
    os.symlink(target, link)
    for attempt in (lambda: os.chown(link, 0, 0), lambda: os.chmod(link, 0o777),
                    lambda: open(link, "a").write("owned"), lambda: os.link(target, f"/tmp/hard-{{i}}")):
        try:
            attempt()
        except OSError:
            pass
os.remove("/tmp/main.py")
os.symlink("/etc/passwd", "/tmp/main.py")
os.rmdir("/tmp/outputs")
os.symlink("{host_marker}", "/tmp/outputs")
print(sorted(os.listdir("/tmp")))
"""
    execution, output = await run(alice, script)
    assert execution["status"] == "SUCCEEDED", execution
    assert "host secret" not in "\n".join(output)
    after = {path: (path.read_bytes(), path.stat()) for path in watched}
    for path in watched:
        content, stat = before[path]
        assert after[path][0] == content
        assert (after[path][1].st_uid, after[path][1].st_gid, after[path][1].st_mode) == (
            stat.st_uid,
            stat.st_gid,
            stat.st_mode,
        )
        assert after[path][1].st_mtime_ns == stat.st_mtime_ns


async def test_tmp_starts_empty_for_every_run(alice: GraphQLClient) -> None:
    name = f"left-behind-{uuid.uuid4().hex}"
    first, _ = await run(alice, f"open('/tmp/{name}', 'w').write('secret of the previous run')")
    assert first["status"] == "SUCCEEDED"
    second, listing = await run(alice, "import os\nprint(sorted(os.listdir('/tmp')))")
    assert listing == ["['main.py', 'outputs']"]
    assert second["status"] == "SUCCEEDED"


async def test_detached_children_die_with_the_run(alice: GraphQLClient) -> None:
    tag = f"podrun-daemon-{uuid.uuid4().hex}"
    script = f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", {tag!r}])
    os._exit(0)
os.wait()
print("daemon started")
"""
    execution, output = await run(alice, script)
    assert (execution["status"], output) == ("SUCCEEDED", ["daemon started"])
    for _ in range(100):
        if not host_pids_with(tag):
            break
        await asyncio.sleep(0.05)
    assert host_pids_with(tag) == []


async def test_two_runs_at_once_cannot_see_each_other(alice: GraphQLClient) -> None:
    secret = uuid.uuid4().hex
    holder = await submit(
        alice,
        f"import time\nopen('/tmp/secret', 'w').write({secret!r})\nprint('holding', flush=True)\ntime.sleep(30)\n",
    )
    async for data in alice.subscribe(EVENTS, {"id": holder, "after": 0}):
        event = data["executionEvents"]
        if event["__typename"] == "OutputChunk":
            break
    seeker, output = await run(
        alice,
        "import os\nprint(sorted(os.listdir('/tmp')), sorted(p for p in os.listdir('/proc') if p.isdigit()))",
    )
    await alice.execute("mutation($id: ID!) { cancelExecution(id: $id) { status } }", {"id": holder})
    assert seeker["status"] == "SUCCEEDED"
    assert output == ["['main.py', 'outputs'] ['1', '2']"]
