"""Route table: (method, path pattern) → async handler, with auth and errors.

Patterns are written with ``{name}`` placeholders (one path segment, URL-
decoded) or ``{name:regex}``. Handlers are ``async def h(request) ->
(status, body)``; body is a JSON-able value or a `RawResponse`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import urllib.parse
from typing import Any, Awaitable, Callable

from homeserver.errors import MatrixError
from homeserver.http.json import decode_body, decode_object
from homeserver.http.requester import Requester

logger = logging.getLogger(__name__)

CLIENT_PREFIX = "/_matrix/client/(?:v3|r0)"
CLIENT_V1_PREFIX = "/_matrix/client/v1"
CLIENT_UNSTABLE_PREFIX = "/_matrix/client/unstable"


@dataclasses.dataclass
class RawResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StreamResponse:
    """A body too large to hold in memory (media downloads), streamed by the site.

    ``read(n)`` returns (a Deferred of) up to ``n`` more bytes, ``b""`` at the
    end; ``close()`` is called once the response is done or abandoned.
    """

    status: int
    length: int
    read: Callable[[int], Awaitable[bytes]]
    close: Callable[[], None]
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class HttpRequest:
    """What a handler sees of one HTTP request."""

    __slots__ = ("method", "path", "path_params", "args", "headers", "raw_body",
                 "requester", "client_ip", "route_name", "_json", "twisted_request",
                 "access_token", "body_file")

    def __init__(self, method: str, path: str, args: dict[str, list[str]],
                 headers: dict[str, str], raw_body: bytes, client_ip: str,
                 twisted_request: Any = None) -> None:
        self.method = method
        self.path = path
        self.path_params: dict[str, str] = {}
        self.args = args
        self.headers = headers
        self.raw_body = raw_body
        self.requester: Requester | None = None
        self.client_ip = client_ip
        self.route_name = ""
        self._json: Any = None
        self.twisted_request = twisted_request
        self.access_token: str | None = None
        # Routes added with stream_body=True: the body as a seekable file (raw_body is empty).
        self.body_file: Any = None

    # --- body -------------------------------------------------------------
    def json(self) -> dict[str, Any]:
        """The body as a JSON object (M_NOT_JSON / M_BAD_JSON otherwise)."""
        if self._json is None:
            self._json = decode_object(self.raw_body)
        return self._json

    def json_or_empty(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body counts as ``{}``."""
        if not self.raw_body.strip():
            return {}
        return self.json()

    def json_any(self) -> Any:
        return decode_body(self.raw_body)

    # --- query ------------------------------------------------------------
    def query(self, name: str, default: str | None = None) -> str | None:
        values = self.args.get(name)
        return values[0] if values else default

    def query_list(self, name: str) -> list[str]:
        return self.args.get(name, [])

    def query_int(self, name: str, default: int | None = None) -> int | None:
        value = self.query(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise MatrixError("M_INVALID_PARAM", f"Query parameter {name!r} must be an integer") from None

    def query_bool(self, name: str, default: bool = False) -> bool:
        value = self.query(name)
        if value is None:
            return default
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        raise MatrixError("M_INVALID_PARAM", f"Query parameter {name!r} must be true or false")

    @property
    def user_id(self) -> str:
        assert self.requester is not None
        return self.requester.user_id


Handler = Callable[[HttpRequest], Awaitable[Any]]


@dataclasses.dataclass
class Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    name: str
    auth: str  # "required", "optional", "none"
    allow_guest: bool
    pattern: str
    stream_body: bool = False


_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^}]+))?\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    out = []
    pos = 0
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(pattern[pos:m.start()])
        regex = m.group(2) or "[^/]+"
        out.append(f"(?P<{m.group(1)}>{regex})")
        pos = m.end()
    out.append(pattern[pos:])
    return re.compile("^" + "".join(out) + "$")


# (method, path) answers `Router.match` remembers; cleared when full.
MATCH_MEMO_SIZE = 4096


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._by_prefix: dict[str, list[Route]] = {}
        # Most requests repeat a path (a client's /sync, its typing and receipt
        # URLs): their answer is remembered instead of trying up to every
        # client route's regex in turn.
        self._memo: dict[tuple[str, str], tuple[Route | None, dict[str, str], bool]] = {}

    def add(self, method: str, pattern: str, handler: Handler, *, name: str | None = None,
            auth: str = "required", allow_guest: bool = False, stream_body: bool = False) -> None:
        """Add a route. ``stream_body``: hand the handler the body as a file
        (``request.body_file``) instead of reading it into memory."""
        route = Route(method, compile_pattern(pattern), handler, name or handler.__name__,
                      auth, allow_guest, pattern, stream_body)
        self._routes.append(route)
        self._by_prefix.setdefault(self._prefix_key(pattern), []).append(route)
        self._memo.clear()

    @staticmethod
    def _prefix_key(path: str) -> str:
        # First two segments are always literal in our patterns (/_matrix/client…).
        parts = path.split("/", 3)
        return "/".join(parts[:3])

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_known). path_known: some method matches this path."""
        key = (method, path)
        got = self._memo.get(key)
        if got is None:
            got = self._match(method, path)
            if len(self._memo) >= MATCH_MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = got
        return got[0], dict(got[1]), got[2]

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        candidates = self._by_prefix.get(self._prefix_key(path), ())
        path_known = False
        for route in candidates:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method != method and not (method == "HEAD" and route.method == "GET"):
                path_known = True
                continue
            params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
            return route, params, True
        return None, {}, path_known

    def routes(self) -> list[Route]:
        return list(self._routes)
