"""Composition root: builds every object of the gateway once from the config
and hands each what it needs. Takes the reactor as an argument (only
``__main__`` touches the global one), so tests can build a gateway on their
own reactor.
"""

import logging
import time
from typing import Any, Optional

from prometheus_client.twisted import MetricsResource
from twisted.internet.interfaces import IListeningPort
from twisted.web import server

from push_gateway.config import GatewayConfig
from push_gateway.dispatch import AppRouter, DeliveredCache, Dispatcher
from push_gateway.http import (
    HEALTH_PATH,
    NOTIFY_PATH,
    GatewaySite,
    HealthResource,
    NotifyResource,
    RootResource,
)
from push_gateway.pushkins import Pushkin, build_pushkin

logger = logging.getLogger(__name__)


class PushGateway:
    """The running gateway: pushkins, dispatcher and HTTP sites.

    Args:
        config: the checked config.
        reactor: the reactor to run on.

    Raises:
        ConfigError: an app's files (keys, certificates) are unusable.
    """

    def __init__(self, config: GatewayConfig, reactor: Any) -> None:
        self._config = config
        self._reactor = reactor
        self.pushkins: dict[str, Pushkin] = {}
        for app_id, app_config in config.apps.items():
            started = time.monotonic()
            self.pushkins[app_id] = build_pushkin(app_id, app_config, reactor)
            logger.info(
                "Set up app %s (%s) in %.0f ms",
                app_id,
                app_config.type,
                (time.monotonic() - started) * 1000,
            )
        if not self.pushkins:
            logger.warning("No apps configured: every pushkey will be rejected")
        self.dispatcher = Dispatcher(
            AppRouter(self.pushkins),
            DeliveredCache(
                reactor,
                config.dispatch.duplicate_window_ms,
                config.dispatch.duplicate_cache_size,
            ),
        )

        routes = {NOTIFY_PATH: NotifyResource(self.dispatcher), HEALTH_PATH: HealthResource()}
        metrics_path = config.metrics.path.encode()
        separate_metrics = config.metrics.enabled and config.metrics.port is not None
        if config.metrics.enabled and not separate_metrics:
            routes[metrics_path] = MetricsResource()
        self.site = self._site(routes)
        self.metrics_site: Optional[server.Site] = None
        if separate_metrics:
            self.metrics_site = self._site({metrics_path: MetricsResource()})
        self.ports: list[IListeningPort] = []

    def _site(self, routes: dict) -> GatewaySite:
        http = self._config.http
        return GatewaySite(
            RootResource(routes),
            reactor=self._reactor,
            max_body_size=http.max_request_body_size_bytes,
            access_log=self._config.log.access_log,
            x_forwarded_for=http.x_forwarded_for,
        )

    def start(self) -> list[IListeningPort]:
        """Starts the pushkins and listens; returns the listening ports."""
        for pushkin in self.pushkins.values():
            pushkin.start()
        http = self._config.http
        for address in http.bind_addresses:
            port = self._reactor.listenTCP(http.port, self.site, interface=address)
            self.ports.append(port)
            host = port.getHost()
            logger.info(
                "Listening for /notify on %s:%d",
                host.host,
                host.port,
                extra={
                    "event": "listening",
                    "listener": "http",
                    "host": host.host,
                    "port": host.port,
                },
            )
        if self.metrics_site is not None:
            metrics = self._config.metrics
            port = self._reactor.listenTCP(
                metrics.port, self.metrics_site, interface=metrics.bind_address
            )
            self.ports.append(port)
            host = port.getHost()
            logger.info(
                "Serving metrics on %s:%d%s",
                host.host,
                host.port,
                metrics.path,
                extra={
                    "event": "listening",
                    "listener": "metrics",
                    "host": host.host,
                    "port": host.port,
                },
            )
        return self.ports

    async def stop(self) -> None:
        """Stops listening and releases the pushkins' connections and threads."""
        for port in self.ports:
            await port.stopListening()
        self.ports = []
        for pushkin in self.pushkins.values():
            try:
                await pushkin.close()
            except Exception:
                logger.exception("Error closing app %s", pushkin.name)
