"""Container images without a registry or a Docker engine: root file systems packed as OCI archives.

The runtime images are Debian bookworm root file systems made with `debootstrap --variant=minbase`:
Debian's Python 3.11, and the same with Debian's numpy, pandas and matplotlib (the local counterpart
of infra/docker/runtime-scientific.Dockerfile, whose pinned wheels are for Python 3.12); the pause
image holds only the static `pause` program built from the Kubernetes tree. Each is written as an
OCI image layout in a tar archive (one uncompressed layer, a config, a manifest, an index naming the
image) that `ctr images import` loads into containerd; pods use them with `imagePullPolicy: Never`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from common import BIN, CACHE, IMAGES, log, remove_tree, run

PAUSE_IMAGE = "podrun.local/pause:3.4"
RUNTIME_IMAGE = "podrun.local/runtime-python:3.11"
SCIENTIFIC_IMAGE = "podrun.local/runtime-scientific:3.11"
ARCHIVES = {
    PAUSE_IMAGE: IMAGES / "pause.tar",
    RUNTIME_IMAGE: IMAGES / "runtime-python-3.11.tar",
    SCIENTIFIC_IMAGE: IMAGES / "runtime-scientific-3.11.tar",
}
# Runtime id (as in infra/k8s/overlays/local) -> image, and the Debian packages in it besides python3.
RUNTIMES = {"python-3.11": RUNTIME_IMAGE, "python-3.11-scientific": SCIENTIFIC_IMAGE}
PACKAGES = {RUNTIME_IMAGE: [], SCIENTIFIC_IMAGE: ["python3-numpy", "python3-pandas", "python3-matplotlib"]}
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
RUNTIME_PYTHON = "python3.11"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def ready() -> bool:
    """Whether every image archive is in the cache."""
    return all(path.is_file() for path in ARCHIVES.values())


def build_all() -> None:
    """Build the image archives that are missing."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    if not ARCHIVES[PAUSE_IMAGE].is_file():
        build_pause()
    for image in RUNTIMES.values():
        if not ARCHIVES[image].is_file():
            build_runtime(image)


def build_pause() -> None:
    """The sandbox ("pause") image: the static pause program, nothing else."""
    with _workdir("pause") as work:
        rootfs = work / "rootfs"
        rootfs.mkdir()
        shutil.copy2(BIN / "pause", rootfs / "pause")
        write_oci_archive(rootfs, PAUSE_IMAGE, {"Entrypoint": ["/pause"]}, ARCHIVES[PAUSE_IMAGE])


def build_runtime(image: str) -> None:
    """A runtime: a minimal Debian root file system with Debian's python3 (and the image's packages)."""
    with _workdir(image.rsplit("/", 1)[1].replace(":", "-")) as work:
        rootfs = work / "rootfs"
        log("making a runtime's root file system with debootstrap (about a minute)", image=image)
        include = ",".join(["python3", *PACKAGES[image]])
        run(["debootstrap", "--variant=minbase", f"--include={include}", SUITE, rootfs, MIRROR])
        python = os.readlink(rootfs / "usr/bin/python3")
        if python != RUNTIME_PYTHON:
            raise RuntimeError(f"{SUITE}'s python3 is {python}, not {RUNTIME_PYTHON}: update the image names")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        # matplotlib draws to files (no display); its cache goes to $HOME, the writable /tmp.
        environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "MPLBACKEND=Agg"]
        write_oci_archive(rootfs, image, {"Cmd": ["python3"], "Env": environment}, ARCHIVES[image])


def write_oci_archive(rootfs: Path, name: str, config: dict[str, Any], archive: Path) -> None:
    """Pack `rootfs` as a one-layer OCI image named `name` into the tar `archive`."""
    work = archive.with_name(archive.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    blobs = work / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer = work / "layer.tar"
    run(["tar", "--numeric-owner", "--sort=name", "-C", rootfs, "-cf", layer, "."])
    layer_digest = _sha256(layer)
    layer.rename(blobs / layer_digest)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
    }
    config_digest = _blob(blobs, image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": _descriptor("application/vnd.oci.image.config.v1+json", blobs, config_digest),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", blobs, layer_digest)],
    }
    manifest_digest = _blob(blobs, manifest)
    annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    index = {
        "schemaVersion": 2,
        "manifests": [{**_descriptor(MANIFEST, blobs, manifest_digest), "annotations": annotations}],
    }
    (work / "index.json").write_text(json.dumps(index))
    (work / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        for entry in ("oci-layout", "index.json", "blobs"):
            tar.add(work / entry, arcname=entry)
    partial.rename(archive)
    shutil.rmtree(work)
    log("image built", image=name, archive=archive, mib=archive.stat().st_size // 2**20)


def _blob(blobs: Path, value: dict[str, Any]) -> str:
    data = json.dumps(value, sort_keys=True).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return digest


def _descriptor(media_type: str, blobs: Path, digest: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": (blobs / digest).stat().st_size}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _workdir:
    """A fresh directory under the cache, removed afterwards (anything debootstrap left mounted first)."""

    def __init__(self, name: str) -> None:
        self.path = CACHE / "work" / f"image-{name}"

    def __enter__(self) -> Path:
        self.__exit__()
        self.path.mkdir(parents=True)
        return self.path

    def __exit__(self, *_: object) -> None:
        remove_tree(self.path)
