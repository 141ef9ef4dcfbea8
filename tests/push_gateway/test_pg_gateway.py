"""The real gateway process against local provider stand-ins: delivery,
rejected pushkeys, retries and request errors, over loopback only."""

import base64
import uuid
from typing import Any

import httpx

from pg_fixtures import APNS_TOPIC, GatewayProcess, Keys

NOTIFY = "/_matrix/push/v1/notify"


def _event_id() -> str:
    return f"${uuid.uuid4().hex}"


def _notification(devices: list[dict], **fields: Any) -> dict:
    body = {
        "event_id": _event_id(),
        "room_id": "!room:example.org",
        "type": "m.room.message",
        "sender": "@alice:example.org",
        "sender_display_name": "Alice",
        "room_name": "Mission Control",
        "prio": "high",
        "content": {"msgtype": "m.text", "body": "I'm floating in a most peculiar way."},
        "counts": {"unread": 2, "missed_calls": 1},
        "devices": devices,
    }
    body.update(fields)
    return {"notification": body}


def _fcm_device(tag: str) -> dict:
    return {
        "app_id": "org.example.android",
        "pushkey": f"{tag}-{uuid.uuid4().hex}",
        "pushkey_ts": 1,
    }


def _apns_pushkey(tag: str) -> str:
    raw = f"{tag}{uuid.uuid4().hex[:12]}".encode().ljust(32, b"\0")
    return base64.b64encode(raw).decode()


def _apns_device(tag: str, app_id: str = "org.example.ios.prod", **extra: Any) -> dict:
    return {"app_id": app_id, "pushkey": _apns_pushkey(tag), **extra}


def _web_device(
    keys: Keys, webpush: Any, tag: str, app_id: str = "org.example.web", **data: Any
) -> dict:
    return {
        "app_id": app_id,
        "pushkey": keys.subscription_p256dh,
        "data": {
            "endpoint": f"{webpush.base_url}/push/{tag}-{uuid.uuid4().hex}",
            "auth": keys.subscription_auth,
            **data,
        },
    }


