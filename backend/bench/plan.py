"""How much each benchmark does: the full run of docs/performance.md's table, and a quick one for the smoke test."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    """The sizes of one benchmark run."""

    name: str
    latency_runs: int
    warmup_runs: int
    # print('hi') runs the server CPU per run is averaged over
    cpu_runs: int
    throughput_s: float
    throughput_users: int
    throughput_in_flight_per_user: int
    # (K watchers, L lines) pairs
    fanout: tuple[tuple[int, int], ...]
    fanout_client_processes: int
    flood_output_bytes: int
    # Empty lines the short-lines benchmark writes (the same bytes as long lines are its baseline).
    short_lines: int
    burst_runs: int
    # A benchmark that takes longer has hung (a lost status, say): it is reported failed, and the rest go on.
    section_timeout_s: float


FULL = Plan(
    name="full",
    latency_runs=200,
    warmup_runs=5,
    cpu_runs=100,
    throughput_s=60.0,
    throughput_users=8,
    throughput_in_flight_per_user=2,
    # 5,000 watchers are to be held; 1,000 x 1,000 is the delivery target (5,000 x 1,000 would take minutes).
    fanout=((1, 1000), (100, 1000), (1000, 1000), (5000, 200)),
    fanout_client_processes=3,
    flood_output_bytes=8 * 1024 * 1024,
    short_lines=1_000_000,
    burst_runs=50,
    section_timeout_s=1200.0,
)
QUICK = Plan(
    name="quick",
    latency_runs=5,
    warmup_runs=1,
    cpu_runs=5,
    throughput_s=2.0,
    throughput_users=2,
    throughput_in_flight_per_user=2,
    fanout=((3, 20),),
    fanout_client_processes=2,
    flood_output_bytes=64 * 1024,
    short_lines=10_000,
    burst_runs=6,
    section_timeout_s=120.0,
)
