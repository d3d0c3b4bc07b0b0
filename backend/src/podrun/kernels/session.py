"""One kernel on a worker, from its start to its end: its sandbox, then its cells one at a time, in order.

The worker that claims a kernel's job holds it for its whole life. It starts the kernel's sandbox (warm where
the runner has one), marks it IDLE, then waits on the kernel's wake list (the API pushes to it) and, at
least every POLL_S, reads the rows: the oldest QUEUED cell runs as any run does (executions/run.py: claim,
RUNNING, output pumped, finish) in a `CellSandbox` of the kernel, and the kernel is BUSY meanwhile. A stop
or restart request on the row is carried out between cells (the API interrupts a running one first). The
kernel ends STOPPED after its idle timeout or when asked, and DEAD when its sandbox dies (out of memory, a
cell that ignored its interrupt); then its waiting cells are cancelled and its runs-in-progress slot freed.
On a durable runner a kernel outlives its worker (killed, or shut down): a worker that takes it over
(`reattach_from`) re-attaches to its sandbox and goes on from the cells it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from uuid import UUID

import structlog
from redis.exceptions import RedisError

from podrun.core.limits import LimitKind
from podrun.core.statuses import ExecutionStatus, KernelStatus
from podrun.executions.heartbeats import Heartbeats
from podrun.executions.lifecycle import RunLifecycle
from podrun.executions.outcomes import Outcome
from podrun.executions.run import run_execution
from podrun.kernels.lifecycle import KernelLifecycle
from podrun.kernels.models import Kernel
from podrun.kernels.service import RESTART, STOP, STOPPED_BY_OWNER
from podrun.kernels.wakes import KernelWakes
from podrun.observability import metrics
from podrun.outages import until_reachable
from podrun.runners import protocol
from podrun.runners.base import DurableRunner, FailedSandbox, Runner, Sandbox, SandboxResult, SandboxSpec
from podrun.runners.kernel import IGNORED_INTERRUPT, CellSandbox, KernelChannel, KernelSandbox
from podrun.streams.log import LogWriter

log = structlog.get_logger(__name__)

# A kernel renews its runs-in-progress slot this often (a slot lapses after quotas.SLOT_LAPSE_MS).
SLOT_RENEW_S = 600.0
# Without a wake, a kernel reads its rows this often (a wake lost with Redis delays a cell at most this long).
POLL_S = 2.0
KERNEL_START_FAILED = "the kernel's sandbox could not be started"
KERNEL_DIED = "the kernel's process ended unexpectedly"
KERNEL_OUT_OF_MEMORY = "the kernel ran out of memory"
KERNEL_IDLE_CPU = "the kernel went on using CPU between cells past one cell's CPU time limit"
KERNEL_SHUT_DOWN = "the worker holding the kernel shut down"
IDLE_STOP = "stopped after {seconds} s without a cell"
CELL_NOT_RUN = "the kernel ended before this cell ran: {why}"


async def cancel_waiting_cells(lifecycle: RunLifecycle, kernels: KernelLifecycle, kernel_id: UUID, why: str) -> None:
    """End the cells of an ended kernel that never ran CANCELLED, saying why."""
    dropped = Outcome(ExecutionStatus.CANCELLED, error=CELL_NOT_RUN.format(why=why))
    for cell_id in await kernels.waiting_cells(kernel_id):
        writer = await LogWriter.resume(lifecycle.event_log(cell_id))
        await lifecycle.finish(cell_id, dropped, writer, from_statuses=(ExecutionStatus.QUEUED,))


class LeftForTakeOver(Exception):
    """The worker is shutting down and its kernel's sandbox outlives it: a live worker takes the kernel over."""


def kernel_sandbox_name(kernel_id: UUID) -> str:
    """The deterministic sandbox name of a kernel."""
    return "podrun-kernel-" + kernel_id.hex


