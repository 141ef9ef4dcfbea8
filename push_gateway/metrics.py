"""Prometheus metrics of the push gateway (``myelin_push_gateway_*``).

Defined once at import on the default registry (which also carries the
process and platform collectors). Labels are bounded: the configured app
pattern (never a raw app id from a request), the provider kind, an HTTP
status or a fixed outcome word.
"""

from prometheus_client import Counter, Gauge, Histogram

NOTIFY_REQUESTS = Counter(
    "myelin_push_gateway_notify_requests_total",
    "/notify requests answered, by HTTP status",
    labelnames=["code"],
)
NOTIFY_DURATION = Histogram(
    "myelin_push_gateway_notify_duration_seconds",
    "Time to answer a /notify request, including provider calls and retries",
    labelnames=["code"],
)
DEVICE_OUTCOMES = Counter(
    "myelin_push_gateway_device_outcomes_total",
    "Devices handled, by app and outcome (delivered, rejected, failed, duplicate, skipped)",
    labelnames=["app", "outcome"],
)
PROVIDER_RESPONSES = Counter(
    "myelin_push_gateway_provider_responses_total",
    "Responses from push providers, by kind and HTTP status ('error' for no response)",
    labelnames=["kind", "status"],
)
PROVIDER_DURATION = Histogram(
    "myelin_push_gateway_provider_request_duration_seconds",
    "Time of one request to a push provider",
    labelnames=["kind"],
)
PROVIDER_IN_FLIGHT = Gauge(
    "myelin_push_gateway_provider_requests_in_flight",
    "Requests to push providers in flight",
    labelnames=["kind"],
)
RETRIES = Counter(
    "myelin_push_gateway_retries_total",
    "Attempts repeated after a temporary provider failure",
    labelnames=["kind"],
)
TOKEN_REFRESHES = Counter(
    "myelin_push_gateway_auth_token_refreshes_total",
    "Provider auth tokens minted (FCM OAuth2 access tokens, APNs provider JWTs)",
    labelnames=["kind"],
)
