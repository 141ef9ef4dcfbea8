"""Helpers for the push gateway tests: key and certificate generation, the
gateway subprocess and its config. (A uniquely named module, so tests import
it unambiguously whatever other conftest.py files exist.)"""

import base64
import datetime
import ipaddress
import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from py_vapid import Vapid02

from pg_standins import ApnsStandIn, FcmStandIn, WebPushStandIn

REPO_ROOT = Path(__file__).resolve().parents[2]
FCM_PROJECT = "myelin-test"
APNS_KEY_ID = "ABC123DEFG"
APNS_TEAM_ID = "TEAM123456"
APNS_TOPIC = "org.example.ios"


def _pem_private(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_self_signed(common_name: str, key: Any, *, ip: str | None = None) -> bytes:
    """A self-signed CA certificate (PEM), valid for ``ip`` when given."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Keys:
    """Every key and certificate file the tests use."""

    dir: Path
    service_account_file: Path
    service_account: dict
    fcm_public_pem: bytes
    apns_p8_file: Path
    apns_public_key: Any
    apns_server_cert: Path
    apns_server_key: Path
    apns_client_pem: Path
    apns_client_cert: Path
    vapid_key_file: Path
    vapid_public_key: str
    subscription_private_key: Any
    subscription_p256dh: str
    subscription_auth: str
    subscription_auth_bytes: bytes


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_keys(d: Path) -> Keys:
    """Generates the provider credentials in directory ``d``."""

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = {
        "type": "service_account",
        "project_id": FCM_PROJECT,
        "private_key_id": "0123456789abcdef",
        "private_key": _pem_private(rsa_key).decode(),
        "client_email": "push@myelin-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    sa_file = d / "service-account.json"
    sa_file.write_text(json.dumps(account))
    fcm_public = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    apns_key = ec.generate_private_key(ec.SECP256R1())
    p8 = d / f"AuthKey_{APNS_KEY_ID}.p8"
    p8.write_bytes(_pem_private(apns_key))

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = d / "apns-server.crt"
    server_cert.write_bytes(make_self_signed("127.0.0.1", server_key, ip="127.0.0.1"))
    server_key_file = d / "apns-server.key"
    server_key_file.write_bytes(_pem_private(server_key))

    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert_pem = make_self_signed("Apple Push Services: org.example.ios", client_key)
    client_cert = d / "apns-client.crt"
    client_cert.write_bytes(client_cert_pem)
    client_pem = d / "apns-client.pem"
    client_pem.write_bytes(client_cert_pem + _pem_private(client_key))

    vapid = Vapid02()
    vapid.generate_keys()
    vapid_file = d / "vapid.pem"
    vapid.save_key(str(vapid_file))
    vapid_public = b64url(
        vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )

    receiver = ec.generate_private_key(ec.SECP256R1())
    p256dh = b64url(
        receiver.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    auth = os.urandom(16)

    return Keys(
        dir=d,
        service_account_file=sa_file,
        service_account=account,
        fcm_public_pem=fcm_public,
        apns_p8_file=p8,
        apns_public_key=apns_key.public_key(),
        apns_server_cert=server_cert,
        apns_server_key=server_key_file,
        apns_client_pem=client_pem,
        apns_client_cert=client_cert,
        vapid_key_file=vapid_file,
        vapid_public_key=vapid_public,
        subscription_private_key=receiver,
        subscription_p256dh=p256dh,
        subscription_auth=b64url(auth),
        subscription_auth_bytes=auth,
    )


class GatewayProcess:
    """A running ``python -m push_gateway`` and its log lines."""

    def __init__(self, config_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "push_gateway", "-c", str(config_path)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._ready: "queue.Queue[int | None]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            port = self._ready.get(timeout=30)
        except queue.Empty:
            port = None
        if port is None:
            self.stop()
            raise RuntimeError("gateway did not start:\n" + "\n".join(self.lines))
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "listening" and entry.get("listener") == "http":
                self._ready.put(entry["port"])
        self._ready.put(None)

    def log_entries(self) -> list[dict]:
        entries = []
        for line in list(self.lines):
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
        return entries

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def gateway_config(keys: Keys, fcm: FcmStandIn, apns: ApnsStandIn, webpush: WebPushStandIn) -> dict:
    """The config the integration tests run the gateway with."""
    fast = {"retry_base_delay": "10ms", "request_timeout": "5s", "max_attempts": 3}
    return {
        "log": {"level": "INFO", "format": "json"},
        "http": {"bind_addresses": ["127.0.0.1"], "port": 0, "max_request_body_size": "64K"},
        "metrics": {"enabled": True},
        "apps": {
            "org.example.android": {
                "type": "fcm",
                "service_account_file": str(keys.service_account_file),
                "base_url": fcm.base_url,
                "token_url": fcm.token_url,
                **fast,
            },
            "org.example.ios.*": {
                "type": "apns",
                "base_url": apns.base_url,
                "tls_ca_file": str(keys.apns_server_cert),
                "keyfile": str(keys.apns_p8_file),
                "key_id": APNS_KEY_ID,
                "team_id": APNS_TEAM_ID,
                "topic": APNS_TOPIC,
                **fast,
            },
            "org.example.ioscert": {
                "type": "apns",
                "base_url": apns.base_url,
                "tls_ca_file": str(keys.apns_server_cert),
                "certfile": str(keys.apns_client_pem),
                "topic": APNS_TOPIC,
                **fast,
            },
            "org.example.web": {
                "type": "webpush",
                "vapid_private_key": str(keys.vapid_key_file),
                "vapid_contact_email": "admin@example.org",
                "allow_private_addresses": True,
                **fast,
            },
            "org.example.web.strict": {
                "type": "webpush",
                "vapid_private_key": str(keys.vapid_key_file),
                "vapid_contact_email": "admin@example.org",
                **fast,
            },
        },
    }