async def run_kernel(
    kernels: KernelLifecycle,
    lifecycle: RunLifecycle,
    runner: Runner,
    heartbeats: Heartbeats,
    wakes: KernelWakes,
    *,
    worker_id: str,
    kernel_id: UUID,
    reattach_from: str | None = None,
) -> str:
    """Hold one kernel until it ends (taking it over from `reattach_from`); how it ended, or why it was not held."""
    if reattach_from is None:
        kernel = await until_reachable("claim a kernel", lambda: kernels.claim(kernel_id, worker_id))
    else:
        kernel = await until_reachable(
            "take a kernel over", lambda: kernels.take_over(kernel_id, reattach_from, worker_id)
        )
    if kernel is None:
        return "NOT_CLAIMED"
    session = KernelSession(kernels, lifecycle, runner, heartbeats, wakes, kernel, worker_id)
    try:
        status, error = await session.serve(resume=reattach_from is not None)
    except LeftForTakeOver:
        log.info("kernel left to be taken over", kernel_id=str(kernel_id))
        return "LEFT"
    except asyncio.CancelledError:
        if isinstance(runner, DurableRunner):
            # Its sandbox outlives this worker: a live worker takes the kernel over once this one's heartbeat is gone.
            log.info("kernel left to be taken over", kernel_id=str(kernel_id))
            raise
        await asyncio.shield(session.end(KernelStatus.DEAD, KERNEL_SHUT_DOWN))
        raise
    except Exception:
        log.exception("kernel failed in the platform", kernel_id=str(kernel_id))
        status, error = KernelStatus.DEAD, KERNEL_DIED
    await session.end(status, error)
    return status.value


