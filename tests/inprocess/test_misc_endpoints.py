"""whois, TURN credentials, 3PID refusals, registration-token validity and the legacy /events stream, in-process."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

import pytest

from tests.inprocess.harness import InProcessServer, make_user

C = "/_matrix/client/v3"
V1 = "/_matrix/client/v1"


def q(s: str) -> str:
    return quote(s, safe="")


def _create(hs, token, **body):
    r = hs.request("POST", C + "/createRoom", body, token)
    assert r.status == 200, r
    return r.json()["room_id"]


def _send(hs, token, room_id, body, txn):
    r = hs.request("PUT", C + f"/rooms/{room_id}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": body},
                   token)
    assert r.status == 200, r
    return r.json()["event_id"]


# ------------------------------------------------------------------- whois
def test_whois_self_and_admin(hs):
    """A user may whois themselves, an admin anyone; each device has a session."""
    alice, ta = make_user(hs, "alice")
    admin, tadmin = make_user(hs, "root", admin=True)
    r = hs.request("GET", C + f"/admin/whois/{q(alice)}", token=ta)
    assert r.status == 200, r
    body = r.json()
    assert body["user_id"] == alice and list(body["devices"]) == ["DEVALICE"]
    # The request itself was recorded as the device's connection.
    [connection] = body["devices"]["DEVALICE"]["sessions"][0]["connections"]
    assert connection["ip"] and connection["last_seen"] == hs.hs.clock.time_msec()
    r = hs.request("GET", C + f"/admin/whois/{q(alice)}", token=tadmin)
    assert r.status == 200 and "DEVALICE" in r.json()["devices"]


def test_whois_reports_last_seen_connection(hs):
    """A device's recorded last-seen time and IP appear as its connection."""
    from tests.inprocess.harness import run_sync

    alice, ta = make_user(hs, "alice")
    hs.request("GET", C + "/account/whoami", token=ta)  # recorded now; the next minute is throttled
    run_sync(hs.reactor, hs.hs.users.update_device_last_seen(alice, "DEVALICE", 1234, "10.0.0.1", "curl"))
    r = hs.request("GET", C + f"/admin/whois/{q(alice)}", token=ta)
    [connection] = r.json()["devices"]["DEVALICE"]["sessions"][0]["connections"]
    assert connection["last_seen"] == 1234 and connection["ip"] == "10.0.0.1"


