"""The twisted.web site: one leaf resource that routes every request.

Limits the body size, sets the request ID, authenticates, calls the handler,
renders JSON or the spec's error, adds CORS headers, writes one access line.

Observability hooks (wired in app.py, see docs/observability.md): the
``observer`` gets (endpoint, method, status, seconds) per request;
``RootResource.in_flight`` counts requests being handled; ``endpoint_var``
carries the route name to every log record of the request; a site's
``request_id_header`` names a trusted incoming header whose value becomes
the request id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import itertools
import secrets
import time
from typing import Any, Awaitable, Callable

from twisted.internet import defer
from twisted.web import resource, server

from homeserver.errors import InteractiveAuthRequired, MatrixError
from homeserver.http import access_log
from homeserver.http.json import encode
from homeserver.http.request_context import request_id_var, user_id_var
from homeserver.http.requester import Requester
from homeserver.http.router import HttpRequest, RawResponse, Router, StreamResponse

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("homeserver.access")

CORS_HEADERS = {
    b"Access-Control-Allow-Origin": b"*",
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"ETag, X-Request-ID",
}

Authenticator = Callable[[HttpRequest, bool], Awaitable[Requester | None]]
# Hook for metrics: (route_name, method, status, seconds)
RequestObserver = Callable[[str, str, int, float], None]

# The route name (operationId) of the request being handled, for log records.
endpoint_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("endpoint", default=None)

# An incoming request id is used only if it is short and plain: it goes into
# every log line and a response header, so no spaces, quotes or newlines.
_INCOMING_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


# Request ids: a random per-process prefix and a counter (12 hex digits).
# Unique within a process and practically across restarts, without a
# urandom call per request.
_REQUEST_ID_PREFIX = secrets.token_hex(3)
_request_counter = itertools.count(1)


def _next_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_counter) & 0xFFFFFF:06x}"


class MyelinRequest(server.Request):
    """A request whose body may not exceed the site's limit."""

    max_body_size = 10 * 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._too_large = False
        self._body_len = 0
        self.start_time = time.perf_counter()
        self.request_id = _next_request_id()
        self.route_name = "-"
        self.authenticated_user: str | None = None

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body_size:
            self._too_large = True
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_len += len(data)
        if self._body_len > self.max_body_size:
            self._too_large = True
            return
        super().handleContentChunk(data)