def _notify(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post(NOTIFY, json=body)


# --- FCM ---------------------------------------------------------------------


def test_fcm_delivers_data_only_message(client: httpx.Client, fcm: Any) -> None:
    """An FCM device gets a data-only v1 message with a bearer token from the OAuth stand-in."""
    device = _fcm_device("ok")
    body = _notification([device])
    response = _notify(client, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"rejected": []}
    assert fcm.errors == []
    [sent] = fcm.find(token=device["pushkey"])
    message = sent["message"]
    assert "notification" not in message
    assert message["android"] == {"priority": "high"}
    data = message["data"]
    assert data["event_id"] == body["notification"]["event_id"]
    assert data["room_id"] == "!room:example.org"
    assert data["type"] == "m.room.message"
    assert data["sender"] == "@alice:example.org"
    assert data["prio"] == "high"
    assert data["unread"] == "2"
    assert data["missed_calls"] == "1"
    assert data["content_body"] == "I'm floating in a most peculiar way."
    assert fcm.issued_tokens


def test_fcm_unregistered_token_is_rejected(client: httpx.Client, fcm: Any) -> None:
    """FCM's 404 UNREGISTERED puts the pushkey in `rejected`."""
    device = _fcm_device("gone")
    response = _notify(client, _notification([device]))
    assert response.status_code == 200
    assert response.json() == {"rejected": [device["pushkey"]]}


def test_fcm_invalid_token_argument_is_rejected(client: httpx.Client, fcm: Any) -> None:
    """INVALID_ARGUMENT on message.token rejects the pushkey."""
    device = _fcm_device("bad")
    response = _notify(client, _notification([device]))
    assert response.json() == {"rejected": [device["pushkey"]]}


def test_fcm_retries_503_then_delivers(client: httpx.Client, fcm: Any) -> None:
    """A 503 from FCM is retried and the second attempt's success is reported."""
    device = _fcm_device("flaky")
    response = _notify(client, _notification([device], prio="low"))
    assert response.status_code == 200
    assert response.json() == {"rejected": []}
    attempts = fcm.find(token=device["pushkey"])
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[1]["message"]["android"]["priority"] == "normal"


def test_fcm_permanent_error_is_502_without_rejecting(client: httpx.Client, fcm: Any) -> None:
    """A non-token 400 from FCM answers 502 (homeserver retries) and keeps the pushkey."""
    device = _fcm_device("broken")
    response = _notify(client, _notification([device]))
    assert response.status_code == 502
    assert response.json()["rejected"] == []
    assert response.json()["errcode"] == "M_UNKNOWN"


# --- APNs --------------------------------------------------------------------


def test_apns_token_auth_delivers_alert(client: httpx.Client, apns: Any) -> None:
    """APNs gets an HTTP/2 alert push with a valid ES256 provider token and the expected headers."""
    device = _apns_device("ok", tweaks={"sound": "default"})
    body = _notification([device])
    response = _notify(client, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"rejected": []}
    assert apns.errors == []
    tag = base64.b64decode(device["pushkey"]).rstrip(b"\0").decode()
    [sent] = apns.find(tag=tag)
    headers, payload = sent["headers"], sent["payload"]
    assert headers["apns-topic"] == APNS_TOPIC
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == body["notification"]["event_id"]
    assert headers["authorization"].startswith("bearer ")
    assert payload["aps"]["alert"] == {
        "loc-key": "MSG_FROM_USER_IN_ROOM_WITH_CONTENT",
        "loc-args": ["Alice", "Mission Control", "I'm floating in a most peculiar way."],
    }
    assert payload["aps"]["badge"] == 3
    assert payload["aps"]["sound"] == "default"
    assert payload["event_id"] == body["notification"]["event_id"]
    assert "h2" in apns.alpn


def test_apns_encrypted_event_is_mutable(client: httpx.Client, apns: Any) -> None:
    """An m.room.encrypted event is sent with mutable-content so the extension can decrypt."""
    device = _apns_device("ok")
    body = _notification(
        [device], type="m.room.encrypted", content={"algorithm": "m.megolm.v1.aes-sha2"}
    )
    assert _notify(client, body).json() == {"rejected": []}
    tag = base64.b64decode(device["pushkey"]).rstrip(b"\0").decode()
    [sent] = apns.find(tag=tag)
    assert sent["payload"]["aps"]["mutable-content"] == 1
    assert sent["payload"]["aps"]["alert"]["loc-key"] == "MSG_FROM_USER_IN_ROOM"


def test_apns_event_id_only_is_background_push(client: httpx.Client, apns: Any) -> None:
    """An event_id_only notification without an alert in default_payload is a background push."""
    device = _apns_device("ok", data={"format": "event_id_only"})
    event_id = _event_id()
    body = {
        "notification": {
            "event_id": event_id,
            "room_id": "!room:example.org",
            "counts": {"unread": 4},
            "devices": [device],
        }
    }
    assert _notify(client, body).json() == {"rejected": []}
    tag = base64.b64decode(device["pushkey"]).rstrip(b"\0").decode()
    [sent] = apns.find(tag=tag)
    assert sent["headers"]["apns-push-type"] == "background"
    assert sent["headers"]["apns-priority"] == "5"
    assert sent["payload"] == {
        "aps": {"content-available": 1},
        "event_id": event_id,
        "room_id": "!room:example.org",
        "unread_count": 4,
    }


def test_apns_unregistered_and_bad_tokens_are_rejected(client: httpx.Client, apns: Any) -> None:
    """APNs 410 Unregistered and 400 BadDeviceToken both reject their pushkeys."""
    gone, bad, ok = _apns_device("gone"), _apns_device("bad"), _apns_device("ok")
    response = _notify(client, _notification([gone, ok, bad]))
    assert response.status_code == 200
    assert response.json() == {"rejected": [gone["pushkey"], bad["pushkey"]]}


def test_apns_retries_503_then_delivers(client: httpx.Client, apns: Any) -> None:
    """A 503 from APNs is retried and then delivered."""
    device = _apns_device("flaky")
    assert _notify(client, _notification([device])).json() == {"rejected": []}
    tag = base64.b64decode(device["pushkey"]).rstrip(b"\0").decode()
    assert [r["attempt"] for r in apns.find(tag=tag)] == [1, 2]


def test_apns_certificate_auth_presents_client_certificate(client: httpx.Client, apns: Any) -> None:
    """A certfile app authenticates with its TLS client certificate and sends no token."""
    device = _apns_device("ok", app_id="org.example.ioscert")
    assert _notify(client, _notification([device])).json() == {"rejected": []}
    tag = base64.b64decode(device["pushkey"]).rstrip(b"\0").decode()
    [sent] = apns.find(tag=tag)
    assert sent["client_cert"] is True
    assert "authorization" not in sent["headers"]
    assert apns.errors == []


# --- Web Push ----------------------------------------------------------------


def test_webpush_delivers_encrypted_payload(client: httpx.Client, webpush: Any, keys: Keys) -> None:
    """The push service gets a VAPID-signed aes128gcm body that decrypts to the notification."""
    device = _web_device(keys, webpush, "ok", only_last_per_room=True)
    body = _notification([device])
    response = _notify(client, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"rejected": []}
    assert webpush.errors == []
    tag = device["data"]["endpoint"].rsplit("/", 1)[-1]
    [sent] = webpush.find(tag=tag)
    payload = sent["payload"]
    assert payload["event_id"] == body["notification"]["event_id"]
    assert payload["room_id"] == "!room:example.org"
    assert payload["content"]["body"] == "I'm floating in a most peculiar way."
    assert payload["unread"] == 2
    assert sent["urgency"] == "high"
    assert sent["ttl"] == "900"
    assert sent["topic"] and len(sent["topic"]) <= 32


def test_webpush_gone_subscription_is_rejected(
    client: httpx.Client, webpush: Any, keys: Keys
) -> None:
    """A 410 from the push service rejects the pushkey."""
    device = _web_device(keys, webpush, "gone")
    assert _notify(client, _notification([device])).json() == {"rejected": [device["pushkey"]]}


def test_webpush_retries_503_then_delivers(client: httpx.Client, webpush: Any, keys: Keys) -> None:
    """A 503 from the push service is retried and then delivered."""
    device = _web_device(keys, webpush, "flaky")
    assert _notify(client, _notification([device])).json() == {"rejected": []}
    tag = device["data"]["endpoint"].rsplit("/", 1)[-1]
    assert [r["attempt"] for r in webpush.find(tag=tag)] == [1, 2]


def test_webpush_private_endpoint_is_refused_by_default(
    client: httpx.Client, webpush: Any, keys: Keys
) -> None:
    """Without allow_private_addresses a loopback endpoint is rejected and never called."""
    device = _web_device(keys, webpush, "ok", app_id="org.example.web.strict")
    response = _notify(client, _notification([device]))
    assert response.json() == {"rejected": [device["pushkey"]]}
    tag = device["data"]["endpoint"].rsplit("/", 1)[-1]
    assert webpush.find(tag=tag) == []


def test_webpush_incomplete_subscription_is_rejected(client: httpx.Client, keys: Keys) -> None:
    """A Web Push pusher without data.auth is rejected."""
    device = {
        "app_id": "org.example.web",
        "pushkey": keys.subscription_p256dh,
        "data": {"endpoint": "https://push.example.org/x"},
    }
    assert _notify(client, _notification([device])).json() == {"rejected": [device["pushkey"]]}


# --- routing, duplicates, request errors --------------------------------------


def test_unknown_app_id_is_rejected(client: httpx.Client) -> None:
    """A device whose app id matches no configured app is rejected."""
    device = {"app_id": "com.unknown.app", "pushkey": "abc"}
    assert _notify(client, _notification([device])).json() == {"rejected": ["abc"]}


def test_glob_pattern_does_not_match_other_prefix(client: httpx.Client) -> None:
    """'org.example.ios.*' matches whole app ids only, so 'org.example.iosX' is unknown."""
    device = {"app_id": "org.example.iosX", "pushkey": "k1"}
    assert _notify(client, _notification([device])).json() == {"rejected": ["k1"]}


def test_duplicate_event_is_not_resent(client: httpx.Client, fcm: Any) -> None:
    """A retried /notify for an already delivered event does not push again."""
    device = _fcm_device("ok")
    body = _notification([device])
    assert _notify(client, body).json() == {"rejected": []}
    assert _notify(client, body).json() == {"rejected": []}
    assert len(fcm.find(token=device["pushkey"])) == 1


def test_body_not_json_is_400_not_json(client: httpx.Client) -> None:
    """A body that is not JSON gets 400 M_NOT_JSON."""
    response = client.post(
        NOTIFY, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errcode"] == "M_NOT_JSON"


def test_wrong_shape_is_400_bad_json(client: httpx.Client) -> None:
    """JSON without a devices array gets 400 M_BAD_JSON naming the key."""
    response = _notify(client, {"notification": {"event_id": "$x"}})
    assert response.status_code == 400
    assert response.json() == {
        "errcode": "M_BAD_JSON",
        "error": "notification.devices: expected an array",
    }


def test_too_large_body_is_413(client: httpx.Client) -> None:
    """A body over max_request_body_size gets 413 M_TOO_LARGE."""
    response = client.post(NOTIFY, content=b" " * (65 * 1024))
    assert response.status_code == 413
    assert response.json()["errcode"] == "M_TOO_LARGE"


def test_unknown_path_and_wrong_method(client: httpx.Client) -> None:
    """Unknown paths get 404 M_UNRECOGNIZED and GET /notify gets 405 M_UNRECOGNIZED."""
    response = client.get("/_matrix/push/v1/nope")
    assert response.status_code == 404
    assert response.json()["errcode"] == "M_UNRECOGNIZED"
    response = client.get(NOTIFY)
    assert response.status_code == 405
    assert response.json()["errcode"] == "M_UNRECOGNIZED"


def test_health_and_metrics(client: httpx.Client, fcm: Any) -> None:
    """/health answers 200 and /metrics exposes the gateway's Prometheus counters."""
    assert client.get("/health").status_code == 200
    _notify(client, _notification([_fcm_device("ok")]))
    text = client.get("/metrics").text
    assert (
        'myelin_push_gateway_device_outcomes_total{app="org.example.android",outcome="delivered"}'
        in text
    )
    assert "myelin_push_gateway_notify_requests_total" in text
    assert 'myelin_push_gateway_provider_responses_total{kind="fcm",status="200"}' in text


def test_logs_are_json_with_request_id(client: httpx.Client, gateway: GatewayProcess) -> None:
    """Log lines are JSON objects and the access line carries the request id."""
    _notify(client, _notification([{"app_id": "com.unknown.app", "pushkey": "zz"}]))
    entries = gateway.log_entries()
    assert entries and all("level" in e and "msg" in e for e in entries)
    access = [
        e for e in entries if e.get("logger") == "push_gateway.access" and e.get("path") == NOTIFY
    ]
    assert access and all(e.get("request_id") for e in access)
    assert any(e.get("request_id") and "no app configured" in e["msg"] for e in entries)
