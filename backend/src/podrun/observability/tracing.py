"""OpenTelemetry traces: one trace per run, from submitExecution through the worker to the run's end.

Configured only by the standard OTEL_* variables and off unless an OTLP endpoint is set
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_SDK_DISABLED=true turns it off).
Spans go out over OTLP HTTP/protobuf in batches. A setting the SDK would misread refuses the start
(`TracingConfigError`) instead of dropping spans, or runs, quietly. The trace context travels with a run's job
as a W3C `traceparent` carrier (`carrier()`, `continued()`).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

tracer = trace.get_tracer("podrun")

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
NUMBERS = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_BSP_SCHEDULE_DELAY",
           "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT")  # fmt: skip
SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
            "parentbased_traceidratio")  # fmt: skip


class TracingConfigError(ValueError):
    """An OTEL_* setting that tracing cannot work with; the message names it."""


def enabled() -> bool:
    """Whether the environment asks for traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in ENDPOINTS)


def check_settings() -> None:
    """Refuse OTEL_* settings the SDK would ignore or misread, naming the variable and what it accepts."""
    for name in ENDPOINTS:
        value = os.environ.get(name)
        if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise TracingConfigError(f"{name}={value!r} is not an http:// or https:// URL")
    for name in PROTOCOLS:
        value = os.environ.get(name)
        if value and value != "http/protobuf":
            raise TracingConfigError(f"{name}={value!r}: Podrun exports traces over http/protobuf only")
    for name in NUMBERS:
        value = os.environ.get(name)
        if value and not value.isdigit():
            raise TracingConfigError(f"{name}={value!r} is not a whole number")
    sampler = os.environ.get("OTEL_TRACES_SAMPLER")
    if sampler and sampler not in SAMPLERS:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER={sampler!r} is not one of {', '.join(SAMPLERS)}")
    ratio = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    if ratio and sampler and sampler.endswith("traceidratio"):
        try:
            valid = 0.0 <= float(ratio) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={ratio!r} is not a ratio between 0 and 1")


def configure_tracing(service_name: str) -> bool:
    """Send this process's spans to the OTLP endpoint the environment names; whether tracing is on.

    OTEL_SERVICE_NAME, when set, names the service instead of `service_name`.
    """
    check_settings()
    if not enabled():
        return False
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)  # what is still batched goes out when the process ends
    return True


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to go with a job (empty outside a trace)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def continued(name: str, headers: dict[str, str] | None, **attributes: str) -> Iterator[trace.Span]:
    """A span `name` continuing the trace in `headers` (a new trace without them), current inside the block."""
    parent: Context | None = propagate.extract(headers) if headers else None
    with tracer.start_as_current_span(name, context=parent, attributes=attributes) as span:
        yield span


def event(name: str, at: datetime | None = None, **attributes: str) -> None:
    """Mark a moment (`at`, or now) on the current span; nothing outside a trace."""
    timestamp = int(at.timestamp() * 1e9) if at is not None else None
    trace.get_current_span().add_event(name, attributes=attributes, timestamp=timestamp)
