"""The runtimes on offer and how a request's limits are filled in and checked against them."""

from __future__ import annotations

from collections.abc import Mapping

from podrun.core.errors import BadUserInput
from podrun.core.limits import Limits
from podrun.runners.base import RuntimeSpec


class RuntimeCatalog:
    """Looks up runtimes by id; the default one answers for `runtime: null`."""

    def __init__(self, runtimes: list[RuntimeSpec], isolation: str) -> None:
        if not runtimes:
            raise RuntimeError("no runtime is available: check the interpreters the runner can find")
        self.runtimes = runtimes
        self.isolation = isolation
        self._by_id = {runtime.id: runtime for runtime in runtimes}
        self.default = next((runtime for runtime in runtimes if runtime.default), runtimes[0])

    def get(self, runtime_id: str | None) -> RuntimeSpec:
        """The runtime with this id (the default for None); BAD_USER_INPUT if unknown."""
        if runtime_id is None:
            return self.default
        runtime = self._by_id.get(runtime_id)
        if runtime is None:
            known = ", ".join(sorted(self._by_id))
            raise BadUserInput(f"unknown runtime {runtime_id!r}; available: {known}")
        return runtime

    def find(self, runtime_id: str) -> RuntimeSpec | None:
        """The runtime with this id, if it is still offered."""
        return self._by_id.get(runtime_id)


def capped(limits: Limits, cap: Limits) -> Limits:
    """Each of `limits`, but no more than the same one of `cap`."""
    return Limits(**{name: min(value, getattr(cap, name)) for name, value in limits.model_dump().items()})


def role_limits(runtime: RuntimeSpec, *, default: Limits, maximum: Limits) -> tuple[Limits, Limits]:
    """The default and maximum limits of a run on `runtime` for a role whose policy says `default` and `maximum`."""
    allowed = capped(maximum, runtime.max_limits)
    return capped(default, allowed), allowed


def resolve_limits(
    runtime: RuntimeSpec, requested: Mapping[str, int | None], *, default: Limits, maximum: Limits
) -> Limits:
    """Requested limits (by field name), the others `default`; BAD_USER_INPUT outside 1..`maximum`.

    `default` and `maximum` (the caller's role's, from the system settings) never go past the runtime's maximum.
    """
    role_default, allowed = role_limits(runtime, default=default, maximum=maximum)
    chosen = role_default.model_dump()
    for name, value in requested.items():
        if value is None:
            continue
        maximum_value = getattr(allowed, name)
        if not 1 <= value <= maximum_value:
            raise BadUserInput(f"limits.{Limits.field_label(name)} must be between 1 and {maximum_value}")
        chosen[name] = value
    return Limits(**chosen)