class RootResource(resource.Resource):
    isLeaf = True

    def __init__(self, router: Router, authenticate: Authenticator,
                 observer: RequestObserver | None = None,
                 fallback: resource.Resource | None = None) -> None:
        super().__init__()
        self._router = router
        self._authenticate = authenticate
        self._observer = observer
        self._fallback = fallback
        # Requests received and not yet answered (a metrics gauge reads it).
        self.in_flight = 0

    def render(self, request: MyelinRequest) -> Any:  # type: ignore[override]
        d = defer.ensureDeferred(self._handle(request))
        finished = request.notifyFinish()
        finished.addErrback(lambda _f: d.cancel())
        return server.NOT_DONE_YET

    async def _handle(self, request: MyelinRequest) -> None:
        header = getattr(request.site, "request_id_header", None)
        if header is not None:
            values = request.requestHeaders.getRawHeaders(header)
            if values:
                incoming = values[-1].decode("latin-1")
                if _INCOMING_REQUEST_ID.fullmatch(incoming):
                    request.request_id = incoming
        request_id_var.set(request.request_id)
        user_id_var.set(None)
        self.in_flight += 1
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("utf-8", "replace")
        status = 500
        route_name = "unknown"
        try:
            if method == "OPTIONS":
                status = self._send(request, 200, b"{}")
                route_name = "options"
                return
            if request._too_large:
                raise MatrixError("M_TOO_LARGE", "Request body too large")
            route, params, path_known = self._router.match(method, path)
            if route is None:
                if path_known:
                    raise MatrixError("M_UNRECOGNIZED", "Unrecognized request", status=405)
                raise MatrixError("M_UNRECOGNIZED", "Unrecognized request")
            route_name = route.name
            request.route_name = route_name
            endpoint_var.set(route_name)
            args = {k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
                    for k, vs in request.args.items()}
            headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1")
                       for k, v in request.requestHeaders.getAllRawHeaders()}
            request.content.seek(0)
            # Streaming routes (media uploads) read the buffered body file themselves.
            raw = b"" if route.stream_body else request.content.read()
            http_req = HttpRequest(method, path, args, headers, raw, request.getClientAddress().host
                                   if hasattr(request.getClientAddress(), "host") else "-", request)
            http_req.path_params = params
            if route.stream_body:
                http_req.body_file = request.content
            http_req.route_name = route_name
            if route.auth != "none":
                requester = await self._authenticate(http_req, route.auth == "required")
                if requester is not None:
                    if requester.is_guest and not route.allow_guest:
                        raise MatrixError("M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
                    http_req.requester = requester
                    user_id_var.set(requester.user_id)
                    request.authenticated_user = requester.user_id
            result = await route.handler(http_req)
            if isinstance(result, RawResponse):
                for k, v in result.headers.items():
                    request.setHeader(k, v)
                status = self._send(request, result.status, result.body, result.content_type)
            elif isinstance(result, StreamResponse):
                status = await self._send_stream(request, result)
            elif result is None:
                status = self._send(request, 200, b"{}")
            else:
                code, body = result
                status = self._send(request, code, encode(body))
        except defer.CancelledError:
            status = 499
        except MatrixError as e:
            for k, v in e.headers.items():
                request.setHeader(k, v)
            status = self._send(request, e.status, encode(e.to_json()))
        except InteractiveAuthRequired as e:
            status = self._send(request, 401, encode(e.body))
        except Exception:
            logger.exception("request %s %s failed", method, route_name)
            status = self._send(request, 500, encode({"errcode": "M_UNKNOWN", "error": "Internal server error"}))
        finally:
            self.in_flight -= 1
            if self._observer is not None:
                self._observer(route_name, method, status, time.perf_counter() - request.start_time)

    def _send(self, request: MyelinRequest, status: int, body: bytes,
              content_type: str = "application/json") -> int:
        if request.finished or request._disconnected:
            return status
        request.setResponseCode(status)
        for k, v in CORS_HEADERS.items():
            request.setHeader(k, v)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        request.setHeader(b"X-Request-ID", request.request_id.encode("ascii"))
        request.setHeader(b"Content-Length", str(len(body)).encode("ascii"))
        if not request.responseHeaders.hasHeader(b"Cache-Control"):
            request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
        if request.method != b"HEAD":
            request.write(body)
        request.finish()
        return status

    async def _send_stream(self, request: MyelinRequest, response: StreamResponse) -> int:
        """Write a large body piece by piece, pausing while the client's socket is full."""
        try:
            if request.finished or request._disconnected:
                return response.status
            request.setResponseCode(response.status)
            for k, v in CORS_HEADERS.items():
                request.setHeader(k, v)
            for k, v in response.headers.items():
                request.setHeader(k, v)
            request.setHeader(b"Content-Type", response.content_type.encode("ascii"))
            request.setHeader(b"X-Request-ID", request.request_id.encode("ascii"))
            request.setHeader(b"Content-Length", str(response.length).encode("ascii"))
            if request.method == b"HEAD":
                request.finish()
                return response.status
            producer = _PauseProducer()
            request.registerProducer(producer, True)
            sent = 0
            try:
                while sent < response.length and not request._disconnected:
                    await producer.wait_until_resumed()
                    chunk = await response.read(min(_STREAM_CHUNK, response.length - sent))
                    if not chunk:
                        break
                    sent += len(chunk)
                    if not request._disconnected:
                        request.write(chunk)
            except defer.CancelledError:
                raise
            except Exception:
                # The headers are out: no error body is possible any more.
                logger.exception("streaming a response failed after %d bytes", sent)
            finally:
                if request.channel is not None:  # None once the client has gone
                    request.unregisterProducer()
            if request._disconnected:
                return response.status
            if sent < response.length:
                # The file ended early: the client must not take a short body as whole.
                logger.warning("streamed %d of %d bytes; dropping the connection", sent, response.length)
                request.loseConnection()
            else:
                request.finish()
            return response.status
        finally:
            response.close()


_STREAM_CHUNK = 64 * 1024


class _PauseProducer:
    """Push-producer flow control for `_send_stream`: the transport pauses and resumes us."""

    def __init__(self) -> None:
        self._resumed: defer.Deferred[None] | None = None

    def pauseProducing(self) -> None:
        if self._resumed is None:
            self._resumed = defer.Deferred()

    def resumeProducing(self) -> None:
        d, self._resumed = self._resumed, None
        if d is not None:
            d.callback(None)

    def stopProducing(self) -> None:
        self.resumeProducing()

    async def wait_until_resumed(self) -> None:
        if self._resumed is not None:
            await self._resumed


class MyelinSite(server.Site):
    """Site with our request class and a one-line-per-request access log."""

    requestFactory = MyelinRequest
    # Set per listener (`listeners[].request_id_header`), e.g. b"X-Request-ID".
    request_id_header: bytes | None = None

    def __init__(self, root: resource.Resource, max_body_size: int, access_log: bool = True,
                 reactor: Any = None) -> None:
        kwargs = {"reactor": reactor} if reactor is not None else {}
        super().__init__(root, **kwargs)
        self.requestFactory = type("LimitedRequest", (MyelinRequest,), {"max_body_size": max_body_size})
        self._access_log = access_log

    def log(self, request: MyelinRequest) -> None:  # type: ignore[override]
        if not self._access_log:
            return
        fast = access_log.writer()
        if fast is None and not access_logger.isEnabledFor(logging.INFO):
            return
        duration_ms = (time.perf_counter() - getattr(request, "start_time", time.perf_counter())) * 1000
        request_id = getattr(request, "request_id", "-")
        method = request.method.decode("ascii", "replace")
        endpoint = getattr(request, "route_name", "-")
        user_id = getattr(request, "authenticated_user", None)
        if fast is not None:
            fast.write(request_id, method, endpoint, request.code, request.sentLength, duration_ms, user_id)
            return
        # The fields again as attributes, for the JSON formatter. Never the raw
        # path or query: clients may put access_token in the query string.
        access_logger.info(
            "%s %s %s %d %d %.1fms %s",
            request_id, method, endpoint, request.code, request.sentLength, duration_ms, user_id or "-",
            extra={"request_id": request_id, "user_id": user_id, "endpoint": endpoint, "method": method,
                   "status": request.code, "size": request.sentLength, "duration_ms": round(duration_ms, 3)},
        )
