"""A stand-in Kubernetes API server for exactly the calls Podrun's runner makes.

It speaks the real wire protocol (JSON objects, `Status` errors, watch event streams with
resourceVersion and 410 Gone, pods/log with follow and RFC 3339 nano timestamps (lines over 16 KiB
in pieces, each with its timestamp, as containerd writes them and the kubelet streams them), strategic-merge
patches of pod metadata and of `activeDeadlineSeconds` (which, as the API server validates it, may
only be set or lowered), deletes with preconditions (uid, resourceVersion: 409 Conflict when the pod
changed), pods/log's `limitBytes`, pods/attach as a WebSocket with the channel protocols v4/v5.channel.k8s.io:
channel-prefixed binary messages, channel 0 fed to the container's stdin, the status on channel 3
when the container ends, v5's close message on channel 255), and its "kubelet"
really runs each pod's command in a local bubblewrap sandbox (the local runner's machinery), with
the pod's memory limit as a cgroup, so the log lines are the real harness frames.

Simulated: scheduling is instant; an image maps to a local interpreter (`python:3.X-slim` ->
python 3.X), any other image fails to pull; `activeDeadlineSeconds`; OOM kills (the container's
cgroup ran out of memory, the whole container is killed as with cgroup v2's memory.oom.group);
owner-reference garbage collection of ConfigMaps; a container's stdin (`stdin: true`) is one pipe
that every attach session writes to and that stays open across sessions unless `stdinOnce`. Faults
for tests: a log follow cut short, watch history compacted (410), both counted so tests can see
they happened, an attach held before its upgrade; attach sessions are counted too, and every
pod's last manifest is kept after its deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from podrun.runners.cgroups import Cgroups, SandboxCgroup
from podrun.runners.interpreters import Interpreter, discover
from podrun.runners.local import LocalRunner, bwrap
from podrun.settings import Settings

IMAGE = re.compile(r"python:(3\.\d+)-slim")
QUANTITY = re.compile(r"(\d+)(Ki|Mi|Gi)?")
UNITS = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
# The stream protocols of pods/attach and pods/exec over WebSockets, most preferred first.
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, ERROR, CLOSE = 0, 3, 255
# containerd's default max_container_log_line_size: longer lines go into the log in pieces of this size.
MAX_LOG_LINE = 16 * 1024


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_stamp(ns: int) -> str:
    """The kubelet's log timestamp format (RFC 3339 with nanoseconds, always 9 digits)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def parse_since(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 10**9)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def error(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(status(code, reason, message), status=code)


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """A JSON merge patch (for maps, what a strategic merge patch does too): null removes a key."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = value


def matches(obj: dict[str, Any], field_selector: str | None, label_selector: str | None) -> bool:
    for term in filter(None, (field_selector or "").split(",")):
        key, _, value = term.partition("=")
        if key != "metadata.name" or obj["metadata"]["name"] != value:
            return False
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


@dataclass
class FakePod:
    manifest: dict[str, Any]
    logs: list[tuple[int, bytes]] = field(default_factory=list)
    log_changed: asyncio.Event = field(default_factory=asyncio.Event)
    process: asyncio.subprocess.Process | None = None
    cgroup: SandboxCgroup | None = None
    task: asyncio.Task[None] | None = None
    running: bool = False
    ended: bool = False
    stdin_closed: bool = False
    deadline_changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


class StandIn:
    """The server's state and handlers; runs on its own event loop in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.local = LocalRunner(settings)
        found = discover(settings.sandbox.python_interpreters, settings.sandbox.runtimes_dir)
        self.interpreters: dict[str, Interpreter] = {interpreter.runtime_id: interpreter for interpreter in found}
        self.cgroups = Cgroups.detect()
        self.version = 1
        self.compacted = 0
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.pods: dict[str, FakePod] = {}
        # Every pod's "kubelet" task, until its container has ended and been reaped.
        self.kubelets: set[asyncio.Task[None]] = set()
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.work = Path(tempfile.mkdtemp(prefix="podrun-standin-"))
        # Faults and what happened, for tests.
        self.cut_next_follow_after: int | None = None
        self.hold_next_start_s = 0.0
        self.hold_next_attach_s = 0.0
        self.hold_deletes_s = 0.0
        self.attaches_held = 0
        self.follows_cut = 0
        self.gone_served = 0
        self.pod_creates: dict[str, int] = {}
        self.created_specs: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.deleted_manifests: dict[str, dict[str, Any]] = {}
        self.attaches: dict[str, int] = {}
        self.patches: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    # Calls from the test thread.

    def call(self, fn: Callable[[], Any]) -> Any:
        assert self.loop is not None
        done: asyncio.Future[Any] = asyncio.run_coroutine_threadsafe(self._call(fn), self.loop)  # type: ignore[assignment]
        return done.result(10)

    async def _call(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def expire_watch_history(self) -> None:
        """Other objects changed, then history was compacted: every version seen so far is too old to watch from."""
        self.version += 1
        self.compacted = self.version
        self.history.clear()
        self.changed.set()
        self.changed = asyncio.Event()

    # Object bookkeeping.

    def bump(self, event: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        if obj.get("kind") == "Pod":
            self.history.append((self.version, event, json.loads(json.dumps(obj))))
        self.changed.set()
        self.changed = asyncio.Event()

    def set_container(self, pod: FakePod, state: dict[str, Any], phase: str, reason: str | None = None) -> None:
        status = pod.manifest["status"]
        status["phase"] = phase
        if reason is not None:
            status["reason"] = reason
        container = pod.manifest["spec"]["containers"][0]
        status["containerStatuses"] = [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": "running" in state,
                "restartCount": 0,
                "state": state,
            }
        ]
        self.bump("MODIFIED", pod.manifest)

    # The "kubelet".

    async def run_pod(self, pod: FakePod) -> None:
        spec = pod.manifest["spec"]
        container = spec["containers"][0]
        self.set_container(pod, {"waiting": {"reason": "ContainerCreating"}}, "Pending")
        started = time.monotonic()
        volume_dirs = await self.mount_volumes(pod)
        hold, self.hold_next_start_s = self.hold_next_start_s, 0.0
        await asyncio.sleep(hold)
        match = IMAGE.fullmatch(container["image"])
        interpreter = self.interpreters.get("python-" + match.group(1)) if match else None
        if interpreter is None:
            self.set_container(pod, {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}, "Pending")
            await asyncio.sleep(0.3)
            self.set_container(pod, {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}, "Pending")
            return
        memory = QUANTITY.fullmatch(container["resources"]["limits"]["memory"])
        assert memory is not None
        pod.cgroup = self.cgroups.create(
            "standin-" + pod.name,
            memory_bytes=int(memory.group(1)) * UNITS[memory.group(2)],
            max_pids=1024,
            cpu_weight=self.local.settings.sandbox.cpu_weight,
        )
        cgroup = pod.cgroup
        pod.process = await asyncio.create_subprocess_exec(
            *self.argv(interpreter, container, volume_dirs),
            stdin=asyncio.subprocess.PIPE if container.get("stdin") else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            limit=1024 * 1024,
            preexec_fn=(lambda: cgroup.add(os.getpid())) if cgroup is not None else None,
        )
        pod.running = True
        self.set_container(pod, {"running": {"startedAt": now_rfc3339()}}, "Running")
        reader = asyncio.create_task(self.read_log(pod))
        oom = asyncio.create_task(self.watch_memory(pod))
        pod_reason = None
        if not await self.exits_before_deadline(pod, started):
            pod_reason = "DeadlineExceeded"
            self.kill(pod)
            await pod.process.wait()
        oom.cancel()
        await reader
        self.close_stdin(pod)
        oom_killed = cgroup is not None and cgroup.usage().oom_killed
        code = pod.process.returncode
        if oom_killed:
            terminated = {"exitCode": 137, "reason": "OOMKilled"}
        elif code is not None and code < 0:
            terminated = {"exitCode": 128 - code, "reason": "Error"}
        else:
            terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        terminated |= {"startedAt": now_rfc3339(), "finishedAt": now_rfc3339()}
        phase = "Succeeded" if terminated["exitCode"] == 0 and pod_reason is None else "Failed"
        pod.ended = True
        pod.log_changed.set()
        if pod.name in self.pods:
            self.set_container(pod, {"terminated": terminated}, phase, pod_reason)
        self.release(pod)

    async def exits_before_deadline(self, pod: FakePod, started: float) -> bool:
        """Wait for the container's end; False when `activeDeadlineSeconds` (which a patch may lower) came first."""
        assert pod.process is not None
        exited = asyncio.ensure_future(pod.process.wait())
        try:
            while True:
                deadline = pod.manifest["spec"].get("activeDeadlineSeconds")
                remaining = None if deadline is None else max(0.0, deadline - (time.monotonic() - started))
                changed = asyncio.ensure_future(pod.deadline_changed.wait())
                done, _ = await asyncio.wait({exited, changed}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if exited in done:
                    return True
                if not done:
                    return False
                pod.deadline_changed.clear()
        finally:
            exited.cancel()

    async def mount_volumes(self, pod: FakePod) -> dict[str, Path]:
        """Wait until every ConfigMap volume exists (a kubelet retries the mount), then write its files."""
        mounts: dict[str, Path] = {}
        for volume in pod.manifest["spec"].get("volumes", []):
            if "configMap" not in volume:
                continue
            name = volume["configMap"]["name"]
            while name not in self.config_maps:
                await self.changed.wait()
            directory = self.work / pod.name / volume["name"]
            directory.mkdir(parents=True, exist_ok=True)
            for key, value in self.config_maps[name].get("data", {}).items():
                (directory / key).write_text(value)
            directory.chmod(0o755)
            for entry in directory.iterdir():
                entry.chmod(volume["configMap"].get("defaultMode", 0o644))
            mounts[volume["name"]] = directory
        return mounts

    def argv(self, interpreter: Interpreter, container: dict[str, Any], volumes: dict[str, Path]) -> list[str]:
        """The local sandbox with the pod's mounts, environment and command; python3 is the image's."""
        layout = bwrap.layout(interpreter)
        image_bin = self.work / f"bin-{interpreter.version_text}"
        if not image_bin.exists():
            image_bin.mkdir()
            (image_bin / "python3").symlink_to(layout.executable)
        mounts = ["--ro-bind", str(image_bin), "/usr/local/bin"]
        for mount in container.get("volumeMounts", []):
            if mount["name"] in volumes:
                mounts += ["--ro-bind", str(volumes[mount["name"]]), mount["mountPath"]]
        options = [bwrap.BWRAP, *bwrap.options(self.local.settings.sandbox, layout, mounts), "--clearenv"]
        # A staged interpreter finds its libpython through LD_LIBRARY_PATH; an image's python3 needs nothing.
        image_env = {key: value for key, value in layout.env.items() if key == "LD_LIBRARY_PATH"}
        for variable in [*container.get("env", []), *({"name": k, "value": v} for k, v in image_env.items())]:
            options += ["--setenv", variable["name"], variable["value"]]
        return [*options, *container["command"], *container.get("args", [])]

    async def read_log(self, pod: FakePod) -> None:
        """The container's output into its log as containerd writes it: a long line in pieces, each with its own
        timestamp (the pod log endpoint then streams every piece after its timestamp, as the kubelet does)."""
        assert pod.process is not None
        assert pod.process.stdout is not None
        while line := await pod.process.stdout.readline():
            text = line.removesuffix(b"\n")
            pieces = [text[start : start + MAX_LOG_LINE] for start in range(0, len(text), MAX_LOG_LINE)] or [b""]
            pieces[-1] += b"\n"
            pod.logs.extend((time.time_ns(), piece) for piece in pieces)
            pod.log_changed.set()
            pod.log_changed = asyncio.Event()

    async def watch_memory(self, pod: FakePod) -> None:
        while pod.cgroup is not None:
            if pod.cgroup.usage().oom_killed:
                self.kill(pod)
                return
            await asyncio.sleep(0.02)

    def kill(self, pod: FakePod) -> None:
        if pod.cgroup is not None:
            pod.cgroup.kill()
        if pod.process is not None and pod.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.process.pid, 9)

    def close_stdin(self, pod: FakePod) -> None:
        pod.stdin_closed = True
        if pod.process is not None and pod.process.stdin is not None:
            pod.process.stdin.close()

    def release(self, pod: FakePod) -> None:
        if pod.cgroup is not None:
            with contextlib.suppress(OSError):
                pod.cgroup.remove()
            pod.cgroup = None
        shutil.rmtree(self.work / pod.name, ignore_errors=True)

    # HTTP handlers.

    async def create_pod(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body["metadata"]["name"]
        self.pod_creates[name] = self.pod_creates.get(name, 0) + 1
        if name in self.pods:
            return error(409, "AlreadyExists", f'pods "{name}" already exists')
        body["metadata"] |= {
            "namespace": request.match_info["namespace"],
            "uid": str(uuid.uuid4()),
            "creationTimestamp": now_rfc3339(),
        }
        body["status"] = {"phase": "Pending", "startTime": now_rfc3339()}
        pod = FakePod(body)
        self.pods[name] = pod
        self.created_specs[name] = json.loads(json.dumps(body["spec"]))
        self.bump("ADDED", body)
        pod.task = asyncio.create_task(self.run_pod(pod))
        self.kubelets.add(pod.task)
        pod.task.add_done_callback(self.kubelets.discard)
        return web.json_response(body, status=201)

    async def get_pod(self, request: web.Request) -> web.Response:
        pod = self.pods.get(request.match_info["name"])
        if pod is None:
            return error(404, "NotFound", f'pods "{request.match_info["name"]}" not found')
        return web.json_response(pod.manifest)

    async def delete_pod(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.hold_deletes_s)
        name = request.match_info["name"]
        pod = self.pods.get(name)
        if pod is None:
            return error(404, "NotFound", f'pods "{name}" not found')
        options = await request.json() if request.can_read_body else {}
        metadata = pod.manifest["metadata"]
        for key, field_name in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            expected = (options.get("preconditions") or {}).get(key)
            if expected is not None and expected != metadata[key]:
                return error(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods "{name}": Precondition failed: {field_name}'
                    f" in precondition: {expected}, {field_name} in object meta: {metadata[key]}",
                )
        del self.pods[name]
        self.deleted.append(name)
        self.kill(pod)
        pod.ended = True
        pod.log_changed.set()
        pod.manifest["metadata"]["deletionTimestamp"] = now_rfc3339()
        self.bump("DELETED", pod.manifest)
        self.deleted_manifests[name] = json.loads(json.dumps(pod.manifest))
        uid = pod.manifest["metadata"]["uid"]
        for cm_name, config_map in list(self.config_maps.items()):
            if any(ref.get("uid") == uid for ref in config_map["metadata"].get("ownerReferences", [])):
                del self.config_maps[cm_name]
        return web.json_response(pod.manifest)

    async def patch_pod(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        pod = self.pods.get(name)
        if pod is None:
            return error(404, "NotFound", f'pods "{name}" not found')
        kind = request.content_type
        if kind not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            return error(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}")
        patch = await request.json()
        spec = patch.get("spec", {})
        if (
            set(patch) - {"metadata", "spec"}
            or set(patch.get("metadata", {})) - {"annotations", "labels"}
            or set(spec) - {"activeDeadlineSeconds"}
        ):
            return error(422, "Invalid", "the stand-in patches only labels, annotations and activeDeadlineSeconds")
        if "activeDeadlineSeconds" in spec:
            new, old = spec["activeDeadlineSeconds"], pod.manifest["spec"].get("activeDeadlineSeconds")
            if not isinstance(new, int) or new <= 0 or (old is not None and new > old):
                return error(
                    422,
                    "Invalid",
                    f'Pod "{name}" is invalid: spec.activeDeadlineSeconds: Invalid value: {new}: '
                    "must be less than or equal to previous value",
                )
        merge_patch(pod.manifest, patch)
        pod.deadline_changed.set()
        self.patches[name] = self.patches.get(name, 0) + 1
        self.bump("MODIFIED", pod.manifest)
        return web.json_response(pod.manifest)

    async def attach_pod(self, request: web.Request) -> web.StreamResponse:
        """pods/attach over a WebSocket: what the API server and kubelet do together, for one container."""
        name = request.match_info["name"]
        pod = self.pods.get(name)
        if pod is None:
            return error(404, "NotFound", f'pods "{name}" not found')
        container = pod.manifest["spec"]["containers"][0]
        query = request.query
        stdin, stdout, stderr = flag(query.get("stdin")), flag(query.get("stdout")), flag(query.get("stderr"))
        if query.get("container", container["name"]) != container["name"]:
            return error(400, "BadRequest", f"container {query['container']} is not valid for pod {name}")
        if not (stdin or stdout or stderr):
            return error(400, "BadRequest", "you must specify at least one of stdin, stdout, or stderr")
        if stdout or stderr or flag(query.get("tty")):
            return error(400, "BadRequest", "the stand-in attaches to stdin only (output is in the log)")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return error(400, "BadRequest", "Upgrade request required")
        hold, self.hold_next_attach_s = self.hold_next_attach_s, 0.0
        if hold:
            self.attaches_held += 1
            await asyncio.sleep(hold)
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = next((p for p in CHANNEL_PROTOCOLS if p in offered), None)
        if protocol is None:
            return error(400, "BadRequest", f"none of the offered subprotocols is supported: {offered}")
        if not pod.running or pod.ended or pod.process is None:
            return error(400, "BadRequest", f"container {container['name']} in pod {name} is not running")
        if stdin and not container.get("stdin"):
            return error(400, "BadRequest", f"stdin is not enabled for container {container['name']}")
        ws = web.WebSocketResponse(protocols=[protocol])
        await ws.prepare(request)
        self.attaches[name] = self.attaches.get(name, 0) + 1
        watcher = asyncio.create_task(self.end_attach_with_container(pod, ws))
        try:
            async for message in ws:
                if message.type != WSMsgType.BINARY or not message.data:
                    continue
                channel, data = message.data[0], message.data[1:]
                if channel == STDIN and data and not pod.stdin_closed and pod.process.stdin is not None:
                    with contextlib.suppress(ConnectionError):
                        pod.process.stdin.write(data)
                        await pod.process.stdin.drain()
                elif channel == CLOSE and protocol.startswith("v5") and data[:1] == bytes([STDIN]):
                    break  # this session's stdin is done; the container's only with stdinOnce
        finally:
            watcher.cancel()
            if container.get("stdinOnce"):
                self.close_stdin(pod)
            await ws.close()
        return ws

    async def end_attach_with_container(self, pod: FakePod, ws: web.WebSocketResponse) -> None:
        while not pod.ended:
            await pod.log_changed.wait()
        success = {"metadata": {}, "status": "Success"}
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(success).encode())
            await ws.close()

    async def list_pods(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        fields, labels = query.get("fieldSelector"), query.get("labelSelector")
        if query.get("watch", "").lower() in ("true", "1"):
            return await self.watch_pods(request, fields, labels)
        items = [pod.manifest for pod in self.pods.values() if matches(pod.manifest, fields, labels)]
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.version)}, "items": items}
        )

    async def watch_pods(self, request: web.Request, fields: str | None, labels: str | None) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.version)
        timeout = float(request.query.get("timeoutSeconds", "1800"))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if since < self.compacted:
            self.gone_served += 1
            gone = status(410, "Expired", f"too old resource version: {since} ({self.compacted})")
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return response
        deadline = time.monotonic() + timeout
        sent = since
        while time.monotonic() < deadline:
            if since < self.compacted:  # compacted while watching: the server ends the watch
                break
            for version, event, obj in self.history:
                if version > sent and matches(obj, fields, labels):
                    await response.write(json.dumps({"type": event, "object": obj}).encode() + b"\n")
                sent = max(sent, version)
            changed = self.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), max(0.0, deadline - time.monotonic()))
        return response

    async def pod_log(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        pod = self.pods.get(name)
        if pod is None:
            return error(404, "NotFound", f'pods "{name}" not found')
        if not pod.running:
            return error(400, "BadRequest", f'container "script" in pod "{name}" is waiting to start')
        follow = request.query.get("follow", "").lower() in ("true", "1")
        stamps = request.query.get("timestamps", "").lower() in ("true", "1")
        since = parse_since(request.query["sinceTime"]) if "sinceTime" in request.query else 0
        limit_bytes = int(request.query["limitBytes"]) if "limitBytes" in request.query else None
        cut_after, self.cut_next_follow_after = self.cut_next_follow_after, None
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        index = 0
        sent = 0
        while True:
            while index < len(pod.logs):
                stamp, line = pod.logs[index]
                index += 1
                if stamp < since:
                    continue
                if cut_after is not None and sent >= cut_after:
                    # The connection drops in the middle of a line, as a broken proxy would leave it.
                    self.follows_cut += 1
                    await response.write(log_stamp(stamp).encode()[:10])
                    assert request.transport is not None
                    request.transport.close()
                    return response
                data = (log_stamp(stamp) + " ").encode() * stamps + line
                if limit_bytes is not None:
                    data, limit_bytes = data[:limit_bytes], limit_bytes - len(data[:limit_bytes])
                await response.write(data)
                sent += 1
                if limit_bytes == 0:
                    return response
            if not follow or pod.ended:
                if index >= len(pod.logs):
                    return response
                continue
            await pod.log_changed.wait()

    async def create_config_map(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body["metadata"]["name"]
        if name in self.config_maps:
            return error(409, "AlreadyExists", f'configmaps "{name}" already exists')
        body["metadata"] |= {"uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()}
        self.config_maps[name] = body
        self.bump("ADDED", body)
        return web.json_response(body, status=201)

    async def get_config_map(self, request: web.Request) -> web.Response:
        config_map = self.config_maps.get(request.match_info["name"])
        if config_map is None:
            return error(404, "NotFound", f'configmaps "{request.match_info["name"]}" not found')
        return web.json_response(config_map)

    async def delete_config_map(self, request: web.Request) -> web.Response:
        config_map = self.config_maps.pop(request.match_info["name"], None)
        if config_map is None:
            return error(404, "NotFound", f'configmaps "{request.match_info["name"]}" not found')
        return web.json_response(config_map)

    def app(self) -> web.Application:
        app = web.Application()
        base = "/api/v1/namespaces/{namespace}"
        app.router.add_post(base + "/pods", self.create_pod)
        app.router.add_get(base + "/pods", self.list_pods)
        app.router.add_get(base + "/pods/{name}", self.get_pod)
        app.router.add_delete(base + "/pods/{name}", self.delete_pod)
        app.router.add_patch(base + "/pods/{name}", self.patch_pod)
        app.router.add_get(base + "/pods/{name}/attach", self.attach_pod)
        app.router.add_get(base + "/pods/{name}/log", self.pod_log)
        app.router.add_post(base + "/configmaps", self.create_config_map)
        app.router.add_get(base + "/configmaps/{name}", self.get_config_map)
        app.router.add_delete(base + "/configmaps/{name}", self.delete_config_map)
        return app


class StandInServer:
    """The stand-in on 127.0.0.1, served from a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: StandIn | None = None
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="k8s-standin", daemon=True)

    def start(self) -> StandInServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes stand-in did not start")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        self.state = StandIn(self.settings)
        self.state.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.state.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        await self._stop.wait()
        pods = list(self.state.pods.values())
        for pod in pods:
            self.state.kill(pod)
        # The "kubelets" reap the killed containers (deleted pods' too), so no process outlives this loop.
        if self.state.kubelets:
            await asyncio.wait(self.state.kubelets, timeout=10)
        for pod in pods:
            self.state.release(pod)
        await runner.cleanup()
        shutil.rmtree(self.state.work, ignore_errors=True)

    def stop(self) -> None:
        if self.state is not None and self.state.loop is not None and self._stop is not None:
            self.state.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig pointing at the stand-in (plain HTTP, a dummy token)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "podrun-worker", "user": {"token": "standin-token"}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "podrun-worker"}}],
            "current-context": "standin",
        }
        path.write_text(json.dumps(config))
        return path
