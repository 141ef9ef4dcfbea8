"""Observability: Prometheus metrics, the metrics listener, health checks.

Owns the per-HomeServer metrics registry (`Metrics`), the lock-free series the
hot paths update (`series`), the collectors that read counters other
components already keep (`collectors`), the reactor-lag sampler, the metrics
HTTP resource and listener, and the `/health` + `/health/ready` routes.

Layering: imports prometheus_client, Twisted, `homeserver.util`,
`homeserver.config` and `homeserver.http.router`; never handlers, storage or
api. Everything it observes is handed in by `app.py` as a callable or a
duck-typed object, so any component can be observed without this package
importing it. Logging (JSON lines, request ids) lives in
`homeserver.logging_setup`. Operator documentation: docs/observability.md.
"""
