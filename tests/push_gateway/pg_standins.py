"""Local stand-ins for the push providers, for the push gateway's tests.

Each listens on 127.0.0.1 in background threads, checks what the gateway sends
the way the real service would (OAuth2 assertion, bearer token, ES256 provider
JWT, VAPID signature, aes128gcm body), records what it accepted, and answers
according to a tag in the pushkey / endpoint:

* ``ok…``: success;
* ``gone…``: the token is unregistered (FCM 404 UNREGISTERED, APNs 410,
  Web Push 410);
* ``bad…``: the token is malformed (FCM 400 INVALID_ARGUMENT on
  message.token, APNs 400 BadDeviceToken);
* ``flaky…``: 503 with ``Retry-After: 0`` the first time, then success;
* ``broken…``: a permanent non-token error (FCM 400 on message.data).

A check that fails is appended to ``errors`` and answered with 418, so the
test sees both the gateway's reaction and the reason.
"""

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.events
import http_ece
import jwt
from py_vapid import Vapid02


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self._seen: dict[str, int] = {}

    def attempt(self, key: str) -> int:
        """Counts attempts per key; returns this attempt's number (1-based)."""
        with self.lock:
            self._seen[key] = self._seen.get(key, 0) + 1
            return self._seen[key]

    def record(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def find(self, **match: Any) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if all(r.get(k) == v for k, v in match.items())]


