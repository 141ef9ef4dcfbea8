"""E2E fixtures: the real server as a subprocess, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.e2e.server import ServerProcess, postgres_available

ENGINES = ["sqlite", "postgres"]


def _engine_params():
    params = []
    for engine in ENGINES:
        marks = []
        if engine == "postgres" and not postgres_available():
            if os.environ.get("CI"):
                marks.append(pytest.mark.xfail(reason="PostgreSQL must be running in CI", strict=True))
            else:
                marks.append(pytest.mark.skip(reason="PostgreSQL not running"))
        params.append(pytest.param(engine, marks=marks, id=engine))
    return params


@pytest.fixture(scope="module", params=_engine_params())
def server(request, tmp_path_factory):
    """One real server per test module and database engine."""
    workdir = str(tmp_path_factory.mktemp(f"hs-{request.param}"))
    proc = ServerProcess(workdir, request.param).start()
    yield proc
    proc.cleanup()


class Client:
    """A tiny Matrix client over httpx for e2e tests."""

    def __init__(self, base_url: str, token: str | None = None, user_id: str | None = None,
                 device_id: str | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.user_id = user_id
        self.device_id = device_id
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def request(self, method: str, path: str, json=None, params=None, token: str | None = "default",
                content: bytes | None = None, headers: dict | None = None) -> httpx.Response:
        hdrs = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        if not path.startswith("/"):
            path = "/_matrix/client/v3/" + path
        return self.http.request(method, path, json=json, params=params, content=content, headers=hdrs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json if json is not None else {}, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json if json is not None else {}, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


_counter = [0]


def register_user(server: ServerProcess, localpart: str | None = None, password: str = "correct-horse-1") -> Client:
    """Register a fresh user and return a logged-in client."""
    if localpart is None:
        _counter[0] += 1
        localpart = f"user{os.getpid()}x{_counter[0]}"
    c = Client(server.base_url)
    r = c.post("register", {"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}},
               token=None)
    assert r.status_code == 200, r.text
    body = r.json()
    c.token, c.user_id, c.device_id = body["access_token"], body["user_id"], body["device_id"]
    c.password = password
    return c


def create_room(client: Client, **body) -> str:
    r = client.post("createRoom", body)
    assert r.status_code == 200, r.text
    return r.json()["room_id"]


@pytest.fixture
def make_user(server):
    return lambda localpart=None, password="correct-horse-1": register_user(server, localpart, password)
