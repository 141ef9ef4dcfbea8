"""In-process units of the gateway on a fake clock (no reactor, no sleeps):
retry decisions, token caching, app routing, duplicate suppression and the
dispatcher's outcome handling."""

import json
from typing import Any, Optional

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.web.http_headers import Headers

from push_gateway.app import PushGateway
from push_gateway.config import load_config
from push_gateway.dispatch import AppRouter, DeliveredCache, DeviceOutcome, Dispatcher
from push_gateway.errors import ConfigError, DispatchError, TemporaryDispatchError
from push_gateway.httpclient import HttpResponse, is_public_address
from push_gateway.notification import Device, Notification
from push_gateway.pushkins import DeliveryResult
from push_gateway.pushkins.apns_auth import ProviderTokenSource
from push_gateway.pushkins.fcm import parse_fcm_error
from push_gateway.pushkins.fcm_auth import AccessTokenSource, ServiceAccount
from push_gateway.retry import RetryPolicy, call_with_retries, next_delay_ms, parse_retry_after_ms

POLICY = RetryPolicy(max_attempts=3, base_delay_ms=1000, max_delay_ms=30_000)


def run(coro: Any) -> Deferred:
    return Deferred.fromCoroutine(coro)


def result_of(d: Deferred) -> Any:
    results: list = []
    d.addBoth(results.append)
    assert results, "deferred has not fired"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


# --- retry -------------------------------------------------------------------


def test_next_delay_is_exponential_and_bounded() -> None:
    """Back-off doubles from the base delay, is capped, and ends after max_attempts."""
    error = TemporaryDispatchError("503")
    assert next_delay_ms(POLICY, 1, error) == 1000
    assert next_delay_ms(POLICY, 2, error) == 2000
    assert next_delay_ms(POLICY, 3, error) is None
    many = RetryPolicy(max_attempts=10, base_delay_ms=1000, max_delay_ms=5000)
    assert next_delay_ms(many, 6, error) == 5000


def test_next_delay_honours_retry_after_within_bound() -> None:
    """A provider's Retry-After is used as is, and one beyond max_delay ends the attempts."""
    assert (
        next_delay_ms(POLICY, 1, TemporaryDispatchError("429", custom_retry_delay_ms=7000)) == 7000
    )
    assert (
        next_delay_ms(POLICY, 1, TemporaryDispatchError("429", custom_retry_delay_ms=60_000))
        is None
    )


def test_retry_after_header_parsing() -> None:
    """Retry-After in seconds becomes milliseconds; dates and junk are ignored."""
    assert parse_retry_after_ms("120") == 120_000
    assert parse_retry_after_ms(" 0 ") == 0
    assert parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after_ms(None) is None


def test_call_with_retries_waits_on_the_clock_then_succeeds() -> None:
    """Two temporary failures are retried after 1 s and 2 s of clock time, then the result returns."""
    clock = Clock()
    calls: list[float] = []

    async def attempt() -> str:
        calls.append(clock.seconds())
        if len(calls) < 3:
            raise TemporaryDispatchError("503")
        return "ok"

    d = run(call_with_retries(attempt, POLICY, clock, "test"))
    assert calls == [0]
    clock.advance(0.999)
    assert calls == [0]
    clock.advance(0.001)
    assert calls == [0, 1.0]
    clock.advance(2.0)
    assert result_of(d) == "ok"
    assert calls == [0, 1.0, 3.0]


def test_call_with_retries_gives_up_after_max_attempts() -> None:
    """After max_attempts temporary failures the last one is raised."""
    clock = Clock()
    calls = []

    async def attempt() -> None:
        calls.append(1)
        raise TemporaryDispatchError(f"503 #{len(calls)}")

    d = run(call_with_retries(attempt, POLICY, clock, "test"))
    clock.advance(1)
    clock.advance(2)
    with pytest.raises(TemporaryDispatchError, match="#3"):
        result_of(d)
    assert len(calls) == 3


def test_permanent_failure_is_not_retried() -> None:
    """A DispatchError ends the attempts at once."""
    calls = []

    async def attempt() -> None:
        calls.append(1)
        raise DispatchError("400")

    with pytest.raises(DispatchError):
        result_of(run(call_with_retries(attempt, POLICY, Clock(), "test")))
    assert calls == [1]


# --- FCM access tokens -------------------------------------------------------


