"""The `database` section: which engine, and the arguments its driver receives.

Synapse's shape: `database: {name: sqlite3|psycopg2, args: {...}}`. The loader
checks `args` per engine (`load.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from homeserver.config.options import option

DEFAULT_SQLITE_PATH = "./data/homeserver.db"


@dataclass(frozen=True)
class DatabaseConfig:
    """The database engine and its connection arguments."""

    name: Literal["sqlite3", "psycopg2"] = option(
        "sqlite3",
        "sqlite3 (a file; the zero-setup default) or psycopg2 (PostgreSQL, for "
        "production and for running several processes).",
    )
    args: dict[str, Any] = option(
        {"database": DEFAULT_SQLITE_PATH},
        "Driver arguments. sqlite3: database (the file path; relative to the working "
        "directory; :memory: for a throw-away database). psycopg2: user, password, "
        "database (or dbname), host, port, cp_min, cp_max (the connection pool's "
        "size, default 5 and 10) and any other libpq keyword (sslmode, ...). "
        "PostgreSQL databases must use UTF8 encoding and C collation.",
    )
    allow_unsafe_locale: bool = option(
        False,
        "psycopg2: start even if the database's collation is not C (sorting and "
        "comparisons of IDs may then differ from other servers).",
    )
    txn_limit: int = option(
        0,
        "Close and reopen each pooled connection after this many transactions "
        "(works around memory growth in some drivers); 0 never does.",
        minimum=0,
    )

    @property
    def is_sqlite(self) -> bool:
        """True for the SQLite engine."""
        return self.name == "sqlite3"