def test_whois_forbidden_and_not_found(hs):
    """Non-admins cannot whois others (403); admins get 404 for unknown users, 400 for remote ones."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    _, tadmin = make_user(hs, "root", admin=True)
    r = hs.request("GET", C + f"/admin/whois/{q(bob)}", token=ta)
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    r = hs.request("GET", C + f"/admin/whois/{q('@ghost:test')}", token=ta)
    assert r.status == 403
    r = hs.request("GET", C + f"/admin/whois/{q('@ghost:test')}", token=tadmin)
    assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"
    r = hs.request("GET", C + f"/admin/whois/{q('@x:remote.example')}", token=tadmin)
    assert r.status == 400
    assert hs.request("GET", C + f"/admin/whois/{q(alice)}").status == 401


# -------------------------------------------------------------------- TURN
def test_turn_server_not_configured(hs):
    """Without TURN URIs the answer is {}."""
    _, ta = make_user(hs, "alice")
    r = hs.request("GET", C + "/voip/turnServer", token=ta)
    assert r.status == 200 and r.json() == {}


def test_turn_server_shared_secret_credentials_verify(tmp_path):
    """Shared-secret credentials are '<expiry>:<user>' with a base64 HMAC-SHA1 password the TURN server can check."""
    hs = InProcessServer(tmp_path, turn_uris=["turn:turn.example.com:3478?transport=udp"],
                         turn_shared_secret="s3cret", turn_user_lifetime="1h")
    alice, ta = make_user(hs, "alice")
    r = hs.request("GET", C + "/voip/turnServer", token=ta)
    assert r.status == 200, r
    body = r.json()
    assert body["uris"] == ["turn:turn.example.com:3478?transport=udp"] and body["ttl"] == 3600
    expiry, user = body["username"].split(":", 1)
    assert user == alice
    assert int(expiry) == hs.hs.clock.time_msec() // 1000 + 3600
    expected = base64.b64encode(hmac.new(b"s3cret", body["username"].encode(), hashlib.sha1).digest()).decode()
    assert body["password"] == expected
    hs.hs.db.close()


def test_turn_server_static_credentials_and_guests(tmp_path):
    """Static credentials are handed out as configured; guests are refused when turn_allow_guests is false."""
    hs = InProcessServer(tmp_path, turn_uris=["turns:turn.example.com:443"], turn_username="u",
                         turn_password="p", turn_allow_guests=False, allow_guest_access=True)
    _, ta = make_user(hs, "alice")
    r = hs.request("GET", C + "/voip/turnServer", token=ta)
    assert r.json() == {"username": "u", "password": "p", "uris": ["turns:turn.example.com:443"], "ttl": 3600}
    r = hs.request("POST", C + "/register?kind=guest", {})
    assert r.status == 200, r
    r = hs.request("GET", C + "/voip/turnServer", token=r.json()["access_token"])
    assert r.status == 403 and r.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
    hs.hs.db.close()


# --------------------------------------------------------------------- 3PID
EMAIL = {"client_secret": "monkeys_are_GREAT", "email": "alice@example.org", "send_attempt": 1}
PHONE = {"client_secret": "monkeys_are_GREAT", "country": "GB", "phone_number": "07700900001", "send_attempt": 1}


def test_request_token_endpoints_refuse(hs):
    """requestToken: 3PID adding is M_THREEPID_MEDIUM_NOT_SUPPORTED, registration and reset M_THREEPID_DENIED."""
    _, ta = make_user(hs, "alice")
    for path, body in (("/account/3pid/email/requestToken", EMAIL), ("/account/3pid/msisdn/requestToken", PHONE)):
        r = hs.request("POST", C + path, body, ta)
        assert r.status == 400 and r.json()["errcode"] == "M_THREEPID_MEDIUM_NOT_SUPPORTED", path
        assert hs.request("POST", C + path, body).status == 401
    for path, body in (("/register/email/requestToken", EMAIL), ("/register/msisdn/requestToken", PHONE),
                       ("/account/password/email/requestToken", EMAIL),
                       ("/account/password/msisdn/requestToken", PHONE)):
        r = hs.request("POST", C + path, body)
        assert r.status == 403 and r.json()["errcode"] == "M_THREEPID_DENIED", path


def test_request_token_validates_body(hs):
    """A malformed requestToken body is 400 before the refusal."""
    r = hs.request("POST", C + "/register/email/requestToken", {"email": "a@b.c", "send_attempt": 1})
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"
    r = hs.request("POST", C + "/register/email/requestToken", {**EMAIL, "client_secret": "bad secret!"})
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("POST", C + "/register/msisdn/requestToken", {**PHONE, "send_attempt": "1"})
    assert r.status == 400 and r.json()["errcode"] == "M_BAD_JSON"


def test_threepid_changes_refused_and_unbind_no_support(hs):
    """Adding, binding and deleting 3PIDs are M_FORBIDDEN; unbind answers no-support; GET still lists none."""
    _, ta = make_user(hs, "alice")
    creds = {"client_secret": "s", "id_server": "id.example.org", "id_access_token": "t", "sid": "1"}
    for path, body in (("/account/3pid", {"three_pid_creds": creds}), ("/account/3pid/add", {"client_secret": "s",
                                                                                              "sid": "1"}),
                       ("/account/3pid/bind", creds),
                       ("/account/3pid/delete", {"medium": "email", "address": "a@b.c"})):
        r = hs.request("POST", C + path, body, ta)
        assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN", path
    r = hs.request("POST", C + "/account/3pid/unbind", {"medium": "email", "address": "a@b.c"}, ta)
    assert r.status == 200 and r.json() == {"id_server_unbind_result": "no-support"}
    r = hs.request("POST", C + "/account/3pid/unbind", {"medium": "fax", "address": "1"}, ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("GET", C + "/account/3pid", token=ta)
    assert r.status == 200 and r.json() == {"threepids": []}


def test_registration_token_validity(hs):
    """No registration token is valid here; the token parameter is required."""
    r = hs.request("GET", V1 + "/register/m.login.registration_token/validity?token=abcd")
    assert r.status == 200 and r.json() == {"valid": False}
    r = hs.request("GET", V1 + "/register/m.login.registration_token/validity")
    assert r.status == 400 and r.json()["errcode"] == "M_MISSING_PARAM"


def test_registration_token_validity_closed_registration(tmp_path):
    """With registration disabled the check is 403 M_FORBIDDEN."""
    hs = InProcessServer(tmp_path, enable_registration=False)
    r = hs.request("GET", V1 + "/register/m.login.registration_token/validity?token=abcd")
    assert r.status == 403 and r.json()["errcode"] == "M_FORBIDDEN"
    hs.hs.db.close()


# ------------------------------------------------------------ legacy /events
def test_events_long_poll_wakes_on_new_event(hs):
    """GET /events waits, and a message in a joined room wakes it with that event."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    room_id = _create(hs, ta, preset="public_chat")
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    r = hs.request("GET", C + "/events?timeout=0", token=tb)
    assert r.status == 200 and r.json()["chunk"] == []
    start = r.json()["end"]
    pending = hs.start("GET", C + f"/events?from={start}&timeout=30000", token=tb)
    hs.reactor.advance(1)
    assert not pending.done()
    event_id = _send(hs, ta, room_id, "wake up", "t1")
    hs.reactor.advance(0.1)
    assert pending.done()
    body = pending.result().json()
    assert [e["event_id"] for e in body["chunk"]] == [event_id]
    assert body["start"] == start and body["end"] != start
    assert body["chunk"][0]["content"]["body"] == "wake up" and body["chunk"][0]["room_id"] == room_id
    # The next poll from `end` does not repeat it.
    r = hs.request("GET", C + f"/events?from={body['end']}&timeout=0", token=tb)
    assert r.json()["chunk"] == []