class FakeHttp:
    """Answers POSTs from a list of (status, body[, headers]) or pending Deferreds."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict, bytes]] = []

    async def post(self, url: str, headers: dict, body: bytes) -> HttpResponse:
        self.requests.append((url, headers, body))
        answer = self.answers.pop(0)
        if isinstance(answer, Deferred):
            answer = await answer
        status, payload, *headers = answer
        raw_headers = {k: [v] for k, v in (headers[0] if headers else {}).items()}
        return HttpResponse(status, Headers(raw_headers), json.dumps(payload).encode())


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return ServiceAccount("sa@p.iam.gserviceaccount.com", pem, "kid1", "p", None)


def test_access_token_is_cached_until_near_expiry(account: ServiceAccount) -> None:
    """The token is fetched once, reused, and fetched again shortly before it expires."""
    clock = Clock()
    http = FakeHttp(
        (200, {"access_token": "t1", "expires_in": 3600}),
        (200, {"access_token": "t2", "expires_in": 3600}),
    )
    source = AccessTokenSource(account, "https://oauth.example/token", http, clock)  # type: ignore[arg-type]
    assert result_of(run(source.get_token())) == "t1"
    clock.advance(3000)
    assert result_of(run(source.get_token())) == "t1"
    assert len(http.requests) == 1
    clock.advance(500)
    assert result_of(run(source.get_token())) == "t2"
    url, headers, body = http.requests[0]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in body


def test_concurrent_callers_share_one_token_request(account: ServiceAccount) -> None:
    """Callers arriving while a token request is in flight wait for it instead of sending their own."""
    pending: Deferred = Deferred()
    http = FakeHttp(pending)
    source = AccessTokenSource(account, "https://oauth.example/token", http, Clock())  # type: ignore[arg-type]
    first, second = run(source.get_token()), run(source.get_token())
    pending.callback((200, {"access_token": "shared", "expires_in": 3600}))
    assert result_of(first) == result_of(second) == "shared"
    assert len(http.requests) == 1


def test_token_endpoint_errors_are_typed(account: ServiceAccount) -> None:
    """A 503 from the token endpoint is temporary, a 400 invalid_grant permanent."""
    source = AccessTokenSource(account, "u", FakeHttp((503, {})), Clock())  # type: ignore[arg-type]
    with pytest.raises(TemporaryDispatchError):
        result_of(run(source.get_token()))
    source = AccessTokenSource(account, "u", FakeHttp((400, {"error": "invalid_grant"})), Clock())  # type: ignore[arg-type]
    with pytest.raises(DispatchError) as excinfo:
        result_of(run(source.get_token()))
    assert not isinstance(excinfo.value, TemporaryDispatchError)


def test_fcm_error_body_parsing() -> None:
    """The FCM v1 error status, errorCode and field violations are read from their structured places."""
    body = json.dumps(
        {
            "error": {
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": "INVALID_ARGUMENT",
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": "message.token"}],
                    },
                ],
            }
        }
    ).encode()
    assert parse_fcm_error(body) == ("INVALID_ARGUMENT", "INVALID_ARGUMENT", {"message.token"})
    assert parse_fcm_error(b"<html>") == (None, None, set())


# --- APNs provider tokens ----------------------------------------------------


def test_apns_provider_token_is_reused_then_refreshed() -> None:
    """The ES256 provider token is reused for 50 minutes, then replaced; invalidation waits 20 minutes."""
    clock = Clock()
    clock.advance(1_700_000_000)
    key = ec.generate_private_key(ec.SECP256R1())
    source = ProviderTokenSource(key, "KEYID", "TEAM", clock)
    token = source.get_token()
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEYID", "typ": "JWT"}
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"])
    assert claims == {"iss": "TEAM", "iat": 1_700_000_000}
    clock.advance(5 * 60)
    source.invalidate()  # too soon after minting: Apple would refuse a new one
    assert source.get_token() == token
    clock.advance(44 * 60)
    assert source.get_token() == token
    clock.advance(60)
    refreshed = source.get_token()
    assert refreshed != token
    clock.advance(21 * 60)
    source.invalidate()  # Apple said it expired, and it is old enough to replace
    assert source.get_token() != refreshed


# --- routing, duplicates, dispatcher ------------------------------------------


class FakePushkin:
    """A pushkin whose answer per pushkey is scripted."""

    kind = "fake"

    def __init__(self, name: str, script: Optional[dict] = None) -> None:
        self.name = name
        self.script = script or {}
        self.sent: list[str] = []

    async def dispatch(self, notification: Notification, device: Device) -> DeliveryResult:
        self.sent.append(device.pushkey)
        answer = self.script.get(device.pushkey, DeliveryResult.DELIVERED)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_router_prefers_exact_then_single_glob() -> None:
    """Exact app ids win; a glob must match the whole id; several matching globs match nothing."""
    exact, ios, star = (
        FakePushkin("im.app.ios"),
        FakePushkin("im.app.ios*"),
        FakePushkin("im.*.ios.dev"),
    )
    router = AppRouter({p.name: p for p in (exact, ios, star)})
    assert router.find("im.app.ios") is exact
    assert router.find("im.app.ios.beta") is ios
    assert router.find("xim.app.ios.beta") is None
    assert router.find("im.other.ios.dev") is star
    assert router.find("im.app.ios.dev") is None  # matches both globs: ambiguous


def test_delivered_cache_expires_and_is_bounded() -> None:
    """Entries suppress resends within the window only, and the oldest are evicted."""
    clock = Clock()
    cache = DeliveredCache(clock, window_ms=60_000, max_entries=2)
    cache.add(("a", "k1", "$e"))
    assert cache.seen(("a", "k1", "$e"))
    clock.advance(61)
    assert not cache.seen(("a", "k1", "$e"))
    for i in range(3):
        cache.add(("a", f"k{i}", "$e"))
    assert not cache.seen(("a", "k0", "$e"))
    assert cache.seen(("a", "k2", "$e"))
    assert not DeliveredCache(clock, 0, 10).seen(("a", "k2", "$e"))


def test_dispatcher_collects_outcomes_per_device() -> None:
    """Each device gets its own outcome: delivered, rejected, failed, unexpected error, unknown app."""
    pushkin = FakePushkin(
        "app",
        {
            "gone": DeliveryResult.REJECTED,
            "down": TemporaryDispatchError("503"),
            "bug": KeyError("oops"),
        },
    )
    dispatcher = Dispatcher(AppRouter({"app": pushkin}), DeliveredCache(Clock(), 60_000, 100))
    devices = tuple(Device("app", k) for k in ("ok", "gone", "down", "bug")) + (
        Device("other", "x"),
    )
    result = result_of(run(dispatcher.dispatch(Notification(devices=devices, event_id="$e"))))
    assert result.outcomes == (
        DeviceOutcome.DELIVERED,
        DeviceOutcome.REJECTED,
        DeviceOutcome.FAILED,
        DeviceOutcome.ERROR,
        DeviceOutcome.REJECTED,
    )
    assert result.rejected == ["gone", "x"]
    again = result_of(run(dispatcher.dispatch(Notification(devices=devices[:1], event_id="$e"))))
    assert again.outcomes == (DeviceOutcome.DUPLICATE,)
    assert pushkin.sent.count("ok") == 1


def test_public_address_check() -> None:
    """Loopback, private, link-local and mapped private addresses are not public."""
    for host in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "169.254.1.1",
        "::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "not-an-ip",
    ):
        assert not is_public_address(host), host
    for host in ("8.8.8.8", "2001:4860:4860::8888"):
        assert is_public_address(host), host


def test_gateway_build_reports_missing_key_file(tmp_path: Any) -> None:
    """Building the gateway with a missing VAPID key file is a ConfigError naming the key path."""
    config, _ = load_config(
        {
            "apps": {
                "web": {
                    "type": "webpush",
                    "vapid_private_key": str(tmp_path / "none.pem"),
                    "vapid_contact_email": "a@example.org",
                }
            }
        }
    )
    with pytest.raises(ConfigError, match=r'apps\["web"\].vapid_private_key'):
        PushGateway(config, MemoryReactorClock())
    assert not (tmp_path / "none.pem").exists()


def test_metrics_listener_is_separate_when_port_is_set() -> None:
    """With metrics.port set the gateway listens twice and /metrics is not on the http listener."""
    reactor = MemoryReactorClock()
    config, _ = load_config(
        {"http": {"port": 8090}, "metrics": {"port": 9190, "bind_address": "127.0.0.2"}}
    )
    gateway = PushGateway(config, reactor)
    gateway.start()
    assert [(port, interface) for port, _, _, interface in reactor.tcpServers] == [
        (8090, "127.0.0.1"),
        (9190, "127.0.0.2"),
    ]
    assert gateway.metrics_site is not None


def _fcm_pushkin(tmp_path: Any, account_pem: str, reactor: Any) -> Any:
    from push_gateway.pushkins.fcm import FcmPushkin

    sa = tmp_path / "sa.json"
    sa.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key": account_pem,
                "client_email": "sa@p.iam.gserviceaccount.com",
            }
        )
    )
    config, _ = load_config({"apps": {"android": {"type": "fcm", "service_account_file": str(sa)}}})
    return FcmPushkin("android", config.apps["android"], reactor)


def test_fcm_401_refreshes_token_and_429_honours_retry_after(
    tmp_path: Any, account: ServiceAccount
) -> None:
    """A 401 makes FCM fetch a new access token; a 429's Retry-After sets the wait."""
    reactor = MemoryReactorClock()
    pushkin = _fcm_pushkin(tmp_path, account.private_key, reactor)
    tokens = FakeHttp(
        (200, {"access_token": "old", "expires_in": 3600}),
        (200, {"access_token": "new", "expires_in": 3600}),
    )
    sends = FakeHttp((401, {}), (429, {}, {"Retry-After": "5"}), (200, {"name": "m"}))
    pushkin._tokens._http = tokens
    pushkin._http = sends
    n = Notification(devices=(Device("android", "tok"),), event_id="$e")
    d = run(pushkin.dispatch(n, n.devices[0]))
    assert [h["Authorization"] for _, h, _ in sends.requests] == ["Bearer old"]
    reactor.advance(1.0)  # first back-off after the 401
    assert [h["Authorization"] for _, h, _ in sends.requests] == ["Bearer old", "Bearer new"]
    reactor.advance(4.9)
    assert len(sends.requests) == 2
    reactor.advance(0.1)
    assert result_of(d) is DeliveryResult.DELIVERED
    assert sends.requests[0][0] == "https://fcm.googleapis.com/v1/projects/p/messages:send"
