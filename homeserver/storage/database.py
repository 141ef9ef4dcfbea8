"""One database interface over SQLite (default, WAL) and PostgreSQL (psycopg2).

Every logical change is one transaction, run by `Database.run_txn(name, func)`
on a thread pool off the reactor. `func(txn, ...)` receives a `Txn` whose
`execute` takes SQL written once with `?` placeholders; the PostgreSQL engine
rewrites them to `%s`. Dialect differences live in the `Engine` classes here
and nowhere else.

SQLite runs on a single connection on a single thread: SQLite serialises
writers anyway, and one connection avoids SQLITE_BUSY entirely. PostgreSQL
runs on a pool of `cp_max` threads, each with its own connection.

For in-process tests the runner executes transactions synchronously on the
calling thread (`InlineRunner`), so a fake reactor needs no real threads.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

logger = logging.getLogger(__name__)

R = TypeVar("R")


class Engine:
    """What differs between SQLite and PostgreSQL."""

    name = "?"
    supports_returning = True

    def connect(self) -> Any:
        raise NotImplementedError

    def convert_sql(self, sql: str) -> str:
        return sql

    def is_retryable(self, exc: BaseException) -> bool:
        return False

    def is_unique_violation(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def on_new_connection(self, conn: Any) -> None:
        pass


class SqliteEngine(Engine):
    name = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.module = sqlite3

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.on_new_connection(conn)
        return conn

    def on_new_connection(self, conn: Any) -> None:
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # synchronous=FULL: a commit survives power loss / kill -9 (acknowledged
        # data is never lost). NORMAL in WAL mode only survives process death,
        # which is also our promise; FULL costs an fsync per commit. We choose
        # NORMAL for WAL: durable across kill -9 (the WAL is in the OS page
        # cache), not across OS crash. See DESIGN.md "Storage".
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class PostgresEngine(Engine):
    name = "postgres"

    def __init__(self, args: dict[str, Any]) -> None:
        import psycopg2
        import psycopg2.errorcodes

        self.module = psycopg2
        self._errorcodes = psycopg2.errorcodes
        self.args = {k: v for k, v in args.items() if k not in ("cp_min", "cp_max", "cp_reconnect")}
        if "database" in self.args and "dbname" not in self.args:
            self.args["dbname"] = self.args.pop("database")
        self._sql_cache: dict[str, str] = {}

    def connect(self) -> Any:
        conn = self.module.connect(**self.args)
        conn.set_session(isolation_level="REPEATABLE READ", autocommit=False)
        return conn

    def convert_sql(self, sql: str) -> str:
        out = self._sql_cache.get(sql)
        if out is None:
            out = sql.replace("%", "%%").replace("?", "%s")
            self._sql_cache[sql] = out
        return out

    def is_retryable(self, exc: BaseException) -> bool:
        code = getattr(exc, "pgcode", None)
        return code in (
            self._errorcodes.SERIALIZATION_FAILURE,
            self._errorcodes.DEADLOCK_DETECTED,
        )

    def is_unique_violation(self, exc: BaseException) -> bool:
        return getattr(exc, "pgcode", None) == self._errorcodes.UNIQUE_VIOLATION


class Txn:
    """A cursor for one transaction, with `?` placeholders on both engines."""

    __slots__ = ("_cur", "_engine", "name", "after_callbacks", "exception_callbacks", "started", "duration")

    def __init__(self, cur: Any, engine: Engine, name: str) -> None:
        self._cur = cur
        self._engine = engine
        self.name = name
        # Run on the reactor thread once the transaction has committed.
        self.after_callbacks: list[tuple[Callable[..., Any], tuple]] = []
        self.exception_callbacks: list[tuple[Callable[..., Any], tuple]] = []
        # perf_counter() when the work began on its thread, and seconds it
        # took (retries included); read on the reactor thread for metrics.
        self.started = 0.0
        self.duration = 0.0

    @property
    def engine(self) -> Engine:
        return self._engine

    def execute(self, sql: str, args: Sequence[Any] = ()) -> "Txn":
        self._cur.execute(self._engine.convert_sql(sql), args)
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self._engine.name == "postgres":
            from psycopg2.extras import execute_batch

            execute_batch(self._cur, self._engine.convert_sql(sql), rows, page_size=500)
        else:
            self._cur.executemany(sql, rows)

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall()

    def __iter__(self):
        return iter(self._cur)

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def call_after(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` on the reactor thread after a successful commit."""
        self.after_callbacks.append((func, args))

    def call_on_exception(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` if the transaction fails (e.g. release an ID)."""
        self.exception_callbacks.append((func, args))


class Runner(Protocol):
    def run(self, func: Callable[..., R], *args: Any) -> "defer.Deferred[R]": ...

    def stop(self) -> None: ...


class ThreadRunner:
    """Runs blocking database work on a bounded Twisted thread pool."""

    def __init__(self, reactor: Any, size: int, name: str = "db") -> None:
        self._pool = ThreadPool(minthreads=1, maxthreads=size, name=name)
        self._reactor = reactor
        self._pool.start()
        reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)

    def run(self, func: Callable[..., R], *args: Any) -> "defer.Deferred[R]":
        # Run in a copy of the caller's contextvars, so log lines written on
        # the pool thread carry the request id (Twisted's pool does not).
        return threads.deferToThreadPool(self._reactor, self._pool, contextvars.copy_context().run, func, *args)

    def stop(self) -> None:
        self._pool.stop()


class InlineRunner:
    """Runs database work synchronously (in-process tests on a fake reactor)."""

    def run(self, func: Callable[..., R], *args: Any) -> "defer.Deferred[R]":
        try:
            return defer.succeed(func(*args))
        except BaseException:
            return defer.fail()

    def stop(self) -> None:
        pass


class Database:
    """The database: run named transactions off the reactor.

    Args:
        engine: SQLite or PostgreSQL.
        runner: where blocking work runs (a thread pool, or inline in tests).
        txn_hook: ``(name, seconds)`` for every committed transaction: how long
            it ran on its connection (metrics). Called on the reactor thread.
        pool_wait_hook: ``(name, seconds)``: how long the transaction waited
            between `run_txn` and starting on a pool thread. Reactor thread.
    """

    def __init__(self, engine: Engine, runner: Runner, txn_hook: Callable[[str, float], None] | None = None,
                 pool_wait_hook: Callable[[str, float], None] | None = None) -> None:
        self.engine = engine
        self._runner = runner
        self._local = threading.local()
        self._all_conns: list[Any] = []
        self._txn_hook = txn_hook
        self._pool_wait_hook = pool_wait_hook

    def set_hooks(self, txn_hook: Callable[[str, float], None] | None,
                  pool_wait_hook: Callable[[str, float], None] | None) -> None:
        """Install the metrics hooks after construction (see the class docstring)."""
        self._txn_hook = txn_hook
        self._pool_wait_hook = pool_wait_hook

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.connect()
            self._local.conn = conn
            self._all_conns.append(conn)
        return conn

    def _run_txn_blocking(self, name: str, func: Callable[..., R], args: tuple, kwargs: dict) -> tuple[R, Txn]:
        attempt = 0
        start = time.perf_counter()
        while True:
            attempt += 1
            conn = self._conn()
            cur = conn.cursor()
            txn = Txn(cur, self.engine, name)
            try:
                if self.engine.name == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                result = func(txn, *args, **kwargs)
                conn.commit()
                txn.started = start
                txn.duration = time.perf_counter() - start
                return result, txn
            except BaseException as e:
                try:
                    conn.rollback()
                except Exception:  # pragma: no cover - connection already dead
                    logger.warning("rollback failed in %s", name)
                    self._local.conn = None
                if self.engine.is_retryable(e) and attempt < 5:
                    logger.info("retrying transaction %s after %s", name, e)
                    continue
                e.__myelin_txn__ = txn  # type: ignore[attr-defined]
                raise
            finally:
                cur.close()

    async def run_txn(self, name: str, func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``func(txn, *args, **kwargs)`` in one transaction; return its result."""
        queued = time.perf_counter()
        try:
            result, txn = await self._runner.run(self._run_txn_blocking, name, func, args, kwargs)
        except BaseException as e:
            txn = getattr(e, "__myelin_txn__", None)
            if txn is not None:
                for cb, cb_args in txn.exception_callbacks:
                    cb(*cb_args)
            raise
        if self._txn_hook is not None:
            self._txn_hook(name, txn.duration)
        if self._pool_wait_hook is not None:
            self._pool_wait_hook(name, txn.started - queued)
        for cb, cb_args in txn.after_callbacks:
            cb(*cb_args)
        return result

    async def execute(self, name: str, sql: str, *args: Any) -> list[tuple]:
        """Run one statement in its own transaction and return all rows."""

        def _txn(txn: Txn) -> list[tuple]:
            txn.execute(sql, args)
            try:
                return txn.fetchall()
            except Exception:
                return []

        return await self.run_txn(name, _txn)

    def run_txn_blocking(self, name: str, func: Callable[..., R], *args: Any) -> R:
        """Run a transaction on the calling thread (start-up, CLI tools only)."""
        result, txn = self._run_txn_blocking(name, func, args, {})
        if self._txn_hook is not None:
            self._txn_hook(name, txn.duration)
        for cb, cb_args in txn.after_callbacks:
            cb(*cb_args)
        return result

    def close(self) -> None:
        self._runner.stop()
        for conn in self._all_conns:
            try:
                conn.close()
            except Exception:
                pass
        self._all_conns.clear()


def make_engine(db_name: str, args: dict[str, Any]) -> Engine:
    """Engine for a Synapse-style ``database`` config section."""
    if db_name in ("sqlite3", "sqlite"):
        return SqliteEngine(args.get("database", "homeserver.db"))
    if db_name in ("psycopg2", "postgres", "postgresql"):
        return PostgresEngine(args)
    raise ValueError(f"unknown database engine {db_name!r}")
