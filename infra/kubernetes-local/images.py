"""Container images without a registry or a Docker engine: root file systems packed as OCI archives.

- `podrun.local/runtime-python:3.11`: a Debian bookworm root file system made with
  `debootstrap --variant=minbase --include=python3` (Debian's Python 3.11).
- `podrun.local/runtime-scientific:3.11`: that file system, plus a layer with numpy, pandas and
  matplotlib from pinned, hashed wheels (runtime-scientific-3.11.requirements.txt, installed with uv
  for Python 3.11; no pip in the image, site-packages read-only), the local counterpart of
  infra/docker/runtime-scientific.Dockerfile.
- `podrun.local/pause:3.4`: only the static `pause` program built from the Kubernetes tree.

Each is an OCI image layout in a tar archive (uncompressed layers, a config, a manifest, an index
naming the image) that `ctr images import` loads into containerd; pods use them with
`imagePullPolicy: Never`.
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
SCIENTIFIC_REQUIREMENTS = Path(__file__).with_name("runtime-scientific-3.11.requirements.txt")
ARCHIVES = {
    PAUSE_IMAGE: IMAGES / "pause.tar",
    RUNTIME_IMAGE: IMAGES / "runtime-python-3.11.tar",
    # Named after its requirements: changing them builds the image again.
    SCIENTIFIC_IMAGE: IMAGES
    / f"runtime-scientific-3.11-{hashlib.sha256(SCIENTIFIC_REQUIREMENTS.read_bytes()).hexdigest()[:12]}.tar",
}
# Runtime id (as in infra/k8s/overlays/local) -> image.
RUNTIMES = {"python-3.11": RUNTIME_IMAGE, "python-3.11-scientific": SCIENTIFIC_IMAGE}
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PYTHON = "3.11"
SITE_PACKAGES = f"usr/local/lib/python{PYTHON}/dist-packages"
ENVIRONMENT = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def ready() -> bool:
    """Whether every image archive is in the cache."""
    return all(path.is_file() for path in ARCHIVES.values())


def build_all() -> None:
    """Build the image archives that are missing."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    for image, build in (
        (PAUSE_IMAGE, build_pause),
        (RUNTIME_IMAGE, build_runtime),
        (SCIENTIFIC_IMAGE, build_scientific),
    ):
        if not ARCHIVES[image].is_file():
            build()


def build_pause() -> None:
    """The sandbox ("pause") image: the static pause program, nothing else."""
    with _workdir("pause") as work:
        rootfs = work / "rootfs"
        rootfs.mkdir()
        shutil.copy2(BIN / "pause", rootfs / "pause")
        write_oci_archive(PAUSE_IMAGE, {"Entrypoint": ["/pause"]}, [_layer(rootfs, work)], work)


def build_runtime() -> None:
    """The Python runtime: a minimal Debian root file system with Debian's python3."""
    with _workdir("runtime") as work:
        rootfs = work / "rootfs"
        log("making the runtime's root file system with debootstrap (about a minute)", suite=SUITE)
        run(["debootstrap", "--variant=minbase", "--include=python3", SUITE, rootfs, MIRROR])
        python = os.readlink(rootfs / "usr/bin/python3")
        if python != f"python{PYTHON}":
            raise RuntimeError(f"{SUITE}'s python3 is {python}, not Python {PYTHON}: update the image names")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_file():
                    path.unlink()
        config = {"Cmd": ["python3"], "Env": ENVIRONMENT}
        write_oci_archive(RUNTIME_IMAGE, config, [_layer(rootfs, work)], work)


def build_scientific() -> None:
    """The runtime's layer, and one with the pinned wheels of numpy, pandas and matplotlib in site-packages."""
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("building the scientific runtime needs uv on PATH (./taskw puts it there)")
    with _workdir("scientific") as work:
        base = _layers_of(ARCHIVES[RUNTIME_IMAGE], work)
        rootfs = work / "rootfs"
        site = rootfs / SITE_PACKAGES
        log("installing the scientific runtime's wheels", requirements=SCIENTIFIC_REQUIREMENTS.name)
        run([
            uv, "pip", "install", "--quiet", "--target", site, "--python-version", PYTHON,
            "--python-platform", "x86_64-manylinux_2_36", "--only-binary", ":all:", "--require-hashes",
            "--no-compile", "-r", SCIENTIFIC_REQUIREMENTS,
        ])  # fmt: skip
        for directory, _, files in os.walk(site):  # nothing can be installed at run time
            for name in files:
                os.chmod(os.path.join(directory, name), 0o444)
        # matplotlib draws to files (no display); its cache goes to $HOME, the writable /tmp.
        config = {"Cmd": ["python3"], "Env": [*ENVIRONMENT, "MPLBACKEND=Agg"]}
        write_oci_archive(SCIENTIFIC_IMAGE, config, [*base, _layer(rootfs, work)], work)


def write_oci_archive(name: str, config: dict[str, Any], layers: list[Path], work: Path) -> None:
    """Write the image `name` (its layers uncompressed tar files, lowest first) as an OCI archive into the cache."""
    blobs = work / "oci" / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descriptors = []
    for layer in layers:
        digest = _sha256(layer)
        layer.rename(blobs / digest)
        descriptors.append(_descriptor(LAYER, blobs, digest))
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [descriptor["digest"] for descriptor in descriptors]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": _descriptor("application/vnd.oci.image.config.v1+json", blobs, _blob(blobs, image_config)),
        "layers": descriptors,
    }
    annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    index = {
        "schemaVersion": 2,
        "manifests": [{**_descriptor(MANIFEST, blobs, _blob(blobs, manifest)), "annotations": annotations}],
    }
    (work / "oci" / "index.json").write_text(json.dumps(index))
    (work / "oci" / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    archive = ARCHIVES[name]
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        for entry in ("oci-layout", "index.json", "blobs"):
            tar.add(work / "oci" / entry, arcname=entry)
    partial.rename(archive)
    log("image built", image=name, archive=archive, mib=archive.stat().st_size // 2**20)


def _layer(rootfs: Path, work: Path) -> Path:
    """`rootfs` as an uncompressed layer (numeric owners, sorted, so the same tree gives the same digest)."""
    layer = work / f"layer-{len(list(work.glob('layer-*')))}.tar"
    run(["tar", "--numeric-owner", "--sort=name", "-C", rootfs, "-cf", layer, "."])
    return layer


def _layers_of(archive: Path, work: Path) -> list[Path]:
    """The layers of an image archive written by `write_oci_archive`, extracted into `work`."""
    with tarfile.open(archive) as tar:
        index = json.load(_member(tar, "index.json"))
        manifest = json.load(_member(tar, "blobs/sha256/" + index["manifests"][0]["digest"].removeprefix("sha256:")))
        layers: list[Path] = []
        for descriptor in manifest["layers"]:
            layer = work / f"layer-{len(layers)}.tar"
            with layer.open("wb") as out:
                shutil.copyfileobj(_member(tar, "blobs/sha256/" + descriptor["digest"].removeprefix("sha256:")), out)
            layers.append(layer)
    return layers


def _member(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    if member is None:
        raise RuntimeError(f"an image archive without {name}")
    return member


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
