"""The runtimes on offer and how a request's limits are filled in and checked against them."""

from __future__ import annotations

from dataclasses import fields, replace

from podrun.errors import BadUserInput
from podrun.runners.base import Limits, Runtime
from podrun.settings import Settings


class RuntimeCatalog:
    """Looks up runtimes by id; the default one answers for `runtime: null`."""

    def __init__(self, runtimes: list[Runtime], isolation: str) -> None:
        if not runtimes:
            raise RuntimeError("no runtime is available: check the interpreters the runner can find")
        self.runtimes = runtimes
        self.isolation = isolation
        self._by_id = {runtime.id: runtime for runtime in runtimes}
        self.default = next((runtime for runtime in runtimes if runtime.default), runtimes[0])

    def get(self, runtime_id: str | None) -> Runtime:
        """The runtime with this id (the default for None); BAD_USER_INPUT if unknown."""
        if runtime_id is None:
            return self.default
        runtime = self._by_id.get(runtime_id)
        if runtime is None:
            known = ", ".join(sorted(self._by_id))
            raise BadUserInput(f"unknown runtime {runtime_id!r}; available: {known}")
        return runtime

    def find(self, runtime_id: str) -> Runtime | None:
        """The runtime with this id, if it is still offered."""
        return self._by_id.get(runtime_id)


def configured_limits(settings: Settings) -> tuple[Limits, Limits]:
    """The default and maximum limits every runtime gets, from settings."""
    s = settings
    default = Limits(
        s.default_wall_time_ms, s.default_cpu_time_ms, s.default_memory_mib, s.default_output_bytes, s.default_processes
    )
    maximum = Limits(s.max_wall_time_ms, s.max_cpu_time_ms, s.max_memory_mib, s.max_output_bytes, s.max_processes)
    return default, maximum


def resolve_limits(runtime: Runtime, requested: dict[str, int | None]) -> Limits:
    """Requested limits with the runtime's defaults filled in; BAD_USER_INPUT outside 1..max."""
    limits = runtime.default_limits
    for field in fields(Limits):
        value = requested.get(field.name)
        if value is None:
            continue
        maximum = getattr(runtime.max_limits, field.name)
        if not 1 <= value <= maximum:
            raise BadUserInput(f"limits.{_camel(field.name)} must be between 1 and {maximum}")
        limits = replace(limits, **{field.name: value})
    return limits


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join("MiB" if part == "mib" else part.capitalize() for part in rest)
