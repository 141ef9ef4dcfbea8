"""Fetching pages and images for URL previews, refusing private addresses.

Every address a host name resolves to is checked against the rules
(`rules.AddressRules`) inside the name resolution itself, so the connection
can only go to an address that was checked: a DNS answer cannot swap a
private address in after the check (the approach of Synapse's
``BlocklistingReactorWrapper``). IP literals are checked before anything is
sent. Redirects (at most ``MAX_REDIRECTS``) go through the same resolver. Every
request has a timeout for the answer and one for the body, and bodies over
``max_size`` are cut off and refused.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Any, BinaryIO

import treq
from twisted.internet import defer
from twisted.web.client import Agent, BrowserLikeRedirectAgent, HTTPConnectionPool, ResponseFailed

from homeserver.util.ip_ranges import AddressRules, FilteringReactor, ip_literal

MAX_REDIRECTS = 5
USER_AGENT = "Myelin (Matrix homeserver) URL preview"


class BlockedError(Exception):
    """The URL resolves only to refused addresses."""


class FetchError(Exception):
    """The fetch failed: unreachable, an HTTP error, a timeout."""


class TooLargeError(Exception):
    """The body is larger than allowed."""


@dataclasses.dataclass
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str | None
    length: int


class PreviewFetcher:
    """Outgoing HTTP for previews.

    Args:
        reactor: the real reactor.
        rules: which addresses may be reached.
        accept_language: the Accept-Language values.
        timeout_s: the limit for the answer, and again for the body.
    """

    def __init__(self, reactor: Any, rules: AddressRules, accept_language: list[str], timeout_s: float = 15.0) -> None:
        self._reactor = reactor
        self._rules = rules
        self._accept_language = ", ".join(accept_language) or "en"
        self._timeout_s = timeout_s
        self._pool = HTTPConnectionPool(reactor, persistent=False)

    async def fetch(self, url: str, out: BinaryIO, max_size: int) -> Fetched:
        """GET ``url`` into ``out``.

        Raises:
            BlockedError: the host is refused by the address rules.
            TooLargeError: the body is larger than ``max_size``.
            FetchError: any other failure.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("only http and https URLs can be previewed")
        literal = ip_literal(parts.hostname)
        if literal is not None and not self._rules.allows(literal):
            raise BlockedError(f"{literal} is a refused address")
        blocked: list[str] = []
        reactor = FilteringReactor(self._reactor, self._rules, blocked)
        agent = BrowserLikeRedirectAgent(Agent(reactor, connectTimeout=self._timeout_s, pool=self._pool),
                                         redirectLimit=MAX_REDIRECTS)
        client = treq.client.HTTPClient(agent)
        headers = {"User-Agent": [USER_AGENT], "Accept-Language": [self._accept_language],
                   "Accept": ["text/html,application/xhtml+xml,image/*;q=0.9,*/*;q=0.8"]}
        try:
            response = await client.get(url, headers=headers, timeout=self._timeout_s)
        except Exception as e:
            if blocked:
                raise BlockedError(f"{parts.hostname} resolves only to refused addresses") from None
            raise FetchError(f"could not fetch: {_describe(e)}") from None
        declared = response.headers.getRawHeaders(b"content-length")
        if declared:
            try:
                if int(declared[-1]) > max_size:
                    response.original.deliverBody(_Discard())
                    raise TooLargeError(f"{declared[-1].decode('ascii', 'replace')} bytes")
            except ValueError:
                pass
        written = [0]

        def collect(data: bytes) -> None:
            written[0] += len(data)
            if written[0] > max_size:
                raise TooLargeError(f"more than {max_size} bytes")
            out.write(data)

        d = treq.collect(response, collect)
        d.addTimeout(self._timeout_s, self._reactor)
        try:
            await d
        except TooLargeError:
            raise
        except Exception as e:
            if isinstance(e, ResponseFailed) and any(
                    f.check(TooLargeError) for f in getattr(e, "reasons", [])):
                raise TooLargeError(f"more than {max_size} bytes") from None
            raise FetchError(f"could not read the body: {_describe(e)}") from None
        if written[0] > max_size:
            raise TooLargeError(f"more than {max_size} bytes")
        content_types = response.headers.getRawHeaders(b"content-type")
        final_url = response.request.absoluteURI.decode("ascii", "replace") if response.request else url
        return Fetched(final_url, response.code, content_types[-1].decode("latin-1") if content_types else None,
                       written[0])


class _Discard:
    """Reads and drops a body we refuse."""

    def makeConnection(self, transport: Any) -> None:
        transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        pass


def _describe(e: BaseException) -> str:
    if isinstance(e, defer.TimeoutError) or type(e).__name__ in ("TimeoutError", "CancelledError"):
        return "timed out"
    reasons = getattr(e, "reasons", None)
    if reasons:
        return "; ".join(str(r.value) for r in reasons)
    return str(e) or type(e).__name__


