"""One execution pod as a sandbox: its log is the harness's frame stream, its stdin an attach stream.

A `PodSandbox` follows the pod's log (logs.py) and turns the frames back into output, feeds its stdin
(attach.py), enforces the exact wall limit from the moment the harness is ready, and at the end reads
how the container ended and deletes the pod. A `WarmPod` is a pod the pool made ahead of any run.

A kernel's pod is a `PodSandbox` too, read as a `runners.kernel.KernelChannel`: `send` writes its cells'
frames over the attach stream, `read_line` gives its log's frame lines (kernel_log.py). It has no wall
limit (each cell's is the harness's); the pod's deadline is the backstop past the kernel's longest life.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import structlog
from kubernetes_asyncio.client import models as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from podrun.core.limits import LimitKind, Limits
from podrun.runners import protocol
from podrun.runners.base import NO_ARTIFACTS, ArtifactCaps, SandboxOutput, SandboxResult, SandboxSpec, SandboxUsage
from podrun.runners.ending import CONNECTION_LOST, PROTOCOL_BROKEN
from podrun.runners.ending import classify as judge
from podrun.runners.frames import FrameReader
from podrun.runners.kubernetes.attach import StdinAttach
from podrun.runners.kubernetes.client import REQUEST_TIMEOUT_S, Api
from podrun.runners.kubernetes.kernel_log import KernelLines
from podrun.runners.kubernetes.logs import LogFollow
from podrun.runners.kubernetes.status import ending_of, pod_ended, reasons
from podrun.runners.kubernetes.watch import pod_updates, wait_running

log = structlog.get_logger(__name__)

# A follow that breaks is resumed this many times in a row at most, with a growing pause.
MAX_RESUMES = 20
RESUME_PAUSE_S = 0.2
# After the pod was deleted or its log ended, how long to wait for its final state.
FINAL_STATE_TIMEOUT_S = 30.0


class WarmPod:
    """A pod the pool made ahead of its run: up, its harness waiting for a header on stdin."""

    def __init__(self, cluster: Api, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.made = time.monotonic()
        self.taken = False

    def waited_s(self) -> float:
        """Seconds since the pod was asked for (at least its age as the kubelet counts it)."""
        return time.monotonic() - self.made

    def waiting(self) -> bool:
        """Whether it may still serve a run: not taken, and young enough that the run's deadline is below its own.

        Whether the pod is still up is learnt when it is claimed (the claim's answer has its status).
        """
        return not self.taken and self.waited_s() < self.cluster.settings.kubernetes.warm_pool_max_wait_s

    async def discard(self) -> None:
        """Delete the pod and its ConfigMap."""
        self.taken = True
        with contextlib.suppress(ApiException, aiohttp.ClientError, TimeoutError):
            await self.cluster.delete(self.name)


class PodSandbox:
    """One execution pod: its log is the harness's frame stream."""

    def __init__(
        self,
        cluster: Api,
        name: str,
        limits: Limits,
        *,
        reattached: bool,
        stdin_in_header: bool = False,
        artifact_caps: ArtifactCaps = NO_ARTIFACTS,
        kernel: bool = False,
    ) -> None:
        self.cluster = cluster
        self.name = name
        self.limits = limits
        self.frames = FrameReader(artifact_caps, on_ready=self._ready)
        self.reattached = reattached
        self.kernel = kernel
        self.started = time.monotonic()
        self.ended: float | None = None
        self.ready = False
        self.killed = False
        self.limit_hit: LimitKind | None = None
        self.platform_error: str | None = None
        # A kernel's lines are read by runners/kernel.py (`read_line`), never by `output`.
        self.output_done = kernel
        self.pod: k8s.V1Pod | None = None
        self.wall_timer: asyncio.Task[None] | None = None
        self.follow = LogFollow(cluster, name)
        self.lines = KernelLines(self.follow, self._pod_ended)
        self.stdin = StdinAttach(
            cluster, name, closed=stdin_in_header, ended=lambda: self.killed or self.exit is not None
        )

    @property
    def exit(self) -> protocol.Exit | None:
        """The harness's exit record, once it has come."""
        return self.frames.exit

    @classmethod
    def for_run(cls, cluster: Api, name: str, spec: SandboxSpec, *, reattached: bool) -> PodSandbox:
        """The sandbox of the run `spec` in the pod `name`."""
        return cls(
            cluster,
            name,
            spec.limits,
            reattached=reattached,
            stdin_in_header=spec.stdin is not None,
            artifact_caps=spec.artifact_caps,
            kernel=spec.kernel,
        )

    async def wait_started(self) -> str | None:
        """Wait until the container runs (or already ended); a user-facing error if it never will."""
        self.pod, failure = await wait_running(self.cluster, self.name)
        if self.pod is not None and self.reattached:
            self.stdin.resume_from(self.pod)
        return failure

    async def deliver_header(self, frame: bytes) -> bool:
        """Hand a claimed warm pod its header over the attach stream; the run's wall time counts from here.

        Tried once: after a failure the header may be partly in the pod, which then must not serve the run.
        """
        if not await self.stdin.deliver_header(frame):
            return False
        self._ready()
        return True

    async def send(self, frame: bytes) -> None:
        """Write one frame to a kernel's harness over the attach stream (nothing once it was killed)."""
        await self.stdin.send(frame)

    async def read_line(self) -> bytes:
        """A kernel harness's next frame line from the pod log; b"" once it has ended."""
        line = await self.lines.next()
        if not line and self.lines.lost and not self.killed:
            self.platform_error = CONNECTION_LOST
            await self.kill()
        return line

    async def output(self) -> AsyncIterator[SandboxOutput]:
        """The script's output and artifacts from the pod log, until the harness's exit frame or the pod's end."""
        if self.output_done:
            return
        failures = 0
        ended = False
        try:
            while self.exit is None and not self.killed:
                new_frames = 0
                try:
                    async for line in self.follow.once():
                        new_frames += 1
                        failures = 0
                        if (output := self.frames.read(line)) is not None:
                            yield output
                        elif self.exit is not None:
                            break
                except (aiohttp.ClientError, TimeoutError, ApiException) as exc:
                    if self.killed:  # `kill` closed the follow
                        break
                    failures += 1
                    log.warning("pod log follow broke, resuming", sandbox=self.name, error=type(exc).__name__)
                    if failures > MAX_RESUMES:
                        self.platform_error = CONNECTION_LOST
                        break
                if self.exit is not None or self.killed:
                    break
                # The log ended without an exit frame: the container was killed (OOM, deadline), or the
                # follow broke. Once the pod has ended, one more pass picks up frames a break hid.
                if ended and new_frames == 0:
                    break
                ended = pod_ended(await self._read_pod())
                await asyncio.sleep(0 if ended else RESUME_PAUSE_S * min(failures + 1, 10))
        except (ValueError, UnicodeDecodeError) as exc:  # FrameError, or a line over the reader's limit
            if not self.killed:
                log.exception("malformed frame from pod", sandbox=self.name, error=type(exc).__name__)
                self.platform_error = PROTOCOL_BROKEN
        except (ApiException, aiohttp.ClientError) as exc:
            log.exception("pod unreachable", sandbox=self.name, error=type(exc).__name__)
            self.platform_error = CONNECTION_LOST
        finally:
            self.output_done = True
        if self.platform_error is not None:
            await self.kill()

    def _ready(self) -> None:
        """The harness is up: the wall limit counts from here, never from image pull or scheduling."""
        if self.ready:
            return
        self.ready = True
        self.started = time.monotonic()
        if self.kernel:
            return
        self.wall_timer = asyncio.create_task(self._enforce_wall_time(), name="wall-time")

    async def _enforce_wall_time(self) -> None:
        await asyncio.sleep(self.limits.wall_time_ms / 1000)
        self.limit_hit = LimitKind.WALL_TIME
        self.ended = time.monotonic()
        log.info("wall time limit reached", sandbox=self.name)
        await self.kill()

    async def _pod_ended(self) -> bool:
        return pod_ended(await self._read_pod())

    async def _read_pod(self) -> k8s.V1Pod | None:
        api = await self.cluster.core()
        try:
            self.pod = await api.read_namespaced_pod(
                self.name, self.cluster.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.pod = None
        return self.pod

    async def write_stdin(self, data: bytes) -> None:
        """Forward input to the script over pods/attach, in `I` frames of a bounded size."""
        await self.stdin.write(data)

    async def close_stdin(self) -> None:
        """Ask the harness to close the script's stdin (a `C` frame over pods/attach)."""
        await self.stdin.close()

    async def kill(self) -> None:
        """Delete the pod now (grace period 0). Idempotent."""
        if self.killed:
            return
        self.killed = True
        self.ended = self.ended or time.monotonic()
        with contextlib.suppress(ApiException, aiohttp.ClientError):
            await self.cluster.delete(self.name)
        self.follow.close()
        self.lines.close()
        await self.stdin.detach()

    async def wait(self) -> SandboxResult:
        """Wait for the exit frame (or the pod's end), classify it, and delete the pod and its ConfigMap after."""
        if not self.output_done:
            async for _ in self.output():
                pass
        self.ended = self.ended or time.monotonic()
        if self.wall_timer is not None:
            self.wall_timer.cancel()
        self.lines.close()
        await self.stdin.detach()
        # The exit frame of a script that exited 0 is the whole story; any other end may be the kubelet's to
        # tell (OOMKilled, DeadlineExceeded), which it reports about a second after the container stops.
        if not self.killed and not self._exited_cleanly():
            await self._final_state()
        ending = ending_of(
            self.pod,
            self.exit,
            killed=self.killed,
            limit_hit=self.limit_hit,
            limits=self.limits,
            platform_error=self.platform_error,
        )
        if self.exit is not None and self.exit.error is not None:
            log.error("sandbox harness failed", sandbox=self.name, error=self.exit.error)
        self.cluster.delete_soon(self.name)
        usage = SandboxUsage(
            wall_time_ms=self.exit.wall_ms if self.exit is not None else int((self.ended - self.started) * 1000),
            cpu_time_ms=self.exit.cpu_ms if self.exit is not None else None,
            peak_memory_kib=self.exit.peak_rss_kib if self.exit is not None else None,
        )
        result = judge(ending, usage)
        if result.error is not None:
            log.error("sandbox failed", sandbox=self.name, error=result.error, pod_reason=reasons(self.pod))
        return result

    def _exited_cleanly(self) -> bool:
        exit_frame = self.exit
        return (
            exit_frame is not None
            and exit_frame.exit_code == 0
            and exit_frame.signal is None
            and exit_frame.died_of is None
            and exit_frame.error is None
        )

    async def _final_state(self) -> None:
        """Wait (bounded) until the kubelet has reported how the container ended."""
        try:
            async with asyncio.timeout(FINAL_STATE_TIMEOUT_S):
                async with contextlib.aclosing(pod_updates(self.cluster, self.name)) as updates:
                    async for pod in updates:
                        if pod is None:
                            return
                        self.pod = pod
                        if pod_ended(pod):
                            return
        except (TimeoutError, ApiException, aiohttp.ClientError) as exc:
            log.warning("final pod state unknown", sandbox=self.name, error=type(exc).__name__)
