"""What a submitted script can see and do: no network, nothing of the host, a minimal environment, no root."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client import GraphQLClient
from tests.conftest import TEST_ENV
from tests.e2e.helpers import collect, final, lines, submit

# The variables the local runner sets (runners/local.py bwrap_argv); nothing else may reach a script.
# bwrap's --chdir adds PWD.
SANDBOX_ENV = {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LD_LIBRARY_PATH", "PWD"}

PROBE = """
import json, os, socket

def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False

def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False

def readable(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
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

try:
    interfaces = sorted(name for _, name in socket.if_nameindex())
except OSError:
    interfaces = []
print(json.dumps({
    "postgres": connects(5432),
    "redis": connects(6379),
    "interfaces": interfaces,
    "uid": os.getuid(),
    "euid": os.geteuid(),
    "env": dict(os.environ),
    "exists": {path: exists(path) for path in PATHS},
    "shadow_readable": readable("/etc/shadow"),
    "writable": {path: writable(path) for path in ("/", "/usr", "/etc", "/tmp")},
}))
"""


@pytest.fixture(scope="module")
def host_marker() -> Iterator[Path]:
    """A file in the host's /tmp that no sandbox may see."""
    marker = Path("/tmp") / f"podrun-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    yield marker
    marker.unlink()


@pytest.fixture(scope="module")
async def probe(podrun: str, host_marker: Path) -> dict[str, Any]:
    """What one script saw of its sandbox; every test here checks a part of it."""
    alice = await GraphQLClient(podrun).register()
    paths = ["/root", "/work", "/home", "/etc/shadow", "/etc/passwd", str(host_marker), "/var/run/docker.sock"]
    events = await collect(alice, await submit(alice, f"PATHS = {paths!r}\n" + PROBE))
    assert final(events)["status"] == "SUCCEEDED", final(events)
    [report] = lines(events)
    return json.loads(report)  # type: ignore[no-any-return]


async def test_no_network_reaches_the_host(probe: dict[str, Any]) -> None:
    assert (probe["postgres"], probe["redis"]) == (False, False)
    assert probe["interfaces"] in ([], ["lo"])


async def test_host_files_are_invisible(probe: dict[str, Any], host_marker: Path) -> None:
    assert probe["exists"] == {
        "/root": False,
        "/work": False,
        "/home": False,
        "/etc/shadow": False,
        "/etc/passwd": False,
        str(host_marker): False,
        "/var/run/docker.sock": False,
    }
    assert probe["shadow_readable"] is False


async def test_the_environment_is_minimal_and_holds_nothing_of_the_host(probe: dict[str, Any]) -> None:
    env: dict[str, str] = probe["env"]
    assert set(env) <= SANDBOX_ENV
    assert {"PATH", "HOME", "LANG"} <= set(env)
    assert env["HOME"] == "/tmp"
    assert not [key for key in env if key.startswith("PODRUN_")]
    secrets = [TEST_ENV["PODRUN_JWT_SECRET"], TEST_ENV["PODRUN_DATABASE_URL"], TEST_ENV["PODRUN_REDIS_URL"]]
    assert not [value for value in env.values() for secret in secrets if secret in value]


async def test_the_script_is_not_root_and_system_files_are_read_only(probe: dict[str, Any]) -> None:
    assert probe["uid"] != 0
    assert probe["euid"] != 0
    assert (probe["writable"]["/usr"], probe["writable"]["/tmp"]) == (False, True)


async def test_only_tmp_is_writable(probe: dict[str, Any]) -> None:
    assert probe["writable"] == {"/": False, "/usr": False, "/etc": False, "/tmp": True}
