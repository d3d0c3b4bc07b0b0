"""A small kustomize renderer for `infra/k8s/`: exactly the features those kustomizations use, no more.

There is no kustomize binary here (and the PyPI `kustomize` package only writes kustomizations, it
does not render them), so the tests render with this. Supported, with kustomize's semantics:
`resources` (files and directories), `components`, `labels` (pairs only: metadata.labels, no
selectors or templates), `configMapGenerator`/`secretGenerator` from literals (behavior create or
merge, an explicit namespace, `disableNameSuffixHash: true` required), `patches` given by `path`
(strategic merge: maps merge, `containers` merge by name, other lists are replaced) and `images`
(newName/newTag/digest on container images). Anything else is refused, so a manifest that starts
using another feature fails the tests instead of being rendered wrongly.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]
KNOWN_KEYS = {
    "apiVersion", "kind", "resources", "components", "labels", "generatorOptions",
    "configMapGenerator", "secretGenerator", "patches", "images",
}  # fmt: skip
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
MERGE_BY_NAME = {"containers", "initContainers"}


class Unsupported(Exception):
    """The kustomization uses something this renderer does not implement."""


def render(directory: Path) -> list[Object]:
    """The objects `kustomize build directory` would print (in an order that does not matter here)."""
    return _build(directory, [], component=False)


def _build(directory: Path, accumulated: list[Object], *, component: bool) -> list[Object]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_KEYS
    if unknown:
        raise Unsupported(f"{directory}: {sorted(unknown)}")
    expected = "Component" if component else "Kustomization"
    if kustomization.get("kind", "Kustomization") != expected:
        raise Unsupported(f"{directory}: kind {kustomization.get('kind')} where a {expected} belongs")
    objects = accumulated
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects += _build(path, [], component=False) if path.is_dir() else _load(path)
    for entry in kustomization.get("components", []):
        objects = _build(directory / entry, objects, component=True)
    _generate(directory, kustomization, objects)
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise Unsupported(f"{directory}: patch {patch}")
        for document in _load(directory / patch["path"]):
            metadata = document["metadata"]
            target = _find(objects, document["kind"], metadata["name"], metadata.get("namespace"))
            target.update(_merge(target, document))
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for entry in kustomization.get("labels", []):
        if set(entry) != {"pairs"}:
            raise Unsupported(f"{directory}: labels {entry}")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    return objects


def _load(path: Path) -> list[Object]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _find(objects: list[Object], kind: str, name: str, namespace: str | None) -> Object:
    for obj in objects:
        metadata = obj["metadata"]
        if obj["kind"] == kind and metadata["name"] == name and metadata.get("namespace") == namespace:
            return obj
    raise Unsupported(f"no {kind} {namespace}/{name} to patch or merge into")


def _generate(directory: Path, kustomization: Object, objects: list[Object]) -> None:
    generators = [
        *(("ConfigMap", g) for g in kustomization.get("configMapGenerator", [])),
        *(("Secret", g) for g in kustomization.get("secretGenerator", [])),
    ]
    if generators and not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise Unsupported(f"{directory}: name suffix hashes are not implemented; set disableNameSuffixHash")
    for kind, generator in generators:
        if set(generator) - {"name", "namespace", "behavior", "literals"}:
            raise Unsupported(f"{directory}: generator {generator}")
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        if kind == "Secret":
            data = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        behavior = generator.get("behavior", "create")
        if behavior == "merge":
            _find(objects, kind, generator["name"], generator.get("namespace"))["data"].update(data)
        elif behavior == "create":
            metadata = {"name": generator["name"], "namespace": generator.get("namespace")}
            obj: Object = {"apiVersion": "v1", "kind": kind, "metadata": metadata, "data": data}
            if kind == "Secret":
                obj["type"] = "Opaque"
            objects.append(obj)
        else:
            raise Unsupported(f"{directory}: behavior {behavior}")


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(target, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target)
    for key, value in patch.items():
        if key in MERGE_BY_NAME and key in merged:
            by_name = {item["name"]: item for item in merged[key]}
            for item in value:
                by_name[item["name"]] = _merge(by_name.get(item["name"], {}), item)
            merged[key] = list(by_name.values())
        elif isinstance(value, str) and value.startswith("$patch"):
            raise Unsupported(f"patch directive {value}")
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def pod_spec(obj: Object) -> Object | None:
    """The pod spec of a workload (its template's), None for other kinds."""
    if obj["kind"] not in WORKLOADS:
        return None
    spec: Object = obj["spec"]["template"]["spec"]
    return spec


def image_name(reference: str) -> str:
    """An image reference without its tag and digest."""
    name = reference.split("@", maxsplit=1)[0]
    return name[: name.rindex(":")] if ":" in name.rsplit("/", 1)[-1] else name


def _set_image(objects: list[Object], image: Object) -> None:
    for obj in objects:
        spec = pod_spec(obj) or {}
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            if image_name(container["image"]) != image["name"]:
                continue
            reference = image.get("newName", image["name"])
            if "digest" in image:
                reference += "@" + image["digest"]
            elif "newTag" in image:
                reference += ":" + image["newTag"]
            container["image"] = reference