class KernelSession:
    """A kernel held by this worker: its sandbox (None between a death and a restart) and its loop."""

    def __init__(  # noqa: PLR0917 - the worker's parts a kernel uses, each once
        self,
        kernels: KernelLifecycle,
        lifecycle: RunLifecycle,
        runner: Runner,
        heartbeats: Heartbeats,
        wakes: KernelWakes,
        kernel: Kernel,
        worker_id: str,
    ) -> None:
        self.kernels = kernels
        self.lifecycle = lifecycle
        self.runner = runner
        self.heartbeats = heartbeats
        self.wakes = wakes
        self.kernel = kernel
        self.worker_id = worker_id
        self.sandbox: KernelSandbox | None = None
        self.idle_since = time.monotonic()

    async def serve(self, *, resume: bool = False) -> tuple[KernelStatus, str | None]:
        """Start the sandbox (or re-attach to it), then run cells and carry out requests until the kernel is to
        end; how it ends."""
        kernel_id = self.kernel.id
        await self.lifecycle.queue.left_queue(kernel_id)
        if not await self.start_sandbox(resume=resume):
            return KernelStatus.DEAD, KERNEL_START_FAILED
        renewed = time.monotonic()
        while True:
            if time.monotonic() - renewed >= SLOT_RENEW_S:
                with contextlib.suppress(RedisError, OSError):
                    await self.lifecycle.queue.quotas.renew(str(self.kernel.owner_id), str(kernel_id))
                renewed = time.monotonic()
            row = await until_reachable("read a kernel", lambda: self.kernels.load(kernel_id))
            if row is None or row.status.ended:
                return (row.status, row.error) if row is not None else (KernelStatus.STOPPED, None)
            if row.request == STOP:
                return KernelStatus.STOPPED, STOPPED_BY_OWNER
            if self.wakes.closing:
                if isinstance(self.runner, DurableRunner):
                    raise LeftForTakeOver
                return KernelStatus.STOPPED, KERNEL_SHUT_DOWN
            if row.request == RESTART:
                await self.restart()
                continue
            cell_id = await until_reachable("find a cell", lambda: self.kernels.next_cell(kernel_id))
            if cell_id is not None:
                if (ended := await self.run_cell(cell_id)) is not None:
                    return ended
                continue
            idle_left = self.kernel.idle_timeout_s - (time.monotonic() - self.idle_since)
            if idle_left <= 0:
                return KernelStatus.STOPPED, IDLE_STOP.format(seconds=self.kernel.idle_timeout_s)
            if self.sandbox is not None and self.sandbox.closed.is_set():
                return KernelStatus.DEAD, await self.why_ended_idle(self.sandbox)
            await self.wakes.wait(kernel_id, min(idle_left, POLL_S))

    async def start_sandbox(self, *, resume: bool = False) -> bool:
        """Start the kernel's sandbox (`resume`: re-attach to it) and mark it IDLE; False if it could not start."""
        kernel = self.kernel
        spec = SandboxSpec(
            name=kernel_sandbox_name(kernel.id),
            runtime_id=kernel.runtime,
            script="",
            stdin=None,
            limits=kernel.limits,
            resume=resume,
            kernel=True,
        )
        started = await self.runner.start(spec)
        if isinstance(started, FailedSandbox) or not isinstance(started, KernelChannel):
            with contextlib.suppress(Exception):
                await started.kill()
                await started.wait()
            return False
        sandbox = self.sandbox = KernelSandbox(started, kernel.limits)
        if resume and not await sandbox.take_over(kernel.cells_run, busy=kernel.status is KernelStatus.BUSY):
            return False
        self.idle_since = time.monotonic()
        await until_reachable(
            "mark a kernel idle",
            lambda: self.kernels.mark(kernel.id, KernelStatus.IDLE, used=True, cells_run=sandbox.cells),
        )
        log.info("kernel ready", kernel_id=str(kernel.id), resumed=resume, cells_run=sandbox.cells)
        return True

    async def restart(self) -> None:
        """A fresh process: the old sandbox is killed and a new one started (the kernel keeps its id)."""
        kernel_id = self.kernel.id
        await until_reachable("mark a kernel starting", lambda: self.kernels.mark(kernel_id, KernelStatus.STARTING))
        if self.sandbox is not None:
            await self.sandbox.stop()
        if not await self.start_sandbox():
            await self.kernels.end(kernel_id, KernelStatus.DEAD, KERNEL_START_FAILED)
            return
        await until_reachable("finish a restart", lambda: self.kernels.done(kernel_id, RESTART))
        log.info("kernel restarted", kernel_id=str(kernel_id))

    async def run_cell(self, cell_id: UUID) -> tuple[KernelStatus, str | None] | None:
        """Run one cell in the kernel (BUSY meanwhile); how the kernel ended if it ended with the cell."""
        sandbox = self.sandbox
        assert sandbox is not None
        kernel_id = self.kernel.id
        await until_reachable("mark a kernel busy", lambda: self.kernels.mark(kernel_id, KernelStatus.BUSY))

        started: list[CellSandbox] = []

        async def start_cell(spec: SandboxSpec) -> Sandbox:
            started.append(await sandbox.cell(spec.script, spec.artifact_caps))
            return started[-1]

        await run_execution(
            self.lifecycle,
            self.runner,
            self.heartbeats,
            worker_id=self.worker_id,
            execution_id=cell_id,
            start_sandbox=start_cell,
        )
        self.idle_since = time.monotonic()
        if not sandbox.alive:
            cell = started[0] if started else None
            why = _why_dead(
                await sandbox.end(), cell.interrupted if cell else False, cell.frames.exit if cell else None
            )
            return KernelStatus.DEAD, why
        await until_reachable(
            "mark a kernel idle",
            lambda: self.kernels.mark(kernel_id, KernelStatus.IDLE, used=True, cells_run=sandbox.cells),
        )
        return None

    async def why_ended_idle(self, sandbox: KernelSandbox) -> str:
        """Why a kernel ended between cells."""
        if sandbox.idle_end() is LimitKind.CPU_TIME:
            return KERNEL_IDLE_CPU
        return _why_dead(await sandbox.end(), interrupted=False, cell_exit=None)

    async def end(self, status: KernelStatus, error: str | None) -> None:
        """Stop the sandbox, record how the kernel ended, cancel its waiting cells and free its slot."""
        kernel = self.kernel
        if self.sandbox is not None:
            await self.sandbox.stop()
        if await until_reachable("end a kernel", lambda: self.kernels.end(kernel.id, status, error)):
            metrics.KERNELS_ENDED.labels(status=status.value).inc()
        why = error or status.value.lower()
        await until_reachable(
            "cancel waiting cells", lambda: cancel_waiting_cells(self.lifecycle, self.kernels, kernel.id, why)
        )
        await self.lifecycle.queue.release(kernel.owner_id, kernel.id)
        self.wakes.forget(kernel.id)
        log.info("kernel ended", kernel_id=str(kernel.id), status=status.value)


def _why_dead(result: SandboxResult, interrupted: bool, cell_exit: protocol.Exit | None) -> str:
    """Why a kernel's sandbox ended by itself, for its owner: the limit, the ignored interrupt, or how its process
    ended as the harness saw it (a cell that called os._exit, say)."""
    if result.limit_exceeded is LimitKind.MEMORY:
        return KERNEL_OUT_OF_MEMORY
    if interrupted:
        return IGNORED_INTERRUPT
    if cell_exit is not None and cell_exit.exit_code is not None:
        return f"the kernel's process exited with code {cell_exit.exit_code}"
    if cell_exit is not None and cell_exit.signal is not None:
        return f"the kernel's process was killed by signal {cell_exit.signal}"
    return KERNEL_DIED
