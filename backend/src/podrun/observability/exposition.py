"""Serving the metrics: per process by default, or aggregated over processes with PROMETHEUS_MULTIPROC_DIR.

By default each process keeps its own registry and is scraped on its own (one API pod, one worker pod).
Several API processes behind one port (uvicorn --workers, gunicorn) must share a PROMETHEUS_MULTIPROC_DIR,
empty at start, that prometheus-client writes each process's values to; a scrape of any of them then reads
them all (prometheus-client's multiprocess mode). The worker serves on a port of its own, in a thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

log = structlog.get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def registry() -> CollectorRegistry:
    """What a scrape reads: this process's registry, or every process's values in the multiprocess directory."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)  # type: ignore[no-untyped-call]
    return aggregated


@contextmanager
def metrics_server(host: str, port: int | None, role: str) -> Iterator[None]:
    """Serve /metrics on `host`:`port` (in a daemon thread) while inside the block; nothing when `port` is None."""
    if port is None:
        yield
        return
    server, thread = start_http_server(port, addr=host, registry=registry())
    log.info("serving metrics", role=role, url=f"http://{host}:{port}/metrics")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def process_ended() -> None:
    """Drop this process's live gauges from the multiprocess directory (a no-op without one)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