class _HttpStandIn(_Recorder):
    """A ThreadingHTTPServer whose handler calls ``self.handle_post``."""

    def __init__(self) -> None:
        super().__init__()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, headers, payload = outer.handle_post(self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def handle_post(self, path: str, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json(status: int, body: Any, headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def _fcm_error(
    status: int, grpc_status: str, error_code: Optional[str], field: Optional[str] = None
) -> dict:
    details: list[dict] = []
    if error_code:
        details.append(
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        )
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": "invalid"}],
            }
        )
    return {
        "error": {
            "code": status,
            "message": "stand-in error",
            "status": grpc_status,
            "details": details,
        }
    }


class FcmStandIn(_HttpStandIn):
    """The OAuth2 token endpoint (``/token``) and the FCM v1 send endpoint."""

    def __init__(self, service_account: dict, public_key_pem: bytes, project_id: str) -> None:
        self._account = service_account
        self._public_key = public_key_pem
        self._project_id = project_id
        self.issued_tokens: list[str] = []
        super().__init__()
        self.token_url = f"{self.base_url}/token"

    def handle_post(self, path: str, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        if path == "/token":
            return self._token(headers, body)
        if path == f"/v1/projects/{self._project_id}/messages:send":
            return self._send(headers, body)
        self.error(f"unexpected path {path}")
        return _json(418, {})

    def _token(self, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            self.error(f"bad grant_type {form.get('grant_type')}")
            return _json(418, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form["assertion"][0],
                self._public_key,
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=self._account["client_email"],
            )
            header = jwt.get_unverified_header(form["assertion"][0])
        except Exception as e:
            self.error(f"bad assertion: {e!r}")
            return _json(418, {"error": "invalid_grant"})
        if claims.get("scope") != "https://www.googleapis.com/auth/firebase.messaging":
            self.error(f"bad scope {claims.get('scope')}")
        if header.get("kid") != self._account["private_key_id"]:
            self.error(f"bad kid {header.get('kid')}")
        if not claims["iat"] < claims["exp"] <= claims["iat"] + 3600:
            self.error("bad assertion lifetime")
        token = f"ya29.stand-in-{len(self.issued_tokens)}"
        with self.lock:
            self.issued_tokens.append(token)
        return _json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _send(self, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.issued_tokens:
            self.error(f"send without a valid bearer token: {auth[:20]!r}")
            return _json(401, _fcm_error(401, "UNAUTHENTICATED", None))
        if headers.get("Content-Type") != "application/json":
            self.error("send without application/json")
        message = json.loads(body)["message"]
        data = message.get("data", {})
        if not all(isinstance(v, str) for v in data.values()):
            self.error("FCM v1 data values must be strings")
            return _json(
                400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.data")
            )
        token = message.get("token", "")
        attempt = self.attempt(token)
        self.record({"token": token, "message": message, "attempt": attempt})
        if token.startswith("gone"):
            return _json(404, _fcm_error(404, "NOT_FOUND", "UNREGISTERED"))
        if token.startswith("bad"):
            return _json(
                400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.token")
            )
        if token.startswith("broken"):
            return _json(
                400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.data")
            )
        if token.startswith("flaky") and attempt == 1:
            return _json(503, _fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), {"Retry-After": "0"})
        return _json(200, {"name": f"projects/{self._project_id}/messages/{attempt}"})


class WebPushStandIn(_HttpStandIn):
    """A push service: ``/push/<tag>`` endpoints for one subscription key pair."""

    def __init__(
        self, receiver_private_key: Any, auth_secret: bytes, vapid_public_key: str
    ) -> None:
        self._receiver_key = receiver_private_key
        self._auth_secret = auth_secret
        self._vapid_public_key = vapid_public_key
        super().__init__()

    def handle_post(self, path: str, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        tag = path.rsplit("/", 1)[-1]
        auth = headers.get("Authorization", "")
        try:
            if not Vapid02.verify(auth):
                raise ValueError("signature does not verify")
            params = dict(p.split("=", 1) for p in auth.split(" ", 1)[1].split(","))
            if params["k"] != self._vapid_public_key:
                raise ValueError("not the configured VAPID key")
            claims = jwt.decode(params["t"], options={"verify_signature": False})
            if claims["aud"] != self.base_url:
                raise ValueError(f"aud {claims['aud']} is not {self.base_url}")
            if not time.time() < claims["exp"] <= time.time() + 24 * 3600:
                raise ValueError("exp out of range")
            if not claims["sub"].startswith("mailto:"):
                raise ValueError("sub is not mailto:")
        except Exception as e:
            self.error(f"bad VAPID Authorization: {e!r}")
            return 418, {}, b""
        if headers.get("Content-Encoding") != "aes128gcm":
            self.error(f"Content-Encoding {headers.get('Content-Encoding')}")
        if not headers.get("TTL", "").isdigit():
            self.error("no TTL header")
        try:
            plaintext = http_ece.decrypt(
                body,
                private_key=self._receiver_key,
                auth_secret=self._auth_secret,
                version="aes128gcm",
            )
            payload = json.loads(plaintext)
        except Exception as e:
            self.error(f"body does not decrypt: {e!r}")
            return 418, {}, b""
        attempt = self.attempt(tag)
        self.record(
            {
                "tag": tag,
                "payload": payload,
                "attempt": attempt,
                "urgency": headers.get("Urgency"),
                "topic": headers.get("Topic"),
                "ttl": headers.get("TTL"),
                "size": len(body),
            }
        )
        if tag.startswith("gone"):
            return 410, {}, b""
        if tag.startswith("flaky") and attempt == 1:
            return 503, {"Retry-After": "0"}, b""
        return 201, {"Location": f"{self.base_url}/msg/{attempt}"}, b""


class ApnsStandIn(_Recorder):
    """An HTTP/2-over-TLS APNs: ``POST /3/device/<hex token>``.

    Accepts provider-token requests (ES256 JWT checked against
    ``token_public_key``) and client-certificate requests (a certificate
    signed by ``client_ca_file`` presented in the TLS handshake, no token).
    The device token's bytes (NUL-padded ASCII) carry the behaviour tag.
    """

    def __init__(
        self,
        certfile: str,
        keyfile: str,
        client_ca_file: str,
        token_public_key: Any,
        key_id: str,
        team_id: str,
        topic: str,
    ) -> None:
        super().__init__()
        self._token_public_key = token_public_key
        self._key_id = key_id
        self._team_id = team_id
        self._topic = topic
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certfile, keyfile)
        self._context.set_alpn_protocols(["h2"])
        self._context.verify_mode = ssl.CERT_OPTIONAL
        self._context.load_verify_locations(client_ca_file)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.alpn: list[Optional[str]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.error(f"TLS handshake failed: {e!r}")
            return
        with self.lock:
            self.alpn.append(tls.selected_alpn_protocol())
        client_cert = tls.getpeercert()
        h2conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        h2conn.initiate_connection()
        tls.sendall(h2conn.data_to_send())
        streams: dict[int, dict] = {}
        try:
            while True:
                data = tls.recv(65535)
                if not data:
                    return
                for event in h2conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = {"headers": dict(event.headers), "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        h2conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        stream = streams.pop(event.stream_id)
                        status, body = self._respond(stream, client_cert)
                        h2conn.send_headers(
                            event.stream_id,
                            [
                                (":status", str(status)),
                                ("apns-id", stream["headers"].get("apns-id", "")),
                            ]
                            + ([("content-type", "application/json")] if body else []),
                            end_stream=not body,
                        )
                        if body:
                            h2conn.send_data(event.stream_id, body, end_stream=True)
                tls.sendall(h2conn.data_to_send())
        except (OSError, ssl.SSLError):
            return
        finally:
            tls.close()

    def _respond(self, stream: dict, client_cert: Optional[dict]) -> tuple[int, bytes]:
        headers = stream["headers"]
        path = headers.get(":path", "")
        if headers.get(":method") != "POST" or not path.startswith("/3/device/"):
            self.error(f"unexpected request {headers.get(':method')} {path}")
            return 418, b""
        token_hex = path[len("/3/device/") :]
        tag = bytes.fromhex(token_hex).rstrip(b"\0").decode()
        auth = headers.get("authorization")
        if auth is not None:
            try:
                scheme, token = auth.split(" ", 1)
                assert scheme == "bearer", "scheme is not bearer"
                header = jwt.get_unverified_header(token)
                assert header.get("kid") == self._key_id, "kid mismatch"
                assert header.get("alg") == "ES256", "alg is not ES256"
                claims = jwt.decode(token, self._token_public_key, algorithms=["ES256"])
                assert claims["iss"] == self._team_id, "iss is not the team id"
                assert abs(claims["iat"] - time.time()) < 3600, "iat out of range"
            except Exception as e:
                self.error(f"bad provider token: {e!r}")
                return 403, json.dumps({"reason": "InvalidProviderToken"}).encode()
            if headers.get("apns-topic") != self._topic:
                self.error(f"apns-topic {headers.get('apns-topic')}")
        elif not client_cert:
            self.error("neither a provider token nor a client certificate")
            return 403, json.dumps({"reason": "MissingProviderToken"}).encode()
        try:
            payload = json.loads(stream["body"])
        except ValueError:
            self.error("payload is not JSON")
            return 400, json.dumps({"reason": "PayloadEmpty"}).encode()
        if len(stream["body"]) > 4096:
            self.error("payload over 4096 bytes")
        attempt = self.attempt(tag)
        self.record(
            {
                "tag": tag,
                "headers": headers,
                "payload": payload,
                "attempt": attempt,
                "client_cert": bool(client_cert),
            }
        )
        if tag.startswith("gone"):
            return 410, json.dumps({"reason": "Unregistered", "timestamp": 0}).encode()
        if tag.startswith("bad"):
            return 400, json.dumps({"reason": "BadDeviceToken"}).encode()
        if tag.startswith("flaky") and attempt == 1:
            return 503, json.dumps({"reason": "ServiceUnavailable"}).encode()
        return 200, b""

    def close(self) -> None:
        self._sock.close()
