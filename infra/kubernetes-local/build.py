"""Building what the local cluster needs, once, into CACHE: Debian packages, Kubernetes binaries, images.

Kubernetes 1.20 is built offline from Debian bookworm's source package `kubernetes` (the full
upstream tree with `vendor/`), fetched with apt through a private sources list (deb-src entries for
the same archives as the machine's own), so nothing but Debian's archive is needed. etcd,
containerd, runc and the CNI plugins are Debian packages.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import images
from common import BIN, CACHE, KUBERNETES_BINARIES, KUBERNETES_VERSION, locked, log, remove_tree, run

# What the running cluster needs, and what only building it needs.
RUNTIME_PACKAGES = ("etcd-server", "containerd", "runc", "containernetworking-plugins", "openssl", "iproute2")
BUILD_PACKAGES = ("golang-go", "gcc", "libc6-dev", "make", "dpkg-dev", "debootstrap")
SOURCE_PACKAGE = "kubernetes"
# The upstream version inside Debian's version string ("1.20.5+really1.20.2-1.1+deb12u1").
SOURCE_UPSTREAM = re.compile(r"^Version: \S*really" + re.escape(KUBERNETES_VERSION) + r"-\S+$", re.MULTILINE)
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
BUILD_LOCK = CACHE / "build.lock"
BUILD_LOG = CACHE / "build.log"


def binaries_ready() -> bool:
    """Whether every Kubernetes binary (and the pause program) is in the cache."""
    return all((BIN / name).is_file() for name in (*KUBERNETES_BINARIES, "pause"))


def ready() -> bool:
    """Whether `up` can start without building anything."""
    return binaries_ready() and images.ready()


def missing_packages(names: tuple[str, ...]) -> list[str]:
    """The Debian packages among `names` that are not installed."""
    missing = []
    for name in names:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", name], capture_output=True, text=True, check=False
        )
        if status.stdout.strip() != "installed":
            missing.append(name)
    return missing


def install_packages(names: tuple[str, ...]) -> None:
    """apt-get install what is missing of `names` (services are not started: there is no init system here
    that would, and Debian's policy-rc.d is honoured where there is one)."""
    missing = missing_packages(names)
    if not missing:
        return
    log("installing Debian packages", packages=",".join(missing))
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    run([*apt, "update"])
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run([*apt, "install", "-y", "--no-install-recommends", *missing], env=env)


def build(*, with_images: bool = True) -> None:
    """Build whatever is missing from the cache; another build running at the same time is waited for."""
    if ready():
        return
    with locked(BUILD_LOCK, "waiting for another build of the local cluster (see its log)"):
        install_packages(RUNTIME_PACKAGES + BUILD_PACKAGES)
        if not binaries_ready():
            build_binaries()
        if with_images:
            images.build_all()


def build_binaries() -> None:
    """Fetch Debian's source package, build the control plane, the kubelet and kubectl, and the pause program."""
    work = CACHE / "work"
    remove_tree(work)
    work.mkdir(parents=True)
    started = time.monotonic()
    try:
        tree = fetch_source(work)
        log("building Kubernetes from source (4 to 9 minutes on 2 cores)", tree=tree)
        gopath = work / "gopath"
        (gopath / "src" / "k8s.io").mkdir(parents=True)
        (gopath / "src" / "k8s.io" / "kubernetes").symlink_to(tree)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "GOPATH": str(gopath),
            "GOCACHE": str(work / "gocache"),
            "GOFLAGS": "-mod=vendor",
            "GOPROXY": "off",
            "CGO_ENABLED": "0",
        }
        what = " ".join(f"cmd/{name}" for name in KUBERNETES_BINARIES)
        run(["make", f"WHAT={what}"], cwd=gopath / "src" / "k8s.io" / "kubernetes", env=env)
        staging = BIN.with_name("bin.new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in KUBERNETES_BINARIES:
            shutil.copy2(tree / "_output" / "bin" / name, staging / name)
        run(["gcc", "-Os", "-static", "-DVERSION=podrun", "-o", staging / "pause", tree / "build/pause/linux/pause.c"])
        shutil.rmtree(BIN, ignore_errors=True)
        staging.rename(BIN)
        log("Kubernetes binaries built", seconds=round(time.monotonic() - started), into=BIN)
    finally:
        remove_tree(work)


def fetch_source(work: Path) -> Path:
    """Debian's `kubernetes` source package, unpacked (Debian's patches applied) in `work`; the tree's path."""
    sources = work / "apt-sources"
    lists = work / "apt-lists"
    sources.mkdir()
    (lists / "partial").mkdir(parents=True)
    (sources / "source.sources").write_text(deb_src_entries())
    apt = [
        "apt-get",
        "-q",
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", f"Dir::Etc::SourceParts={sources}",
        "-o", f"Dir::State::Lists={lists}",
    ]  # fmt: skip
    log("fetching Debian's source package", package=SOURCE_PACKAGE)
    run([*apt, "update"])
    run([*apt, "source", "--download-only", SOURCE_PACKAGE], cwd=work)
    [dsc] = work.glob(f"{SOURCE_PACKAGE}_*.dsc")
    if not SOURCE_UPSTREAM.search(dsc.read_text()):
        raise RuntimeError(f"{dsc.name} is not Kubernetes {KUBERNETES_VERSION}; the build recipe needs updating")
    # apt already checked the files against the archive's signed index; dpkg-source only lacks the keyring.
    run(["dpkg-source", "-x", dsc.name, "tree"], cwd=work)
    return work / "tree"


def deb_src_entries() -> str:
    """deb822 `deb-src` stanzas for every `deb` archive this machine uses (same URIs, suites, keys)."""
    stanzas = []
    for path in _apt_source_files():
        if path.suffix == ".sources":
            for stanza in path.read_text().split("\n\n"):
                fields = _deb822(stanza)
                if "deb" in fields.get("Types", "").split():
                    fields["Types"] = "deb-src"
                    stanzas.append(fields)
        else:
            stanzas.extend(_one_line_entries(path.read_text()))
    if not stanzas:
        raise RuntimeError("no Debian archive found in /etc/apt to fetch the Kubernetes source package from")
    return "\n".join("".join(f"{key}: {value}\n" for key, value in stanza.items()) for stanza in stanzas)


def _apt_source_files() -> list[Path]:
    files, directory = APT_SOURCES
    found = [files] if files.is_file() else []
    if directory.is_dir():
        found += sorted(p for p in directory.iterdir() if p.suffix in (".list", ".sources"))
    return found


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace() and key:
            fields[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def _one_line_entries(text: str) -> list[dict[str, str]]:
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 4 or words[0] != "deb":
            continue
        options: dict[str, str] = {}
        if words[1].startswith("["):
            end = next(i for i, word in enumerate(words) if word.endswith("]"))
            for option in " ".join(words[1 : end + 1]).strip("[]").split():
                name, _, value = option.partition("=")
                if name == "signed-by":
                    options["Signed-By"] = value
            words = [words[0], *words[end + 1 :]]
        entries.append(
            {"Types": "deb-src", "URIs": words[1], "Suites": words[2], "Components": " ".join(words[3:]), **options}
        )
    return entries
