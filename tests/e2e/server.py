"""Start the real server (`python -m homeserver`) as a subprocess for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import yaml

PG_HOST = os.environ.get("MYELIN_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("MYELIN_TEST_PG_USER", "postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_available() -> bool:
    try:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, user=PG_USER, dbname="postgres", connect_timeout=3)
        conn.close()
        return True
    except Exception:
        return False


def create_pg_database() -> str:
    import psycopg2

    name = "myelin_test_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(host=PG_HOST, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    conn.close()
    return name


def drop_pg_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


class ServerProcess:
    """A running homeserver on a free loopback port."""

    def __init__(self, workdir: str, engine: str, extra_config: dict[str, Any] | None = None,
                 server_name: str = "localhost") -> None:
        self.workdir = workdir
        self.engine = engine
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server_name = server_name
        self.pg_db: str | None = None
        if engine == "postgres":
            self.pg_db = create_pg_database()
            database = {"name": "psycopg2", "args": {"host": PG_HOST, "user": PG_USER, "dbname": self.pg_db,
                                                     "cp_min": 1, "cp_max": 5}}
        else:
            database = {"name": "sqlite3", "args": {"database": os.path.join(workdir, "homeserver.db")}}
        self.config = {
            "server_name": server_name,
            "public_baseurl": self.base_url + "/",
            "listeners": [{"port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http",
                           "resources": [{"names": ["client", "federation"]}]}],
            "database": database,
            "signing_key_path": os.path.join(workdir, "signing.key"),
            "media_store_path": os.path.join(workdir, "media"),
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "registration_shared_secret": "e2e-shared-secret",
            "bcrypt_rounds": 4,
            "ratelimiting_enabled": False,
            "log_level": "INFO",
        }
        if extra_config:
            self.config.update(extra_config)
        self.config_path = os.path.join(workdir, "homeserver.yaml")
        with open(self.config_path, "w") as f:
            yaml.safe_dump(self.config, f)
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, "server.log")

    def start(self) -> "ServerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeserver", "-c", self.config_path],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.read_log()}")
            try:
                r = httpx.get(self.base_url + "/_matrix/client/versions", timeout=1)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.read_log()}")

    def read_log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def cleanup(self) -> None:
        self.stop()
        if self.pg_db:
            try:
                drop_pg_database(self.pg_db)
            except Exception:
                pass
