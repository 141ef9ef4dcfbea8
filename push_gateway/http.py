"""The gateway's HTTP surface (twisted.web): ``POST /_matrix/push/v1/notify``,
``GET /health`` and, optionally, the Prometheus metrics path.

Errors are Matrix JSON (``{"errcode", "error"}``) from one place,
``_write_json``: a body that is not JSON gets 400 ``M_NOT_JSON``, JSON of the
wrong shape 400 ``M_BAD_JSON``, a body over ``max_request_body_size`` 413
``M_TOO_LARGE``, an unknown path 404 ``M_UNRECOGNIZED`` and a known path with
the wrong method 405 ``M_UNRECOGNIZED`` (the push gateway API's rules). When
a provider did not take a notification the answer is 502 (so the homeserver
retries later); an unexpected exception is logged once with its traceback
and answered 500 ``M_UNKNOWN``. No traceback reaches the caller.
"""

import json
import logging
import time
import uuid
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.web import server
from twisted.web.resource import Resource

from push_gateway import metrics
from push_gateway.dispatch import DeviceOutcome, Dispatcher
from push_gateway.errors import InvalidNotification, PushGatewayError
from push_gateway.logs import request_id_var
from push_gateway.notification import parse_notify_body

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("push_gateway.access")

NOTIFY_PATH = b"/_matrix/push/v1/notify"
HEALTH_PATH = b"/health"


class GatewayRequest(server.Request):
    """A request that keeps at most ``max_body_size`` bytes of body (the rest
    is read and dropped, and ``body_too_large`` is set) and carries a request
    id and its start time."""

    max_body_size = 512 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_id = uuid.uuid4().hex[:16]
        self.started_at = time.monotonic()
        self.body_too_large = False
        self._body_received = 0

    def gotLength(self, length: Optional[int]) -> None:  # noqa: N802 - Twisted API
        if length is not None and length > self.max_body_size:
            self.body_too_large = True
            length = None  # keep the (empty) body in memory, never a temp file
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 - Twisted API
        if self.body_too_large:
            return
        self._body_received += len(data)
        if self._body_received > self.max_body_size:
            self.body_too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)


def _write_json(request: server.Request, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Content-Length", str(len(data)).encode())
    request.setHeader(b"Cache-Control", b"no-store")
    request.write(data)


def _write_error(request: server.Request, error: PushGatewayError) -> None:
    _write_json(request, error.status, error.to_json())


class NotifyResource(Resource):
    """``/_matrix/push/v1/notify`` (operationId ``notify``)."""

    isLeaf = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__()
        self._dispatcher = dispatcher

    def render(self, request: GatewayRequest) -> Any:
        if request.method != b"POST":
            _write_error(
                request,
                PushGatewayError("M_UNRECOGNIZED", "Unsupported method", status=405),
            )
            self._count(request)
            return b""
        Deferred.fromCoroutine(self._notify(request))
        return server.NOT_DONE_YET

    async def _notify(self, request: GatewayRequest) -> None:
        request_id_var.set(request.request_id)
        try:
            notification = self._parse(request)
            result = await self._dispatcher.dispatch(notification)
            rejected = result.rejected
            if result.count(DeviceOutcome.ERROR):
                raise PushGatewayError("M_UNKNOWN", "Internal error", status=500)
            failed = result.count(DeviceOutcome.FAILED)
            if failed:
                body = {
                    "errcode": "M_UNKNOWN",
                    "error": f"Could not deliver to {failed} device(s); retry later",
                    "rejected": rejected,
                }
                self._finish(request, 502, body)
                return
            if rejected:
                logger.info("Delivered with %d rejected pushkey(s)", len(rejected))
            self._finish(request, 200, {"rejected": rejected})
        except PushGatewayError as e:
            if e.status >= 500:
                logger.error("Answering %d: %s", e.status, e.message)
            else:
                logger.info("Bad /notify request: %s", e.message)
            self._finish(request, e.status, e.to_json())
        except Exception:
            logger.exception("Unexpected error handling /notify")
            self._finish(request, 500, {"errcode": "M_UNKNOWN", "error": "Internal error"})

    @staticmethod
    def _parse(request: GatewayRequest) -> Any:
        if request.body_too_large:
            raise PushGatewayError("M_TOO_LARGE", "Request body too large")
        raw = request.content.read()
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError):
            raise PushGatewayError("M_NOT_JSON", "Content not JSON.") from None
        try:
            return parse_notify_body(body)
        except InvalidNotification as e:
            raise PushGatewayError("M_BAD_JSON", str(e)) from None

    def _finish(self, request: GatewayRequest, status: int, body: dict) -> None:
        if request._disconnected:
            logger.info("Caller went away before the answer (%d)", status)
        else:
            _write_json(request, status, body)
            request.finish()
        self._count(request, status)

    @staticmethod
    def _count(request: GatewayRequest, status: Optional[int] = None) -> None:
        code = str(status if status is not None else request.code)
        metrics.NOTIFY_REQUESTS.labels(code=code).inc()
        metrics.NOTIFY_DURATION.labels(code=code).observe(time.monotonic() - request.started_at)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class HealthResource(Resource):
    """``/health``: 200 while the process serves requests."""

    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            _write_error(
                request, PushGatewayError("M_UNRECOGNIZED", "Unsupported method", status=405)
            )
            return b""
        _write_json(request, 200, {"status": "ok"})
        return b""


class RootResource(Resource):
    """Routes by exact path; everything else is 404 ``M_UNRECOGNIZED``."""

    isLeaf = True

    def __init__(self, routes: dict[bytes, Resource]) -> None:
        super().__init__()
        self._routes = routes

    def render(self, request: server.Request) -> Any:
        resource = self._routes.get(request.path)
        if resource is None:
            _write_error(request, PushGatewayError("M_UNRECOGNIZED", "Unrecognized request"))
            return b""
        return resource.render(request)


class GatewaySite(server.Site):
    """A Site whose access log is one structured INFO line per request."""

    def __init__(
        self,
        resource: Resource,
        *,
        reactor: Any,
        max_body_size: int,
        access_log: bool,
        x_forwarded_for: bool,
    ) -> None:
        request_factory: Callable[..., GatewayRequest] = type(
            "LimitedGatewayRequest", (GatewayRequest,), {"max_body_size": max_body_size}
        )
        super().__init__(resource, requestFactory=request_factory, reactor=reactor)
        self.displayTracebacks = False
        self._access_log = access_log
        self._x_forwarded_for = x_forwarded_for
        # Idle connections are closed after this long.
        self.timeOut = 60

    def log(self, request: GatewayRequest) -> None:
        if not self._access_log:
            return
        client = request.getClientAddress()
        client_host = getattr(client, "host", str(client))
        if self._x_forwarded_for:
            forwarded = request.getHeader(b"x-forwarded-for")
            if forwarded:
                client_host = forwarded.split(",")[0].strip()
        duration_ms = int(
            (time.monotonic() - getattr(request, "started_at", time.monotonic())) * 1000
        )
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("ascii", "replace")
        access_logger.info(
            "%s %s %s %d %dms",
            client_host,
            method,
            path,
            request.code,
            duration_ms,
            extra={
                "client": client_host,
                "method": method,
                "path": path,
                "status": request.code,
                "duration_ms": duration_ms,
                "request_id": getattr(request, "request_id", None),
            },
        )
