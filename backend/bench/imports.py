"""The scientific runtime's first imports: how long a cold sandbox takes to `import numpy` (and pandas, pyplot).

Each figure is the sandbox's own wall time (from the header to the exit) of a script that imports one
module, against the same sandbox running `pass`: the difference is what the import costs a run today,
which is what pre-importing in warm sandboxes could save.
"""

from __future__ import annotations

import uuid

from bench.report import Failed, Figure, median
from podrun.core.limits import Limits
from podrun.runners import scientific
from podrun.runners.base import ArtifactCaps, SandboxSpec, sandbox_name
from podrun.runners.local import LocalRunner
from podrun.settings import get_settings

RUNS = 5
SCRIPTS = {
    "pass": "pass",
    "import numpy": "import numpy",
    "import pandas": "import pandas",
    "import matplotlib.pyplot": "import matplotlib.pyplot",
}
LIMITS = Limits(wall_time_ms=30_000, cpu_time_ms=20_000, memory_mib=512, output_bytes=1024 * 1024, processes=16)


async def _wall_ms(runner: LocalRunner, runtime_id: str, script: str) -> float:
    spec = SandboxSpec(
        name=sandbox_name(uuid.uuid4()),
        runtime_id=runtime_id,
        script=script,
        stdin=None,
        limits=LIMITS,
        artifact_caps=ArtifactCaps(count=0, total_bytes=0),
    )
    sandbox = await runner.start(spec)
    await sandbox.close_stdin()
    async for _ in sandbox.output():
        pass
    result = await sandbox.wait()
    if result.exit_code != 0 or result.usage.wall_time_ms is None:
        raise Failed(f"{script!r} in {runtime_id} gave {result}")
    return float(result.usage.wall_time_ms)


async def run() -> list[Figure]:
    """Median wall time of each script in cold sandboxes of the default interpreter's scientific runtime."""
    settings = get_settings()
    cold = settings.sandbox.model_copy(update={"warm_pool_size": 0})
    runner = LocalRunner(settings.model_copy(update={"sandbox": cold}))
    default = next(runtime for runtime in runner.runtimes() if runtime.default)
    runtime_id = default.id + scientific.RUNTIME_SUFFIX
    if runtime_id not in runner.interpreters:
        raise Failed(f"{runtime_id} is not installed: run ./taskw setup")
    walls: dict[str, list[float]] = {name: [] for name in SCRIPTS}
    for _ in range(RUNS):  # alternate, so a noisy moment hits every script alike
        for name, script in SCRIPTS.items():
            walls[name].append(await _wall_ms(runner, runtime_id, script))
    baseline = median(walls["pass"])
    return [
        Figure(f"{name} median (ms)", f"{median(values):.0f}", f"{baseline:.0f} for pass")
        for name, values in walls.items()
        if name != "pass"
    ] + [Figure("runtime", runtime_id, "cold sandboxes, bytecode precompiled at install")]
