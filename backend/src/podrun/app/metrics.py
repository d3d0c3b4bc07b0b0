"""The API's Prometheus metrics: Litestar's HTTP middleware, and /metrics beside /graphql or on a port of its own."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ControllerRouterHandler

from podrun.settings import Settings

# Paths by route template (/artifacts/{artifact_id:uuid}), never as requested: no id becomes a label.
HTTP_METRICS = PrometheusConfig(app_name="podrun", prefix="podrun_http", group_path=True, exclude=["^/metrics$"])


def metrics_routes(settings: Settings) -> list[ControllerRouterHandler]:
    """GET /metrics on the API's own port, unless `metrics.api_port` moves it to a port of its own."""
    return [PrometheusController] if settings.metrics.api_port is None else []