def test_events_times_out_empty_and_ignores_other_rooms(hs):
    """A long-poll with no new visible event returns an empty chunk after the timeout."""
    alice, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    private = _create(hs, ta)
    start = hs.request("GET", C + "/events?timeout=0", token=tb).json()["end"]
    pending = hs.start("GET", C + f"/events?from={start}&timeout=5000", token=tb)
    _send(hs, ta, private, "not for bob", "t1")
    hs.reactor.advance(1)
    assert not pending.done()
    hs.reactor.advance(5)
    assert pending.done() and pending.result().json()["chunk"] == []


def test_events_from_old_token_pages_in_order(hs):
    """From an old token, events come oldest first, including the user's invite."""
    alice, ta = make_user(hs, "alice")
    bob, tb = make_user(hs, "bob")
    start = hs.request("GET", C + "/events?timeout=0", token=tb).json()["end"]
    room_id = _create(hs, ta, invite=[bob])
    r = hs.request("GET", C + f"/events?from={start}&timeout=0", token=tb)
    chunk = r.json()["chunk"]
    assert [(e["type"], e.get("state_key")) for e in chunk] == [("m.room.member", bob)]
    assert hs.request("POST", C + f"/rooms/{room_id}/join", {}, tb).status == 200
    ids = [_send(hs, ta, room_id, f"m{i}", f"t{i}") for i in range(3)]
    r = hs.request("GET", C + f"/events?from={r.json()['end']}&timeout=0", token=tb)
    got = [e["event_id"] for e in r.json()["chunk"] if e["type"] == "m.room.message"]
    assert got == ids


def test_events_peek_world_readable_room(hs):
    """With room_id, a non-member receives the events of a world-readable room."""
    alice, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    room_id = _create(hs, ta, preset="public_chat", initial_state=[{
        "type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "world_readable"}}])
    start = hs.request("GET", C + f"/events?room_id={q(room_id)}&timeout=0", token=tb).json()["end"]
    pending = hs.start("GET", C + f"/events?room_id={q(room_id)}&from={start}&timeout=30000", token=tb)
    event_id = _send(hs, ta, room_id, "peekaboo", "t1")
    hs.reactor.advance(0.1)
    assert pending.done() and [e["event_id"] for e in pending.result().json()["chunk"]] == [event_id]


def test_events_bad_parameters(hs):
    """A bad from token or negative timeout is 400."""
    _, ta = make_user(hs, "alice")
    r = hs.request("GET", C + "/events?from=garbage&timeout=0", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"
    r = hs.request("GET", C + "/events?timeout=-1", token=ta)
    assert r.status == 400 and r.json()["errcode"] == "M_INVALID_PARAM"


def test_get_one_event(hs):
    """GET /events/{eventId} returns a visible event; an invisible or unknown one is 404."""
    alice, ta = make_user(hs, "alice")
    _, tb = make_user(hs, "bob")
    room_id = _create(hs, ta)
    event_id = _send(hs, ta, room_id, "hello", "t1")
    r = hs.request("GET", C + f"/events/{q(event_id)}", token=ta)
    assert r.status == 200 and r.json()["content"]["body"] == "hello" and r.json()["room_id"] == room_id
    for token, eid in ((tb, event_id), (ta, "$unknown:test"), (ta, "not-an-id")):
        r = hs.request("GET", C + f"/events/{q(eid)}", token=token)
        assert r.status == 404 and r.json()["errcode"] == "M_NOT_FOUND"


@pytest.mark.parametrize("path", ["/events", "/events/$x:test", "/voip/turnServer"])
def test_need_auth(hs, path):
    """The legacy stream and TURN endpoints need an access token."""
    assert hs.request("GET", C + path.replace("$", "%24")).status == 401
