"""The dependency watch: up and down per probe, one outage counted per stretch of failures."""

from __future__ import annotations

from prometheus_client import REGISTRY

from podrun.observability.dependencies import DependencyWatch


def value(name: str, service: str) -> float:
    found = REGISTRY.get_sample_value(name, {"service": service})
    assert found is not None
    return found


async def test_a_service_that_stops_answering_is_down_and_counts_one_outage_until_it_is_back() -> None:
    answers = iter([True, False, False, True, False])

    async def probe() -> None:
        if not next(answers):
            raise ConnectionError("refused")

    service = "unit-test-service"
    watch = DependencyWatch({service: probe})
    seen = []
    for _ in range(5):
        await watch.probe_once()
        seen.append((value("podrun_dependency_up", service), value("podrun_dependency_outages_total", service)))
    assert seen == [(1, 0), (0, 1), (0, 1), (1, 1), (0, 2)]
