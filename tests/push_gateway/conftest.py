"""Fixtures for the push gateway tests: keys and certificates generated per
session, stand-in providers on 127.0.0.1, and the real gateway started as a
subprocess (``python -m push_gateway -c <tmp config>``) on a free loopback
port."""

import os
import sys
from typing import Iterator

import httpx
import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from pg_fixtures import (  # noqa: E402
    APNS_KEY_ID,
    APNS_TEAM_ID,
    APNS_TOPIC,
    FCM_PROJECT,
    GatewayProcess,
    Keys,
    gateway_config,
    make_keys,
)
from pg_standins import ApnsStandIn, FcmStandIn, WebPushStandIn  # noqa: E402


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Generates the provider credentials in a temporary directory."""
    return make_keys(tmp_path_factory.mktemp("pg_keys"))


@pytest.fixture(scope="session")
def fcm(keys: Keys) -> Iterator[FcmStandIn]:
    """The FCM token and send endpoints."""
    standin = FcmStandIn(keys.service_account, keys.fcm_public_pem, FCM_PROJECT)
    yield standin
    standin.close()


@pytest.fixture(scope="session")
def apns(keys: Keys) -> Iterator[ApnsStandIn]:
    """The APNs HTTP/2 endpoint."""
    standin = ApnsStandIn(
        str(keys.apns_server_cert),
        str(keys.apns_server_key),
        str(keys.apns_client_cert),
        keys.apns_public_key,
        APNS_KEY_ID,
        APNS_TEAM_ID,
        APNS_TOPIC,
    )
    yield standin
    standin.close()


@pytest.fixture(scope="session")
def webpush(keys: Keys) -> Iterator[WebPushStandIn]:
    """The Web Push service."""
    standin = WebPushStandIn(
        keys.subscription_private_key, keys.subscription_auth_bytes, keys.vapid_public_key
    )
    yield standin
    standin.close()


@pytest.fixture(scope="session")
def gateway(
    keys: Keys, fcm: FcmStandIn, apns: ApnsStandIn, webpush: WebPushStandIn
) -> Iterator[GatewayProcess]:
    """The gateway, running as a subprocess against the stand-ins."""
    config_path = keys.dir / "push_gateway.yaml"
    config_path.write_text(yaml.safe_dump(gateway_config(keys, fcm, apns, webpush)))
    process = GatewayProcess(config_path)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def client(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the gateway."""
    with httpx.Client(base_url=gateway.url, timeout=20) as c:
        yield c
