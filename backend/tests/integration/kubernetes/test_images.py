"""infra/docker/ and compose.yaml, checked as text: there is no Docker engine here to build or run them; and the
local cluster's counterpart of the scientific runtime, run in a pod."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from podrun.settings import REPO_ROOT
from tests.client import GraphQLClient
from tests.e2e.helpers import collect, final, lines, submit
from tests.kubernetes_local.fixtures import RealPodrun

DOCKER = REPO_ROOT / "infra" / "docker"
DOCKERFILES = ["backend.Dockerfile", "runtime-scientific.Dockerfile"]
# name:tag with a full x.y.z version (or uv's own x.y.z image); never "latest" or a floating major.
PINNED = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+(-[\w.-]+)?$")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last = max(index for index, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last:]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfiles_pin_their_bases_and_run_as_a_fixed_non_root_user(name: str) -> None:
    steps = instructions(DOCKER / name)
    bases = [arguments.split()[0] for step, arguments in steps if step == "FROM"]
    copied = [m for step, arguments in steps if step == "COPY" for m in re.findall(r"--from=(\S+:\S+)", arguments)]
    for image in [*bases, *copied]:
        assert PINNED.match(image), image
    users = [arguments for step, arguments in final_stage(DOCKER / name) if step == "USER"]
    assert len(users) == 1
    uid, gid = users[0].split(":")
    assert int(uid) >= 10000 or int(uid) == 65534
    assert int(gid) == int(uid)


def test_the_backend_image_is_built_with_uv_and_ships_no_build_tools() -> None:
    steps = instructions(DOCKER / "backend.Dockerfile")
    runs = " ".join(arguments for step, arguments in steps if step == "RUN")
    assert "uv sync --frozen --no-dev --no-install-project" in runs
    assert "uv sync --frozen --no-dev --no-editable" in runs
    final = final_stage(DOCKER / "backend.Dockerfile")
    final_text = " ".join(arguments for _, arguments in final)
    for tool in ("uv", "npm", "gcc", "build-essential", "pip install"):
        assert not re.search(rf"(^|[\s/]){re.escape(tool)}(\s|$)", final_text), tool
    assert "COPY --from=builder /app/.venv /app/.venv" in [f"{step} {arguments}" for step, arguments in final]
    # The unprivileged worker's sandboxes run as its subordinate uids, mapped by uidmap's helpers.
    assert re.search(r"apt-get install .*\buidmap\b", final_text)
    assert "usermod --add-subuids 1700000000-1700065535 --add-subgids 1700000000-1700065535 podrun" in final_text
    assert ("ENTRYPOINT", '["podrun"]') in final


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_copied_path_exists_and_passes_the_dockerignore(name: str) -> None:
    allowed = [
        line[1:].removesuffix("/**")
        for line in (DOCKER / f"{name}.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for step, arguments in instructions(DOCKER / name):
        if step != "COPY" or "--from=" in arguments:
            continue
        *sources, _ = arguments.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            assert any(source.rstrip("/") == entry or source.startswith(entry + "/") for entry in allowed), source


def test_the_scientific_runtime_is_pinned_hashed_and_cannot_install() -> None:
    requirements = (DOCKER / "runtime-scientific.requirements.txt").read_text()
    # One file for every Python: a pin may carry a marker (numpy==2.2.6 ; python_full_version < '3.11').
    pins = dict(re.findall(r"^([a-z][\w-]*)==(\S+)(?: ;[^\\\n]*)? \\$", requirements, re.MULTILINE))
    assert {"numpy", "pandas", "matplotlib", "scipy"} <= pins.keys()
    runs = " ".join(
        arguments for step, arguments in instructions(DOCKER / "runtime-scientific.Dockerfile") if step == "RUN"
    )
    assert "--require-hashes" in runs
    assert "pip uninstall -y pip" in runs
    assert "ensurepip" in runs
    assert "chmod -R a-w /usr/local/lib/python3.12/site-packages" in runs


def test_compose_runs_the_stack_with_health_checks_and_local_ports_only() -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    for name, service in services.items():
        assert "privileged" not in service, name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), name
        if name != "migrate":
            assert service["healthcheck"]["test"][0] == "CMD", name
    for name in ("migrate", "api", "worker"):
        service = services[name]
        assert service["build"] == {"context": ".", "dockerfile": "infra/docker/backend.Dockerfile"}
        assert service["read_only"] is True
        assert service["environment"]["PODRUN_DATABASE_URL"].endswith("@postgres:5432/podrun")
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "podrun", "worker-health"]
    assert services["worker"]["security_opt"] == ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"]
    assert services["worker"]["cap_drop"] == ["ALL"]
    # Only for the setuid newuidmap/newgidmap that map the sandboxes' subordinate uids.
    assert services["worker"]["cap_add"] == ["SETUID", "SETGID"]
    assert "security_opt" not in services["api"]


SCIENTIFIC = """\
import os, sys
import matplotlib.pyplot as plt
import numpy, pandas
frame = pandas.DataFrame({"x": numpy.arange(5), "y": numpy.arange(5) ** 2})
frame.plot(x="x", y="y").figure.savefig("/tmp/plot.png")
print(int(frame["y"].sum()), os.path.getsize("/tmp/plot.png") > 0)
try:
    open(os.path.join(os.path.dirname(numpy.__file__), "podrun-probe"), "w")
except OSError as error:
    print(type(error).__name__)
"""


async def test_the_scientific_runtime_works_in_a_pod(real_podrun: RealPodrun) -> None:
    # The local cluster's counterpart of runtime-scientific.Dockerfile (the same pinned wheels, resolved for
    # Python 3.11) under the execution pod's restrictions: read-only root, uid 65534, /tmp the only writable place.
    client = await GraphQLClient(real_podrun.deployment.base_url).register()
    # A cold pod importing numpy on a starved node can take longer than the default 10 s: the most a user may give.
    limits = {"memoryMiB": 512, "wallTimeMs": 60_000}
    execution_id = await submit(client, SCIENTIFIC, runtime="python-3.11-scientific", limits=limits)
    events = await collect(client, execution_id)
    assert (final(events)["status"], lines(events)) == ("SUCCEEDED", ["30 True", "OSError"])
