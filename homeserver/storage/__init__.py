"""Storage: one database interface over SQLite and PostgreSQL, migrations, stores.

Storage never sees HTTP and never raises MatrixError; it returns None for
"not there" and raises small typed errors (`Conflict`) that handlers translate.
"""


class Conflict(Exception):
    """A unique constraint stopped a write (e.g. a user ID already taken)."""
