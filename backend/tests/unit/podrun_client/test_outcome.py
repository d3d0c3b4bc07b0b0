"""The exit-code table: how a finished run becomes prun's exit status and message."""

from __future__ import annotations

from typing import Any

import pytest
from podrun_client.generated import ExecutionSummary, KernelSummary
from podrun_client.outcome import Outcome, kernel_ended, outcome


def ended(status: str, **fields: Any) -> ExecutionSummary:
    return ExecutionSummary.model_validate(
        {
            "id": "0193",
            "status": status,
            "exitCode": None,
            "signal": None,
            "limitExceeded": None,
            "error": None,
            "outputTruncated": False,
            "createdAt": "2026-01-01T00:00:00+00:00",
            "startedAt": None,
            "finishedAt": None,
            "runtime": {"id": "python-3.11", "version": "3.11.7"},
            "limits": {
                "wallTimeMs": 5000,
                "cpuTimeMs": 2000,
                "memoryMiB": 256,
                "outputBytes": 1024**2,
                "processes": 16,
            },
            "usage": None,
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("execution", "expected"),
    [
        (ended("SUCCEEDED", exitCode=0), Outcome(0)),
        (ended("FAILED", exitCode=1), Outcome(1)),
        (ended("FAILED", exitCode=255), Outcome(255)),
        (ended("FAILED", signal=9), Outcome(137, "the script was killed by signal 9")),
        (
            ended("TIMED_OUT", limitExceeded="WALL_TIME", signal=9),
            Outcome(124, "timed out: the wall-time limit of 5s was exceeded"),
        ),
        (
            ended("TIMED_OUT", limitExceeded="CPU_TIME", signal=9),
            Outcome(124, "timed out: the CPU-time limit of 2s was exceeded"),
        ),
        (ended("FAILED", limitExceeded="MEMORY", signal=9), Outcome(125, "the memory limit of 256M was exceeded")),
        (ended("FAILED", limitExceeded="OUTPUT", exitCode=0), Outcome(125, "the output limit of 1M was exceeded")),
        (ended("FAILED", limitExceeded="PROCESSES", exitCode=1), Outcome(125, "the process limit of 16 was exceeded")),
        (ended("CANCELLED", signal=9), Outcome(130, "cancelled")),
        (
            ended("ERROR", error="the worker running this execution stopped unexpectedly"),
            Outcome(126, "Podrun could not run the script: the worker running this execution stopped unexpectedly"),
        ),
    ],
    ids=lambda value: value.status.value if isinstance(value, ExecutionSummary) else "",
)
def test_exit_status_and_message(execution: ExecutionSummary, expected: Outcome) -> None:
    assert outcome(execution) == expected


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        ("STOPPED", "stopped after 600 s without a cell", "kernel 0193 stopped: stopped after 600 s without a cell"),
        ("DEAD", "its process died", "kernel 0193 died: its process died"),
        ("DEAD", None, "kernel 0193 died: no reason given"),
    ],
)
def test_a_kernel_that_ended_under_the_console(status: str, error: str | None, message: str) -> None:
    kernel = KernelSummary.model_validate(
        {
            "id": "0193",
            "status": status,
            "idleTimeoutS": 600,
            "createdAt": "2026-01-01T00:00:00+00:00",
            "lastUsedAt": None,
            "error": error,
            "stopsAt": None,
            "queuedCells": 0,
            "runtime": {"id": "python-3.11", "version": "3.11.7"},
            "limits": {"wallTimeMs": 5000, "cpuTimeMs": 2000, "memoryMiB": 256, "outputBytes": 1024, "processes": 16},
        }
    )
    assert kernel_ended(kernel) == Outcome(126, message)
