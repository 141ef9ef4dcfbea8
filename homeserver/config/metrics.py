"""The `metrics` section: Prometheus metrics.

Metrics are served by a listener with `type: metrics` (or a `metrics` resource
on an http listener); see `ServerConfig.metrics_listeners`.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.config.options import option


@dataclass(frozen=True)
class MetricsConfig:
    """Metrics collection."""

    enable_metrics: bool = option(
        False,
        "Collect Prometheus metrics and serve them on the metrics listeners.",
    )
    report_stats: bool | None = option(
        None,
        "Accepted so that Synapse configs load; Myelin never reports usage "
        "statistics anywhere.",
    )
