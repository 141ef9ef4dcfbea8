"""The metrics HTTP resource and the `type: metrics` listener.

Serves the Prometheus exposition at ``/metrics`` and ``/_synapse/metrics``
(the path Synapse scrape configs already use). A metrics listener is its own
port, so the metrics never reach the public client port unless an operator
adds the `metrics` resource to an http listener on purpose.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.web import resource, server

logger = logging.getLogger(__name__)

METRICS_PATHS = frozenset((b"/metrics", b"/_synapse/metrics", b"/_synapse/metrics/"))


class MetricsResource(resource.Resource):
    """Renders a `Metrics` registry; 404 for any other path."""

    isLeaf = True

    def __init__(self, metrics: Any) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: server.Request) -> bytes:
        if request.path not in METRICS_PATHS:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"Not found\n"
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        body, content_type = self._metrics.render(accept)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        return body

    render_HEAD = render_GET


class MetricsOrApp(resource.Resource):
    """For an http listener with the `metrics` resource: metrics paths here, the rest to the app."""

    isLeaf = True

    def __init__(self, metrics_resource: MetricsResource, app: resource.Resource) -> None:
        super().__init__()
        self._metrics = metrics_resource
        self._app = app

    def render(self, request: server.Request) -> Any:
        if request.path in METRICS_PATHS and request.method in (b"GET", b"HEAD"):
            return self._metrics.render(request)
        return self._app.render(request)


class _QuietSite(server.Site):
    """No access log and no factory start/stop lines for scrapes."""

    noisy = False

    def log(self, request: Any) -> None:
        pass


def listen_metrics(reactor: Any, metrics: Any, port: int, bind_addresses: list[str]) -> list[Any]:
    """Bind a metrics listener on each address; returns the listening ports.

    Binding both "::" and "0.0.0.0" on one port fails for the second on a
    dual-stack host ("::" already took IPv4 too), so a failure is only fatal
    if no address could be bound.
    """
    site = _QuietSite(MetricsResource(metrics))
    ports, errors = [], []
    for addr in bind_addresses or ["127.0.0.1"]:
        try:
            ports.append(reactor.listenTCP(port, site, interface=addr))
            logger.info("metrics listening on %s:%d", addr, port)
        except CannotListenError as e:
            errors.append(e)
            logger.warning("metrics listener could not bind %s:%d: %s", addr, port, e.socketError)
    if not ports and errors:
        raise errors[0]
    return ports


def configure_http_site(site: Any, listener: Any, metrics: Any) -> None:
    """Per-listener observability settings for an http listener's site.

    Sets the trusted incoming request-id header, and serves metrics on this
    listener when it lists the `metrics` resource and metrics are enabled.
    """
    header = getattr(listener, "request_id_header", None)
    site.request_id_header = header.encode("latin-1") if header else None
    names = {n for r in getattr(listener, "resources", []) or [] for n in r.names}
    if "metrics" in names:
        if metrics.enabled:
            site.resource = MetricsOrApp(MetricsResource(metrics), site.resource)
        else:
            logger.warning("listener on port %d lists the metrics resource but enable_metrics is false",
                           listener.port)


def start_metrics(hs: Any) -> None:
    """Start every `type: metrics` listener and the samplers (real reactor only)."""
    metrics, listeners = hs.metrics, hs.config.server.metrics_listeners
    if not metrics.enabled:
        if listeners:
            logger.warning("a metrics listener is configured but enable_metrics is false; not starting it")
        return
    serving = bool(listeners) or any("metrics" in r.names for lst in hs.config.server.http_listeners
                                     for r in lst.resources)
    if not serving:
        logger.warning("enable_metrics is true but no listener serves metrics "
                       "(add a listener with type: metrics)")
    for listener in listeners:
        hs.metrics_ports = getattr(hs, "metrics_ports", []) + listen_metrics(
            hs.reactor, metrics, listener.port, listener.bind_addresses)
    metrics.start()
    hs.reactor.addSystemEventTrigger("before", "shutdown", metrics.stop)
